// The self-twin: run doctor on the machine the tests run on, write its twin scenario, boot it in the
// guest model (`timevisor guest --scenario FILE --json`), and check that the twin shows this machine's
// sysfs texts and clock boot lines. What the machine hides is skipped with the reason printed; what the
// guest model does not (yet) reproduce must be one of the documented gaps in src/doctor/gaps.ts, each a
// precise statement of what is missing. (The vDSO paths are not compared here: doctor tells them apart by
// timing, and tests make no timed assertions.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDoctor } from '../../src/doctor/doctor.ts';
import { compareTwin, machineView, planTwin, renderComparison } from '../../src/doctor/twin.ts';
import { guestCli } from './guest-cli.ts';
import { KNOWN_GAPS, gapFor } from '../../src/doctor/gaps.ts';

test('doctor on this machine, replayed as a twin in the guest model, shows the same clocks', async (t) => {
  if (process.platform !== 'linux') {
    console.log('skip: not a Linux machine, nothing to twin');
    t.skip('not Linux');
    return;
  }
  const report = await runDoctor({ measure: false, stealIntervalMs: 0 });
  const plan = planTwin(report);
  const profile = plan.choices.find((c) => c.key === 'vms[0].profile')!;
  console.log(`twin profile: ${profile.value} (${profile.why})`);
  // A PVM guest takes its TSC rate from the PVM MSR, not kvm-clock: only the PVM profile prints it.
  if (report.hypervisor.ok && report.hypervisor.value.name === 'PVM') assert.equal(profile.value, 'firecracker-pvm');
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-twin-'));
  try {
    const file = join(dir, 'twin.yaml');
    writeFileSync(file, plan.yaml);
    // No skip here: the twin needs nothing this machine may lack, so a replay that fails is a bug.
    const replay = guestCli(file);
    if (!replay.ok) assert.fail(`the guest model could not replay this machine's twin: ${replay.reason}`);
    const view = machineView(report);
    for (const h of view.hidden) console.log(`not compared (the machine hides it): ${h}`);
    const c = compareTwin(view, replay.guest);
    console.log(renderComparison(c).join('\n'));
    // The sysfs texts must match exactly wherever the machine shows them.
    for (const key of ['available_clocksource', 'current_clocksource', 'clockevent_device'] as const) {
      if (view[key] === undefined) continue;
      assert.ok(c.matched.includes(key), `${key}: machine ${JSON.stringify(view[key])}, twin ${JSON.stringify(replay.guest[key])}`);
    }
    if (view.boot_clock_lines) assert.ok(c.matched.includes('clocksource switch sequence'), renderComparison(c).join('\n'));
    // Everything else that differs (boot lines, broadcast device, tick mode) must be a documented gap.
    const unexplained = c.differences.filter((d) => !gapFor(d, view.boot_clock_lines));
    // The sched_clock line differs only in boot-timing numbers: on both sides the fourth is the
    // continuity offset tick_gtod + __gtod_offset - tick_raw (kernel/sched/clock.c __set_sched_clock_stable).
    for (const d of c.differences.filter((x) => x.gap?.id === 'sched-clock-marking-stable')) {
      for (const l of [d.machine, d.twin]) {
        const [gtod, gtodOff, raw, off] = [...l.matchAll(/-?\d+/g)].map((m) => BigInt(m[0]));
        assert.equal(off, gtod! + gtodOff! - raw!, l);
      }
    }
    assert.deepEqual(unexplained, [], `differences that are not a documented gap (KNOWN_GAPS has ${KNOWN_GAPS.length})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
