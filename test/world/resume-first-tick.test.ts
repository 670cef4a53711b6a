import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Ns } from '../../src/core/index.ts';
import { parseScenarioText, resolveScenario, simulate } from '../../src/world/index.ts';
import { schedBaseSliceNs } from '../../src/world/host-cpus.ts';
import { FifoRoundRobin } from './fifo-round-robin.ts';

const S = 1_000_000_000n;

/** One 1-vCPU VM paused 60 → 70 s and snapshotted 90 s → restored 100 s, on a host with `cpus` CPUs and one busy thread. */
function run(cpus: number) {
  const text = `name: first-tick
duration: 2min
sample_interval: 1min
hosts:
  - name: host0
    tsc: { freq_khz: 2596136 }
    cpus: ${cpus}
    load: { busy_threads: 1 }
vms:
  - name: vm
    host: host0
    profile: qemu-kvm
    pauses: [{ at: 60s, duration: 10s }]
    snapshots: [{ at: 90s, restore_after: 10s }]
`;
  const scenario = resolveScenario(parseScenarioText(text, 'first-tick.yaml'));
  const { timeline, summary } = simulate(scenario);
  return { timeline, summary };
}

/** The rows sampled in [from, from + 1 s): the resume's (or restore's) first-tick sample is the only one there. */
const rowsAfter = (timeline: { t: Ns; vm: string }[], from: Ns) => timeline.filter((r) => r.t >= from && r.t < from + S).map((r) => r.t);

test('the first tick after a resume or a restore runs when vCPU 0 next runs: on a 2:1 host one slice later, on a host with a CPU to spare at once', () => {
  // 2:1 (1 CPU, a busy thread and the vCPU): the VM's vCPU thread sleeps while it is stopped, so at the resume (and
  // at the restore, which runs new threads) the runnable set changes and a new round starts in creation order —
  // the busy thread first (src/world/host-cpus.ts). vCPU 0 first runs one base slice (0.7 ms on 1 CPU) later.
  const slice = schedBaseSliceNs(1);
  assert.equal(slice, 700_000n);
  const shared = run(1);
  for (const back of [70n * S, 100n * S]) {
    const oracle = new FifoRoundRobin(1, slice, ['busy0', 'vm/vcpu0'], back);
    const firstRun = oracle.nextRun('vm/vcpu0', back);
    assert.equal(firstRun, back + slice);
    assert.deepEqual(rowsAfter(shared.timeline, back), [firstRun], `after ${back}`);
  }
  // the pause's verdict and offsets are read there too: the sample row and the event agree
  const pause = shared.summary.vms[0]!.events.find((e) => e.kind === 'pause')!;
  const row = shared.timeline.find((r) => r.t === 70n * S + slice)!;
  assert.equal(pause.offset_after_ns, String(row.guestOffsetNs));
  // a CPU for every thread: the vCPU runs at the resume instant, and the tick is there
  const spare = run(2);
  for (const back of [70n * S, 100n * S]) assert.deepEqual(rowsAfter(spare.timeline, back), [back]);
});
