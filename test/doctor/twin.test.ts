// The twin scenario: choices from recorded machines, validity against the scenario schema, and the
// comparison of a guest-model boot against the machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDoctor } from '../../src/doctor/doctor.ts';
import { recordedSource } from '../../src/doctor/source.ts';
import { replayScenario } from '../../src/doctor/replay.ts';
import {
  compareTwin,
  guessProfile,
  kernelCmdline,
  lineShape,
  machineView,
  mhzTextToKhz,
  planTwin,
  type GuestView,
} from '../../src/doctor/twin.ts';
import { parseCmdline } from '../../src/doctor/parse.ts';
import { parseScenarioText } from '../../src/world/scenario.ts';
import { guestCli } from './guest-cli.ts';

const FIX = join(import.meta.dirname, '../fixtures/doctor');
const recorded = (m: string) => runDoctor({ source: recordedSource(join(FIX, m)) });

test('the VMM profile is recognised from firmware and hypervisor', async () => {
  assert.equal(guessProfile(await recorded('firecracker-pvm')).profile, 'firecracker');
  assert.equal(guessProfile(await recorded('cloud-hypervisor-kvm')).profile, 'cloud-hypervisor');
  assert.equal(guessProfile(await recorded('qemu-tcg-pc')).profile, 'qemu-tcg');
  assert.equal(guessProfile(await recorded('qemu-tcg-jiffies-only')).profile, 'qemu-tcg');
  const hv = guessProfile(await recorded('hyperv-azure-invariant-tsc'));
  assert.equal(hv.profile, 'qemu-kvm');
  assert.match(hv.gap!, /Microsoft Hyper-V is not modelled/);
});

test('TSC kHz is read exactly from the printed MHz', () => {
  assert.equal(mhzTextToKhz('2596.134'), 2596134);
  assert.equal(mhzTextToKhz('2904.000'), 2904000);
  assert.equal(mhzTextToKhz('3193.9'), 3193900);
});

test('the twin command line keeps kernel parameters and drops init arguments', () => {
  assert.equal(
    kernelCmdline(parseCmdline('console=ttyS0 tsc=reliable acpi_osi="A B" -- --firecracker-init --addr 0.0.0.0\n')),
    'console=ttyS0 tsc=reliable acpi_osi="A B"',
  );
});

test('every recorded machine gives a twin scenario the scenario schema accepts', async () => {
  const machines = readdirSync(FIX, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
  for (const m of machines) {
    const plan = planTwin(await recorded(m));
    const s = parseScenarioText(plan.yaml, `${m} twin`);
    assert.equal(s.vms.length, 1);
    assert.equal(s.vms[0]!.host, s.hosts[0]!.name);
  }
});

test('this machine, recorded: Firecracker profile, its TSC rate and its command line', async () => {
  const plan = planTwin(await recorded('firecracker-pvm'));
  const s = parseScenarioText(plan.yaml, 'twin');
  assert.equal(s.vms[0]!.profile, 'firecracker');
  assert.equal(s.hosts[0]!.tsc.freq_khz, 2596134);
  assert.equal(s.hosts[0]!.tsc.invariant, true);
  assert.match(s.vms[0]!.cmdline, /^mitigations=auto,no_guest_host,no_guest_guest console=ttyS0 .* rdinit=\/process_api$/);
});

const machine = {
  available_clocksource: 'tsc kvm-clock \n',
  current_clocksource: 'tsc\n',
  clockevent_device: 'lapic-deadline',
  boot_clock_lines: [
    'kvm-clock: Using msrs 4b564d01 and 4b564d00',
    'kvm-clock: using sched offset of 52991526 cycles',
    'clocksource: Switched to clocksource kvm-clock',
    'clocksource: Switched to clocksource tsc',
  ],
  hidden: [],
};

test('a twin that prints the same sysfs text and lines matches everything', () => {
  const twin: GuestView = {
    boot_log: ['Linux version x', ...machine.boot_clock_lines],
    available_clocksource: 'tsc kvm-clock ',
    current_clocksource: 'tsc\n',
    clockevent_device: 'lapic-deadline',
  };
  const c = compareTwin(machine, twin);
  assert.deepEqual(c.differences, []);
  // The trailing newline is the file's, not the text's: "tsc kvm-clock " and "tsc kvm-clock \n" are the same.
  assert.deepEqual(c.matched, [
    'available_clocksource',
    'current_clocksource',
    'clockevent_device',
    'clocksource switch sequence',
    'boot clock lines',
  ]);
  assert.equal(c.matchedLines, 4);
});

test('differences are listed: other numbers, missing lines, extra lines, another clocksource', () => {
  const twin: GuestView = {
    boot_log: [
      'kvm-clock: Using msrs 4b564d01 and 4b564d00',
      'kvm-clock: using sched offset of 1000 cycles',
      'clocksource: Switched to clocksource kvm-clock',
      'clocksource: hpet: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 19112604467 ns',
    ],
    available_clocksource: 'kvm-clock tsc ',
    current_clocksource: 'kvm-clock\n',
    clockevent_device: 'lapic',
  };
  const c = compareTwin(machine, twin);
  const what = c.differences.map((d) => d.what);
  assert.deepEqual(what, [
    'available_clocksource',
    'current_clocksource',
    'clockevent_device',
    'boot line (numbers differ)',
    'boot line missing in the twin',
    'boot line only in the twin',
    'clocksource switch sequence',
  ]);
  assert.equal(c.differences[3]!.twin, 'kvm-clock: using sched offset of 1000 cycles');
  assert.equal(lineShape('tsc: Detected 2596.134 MHz processor'), 'tsc: Detected # MHz processor');
});

test('what the machine hides is skipped and said, not passed', async () => {
  const view = machineView(await recorded('coreos-bare-metal-refined-jiffies'));
  assert.equal(view.boot_clock_lines, undefined);
  const c = compareTwin(view, {
    boot_log: [],
    available_clocksource: 'refined-jiffies jiffies tsc ',
    current_clocksource: 'refined-jiffies \n',
    clockevent_device: 'lapic',
  });
  assert.ok(
    c.skipped.some((s) => s.startsWith('boot log:')),
    "c.skipped.some((s) => s.startsWith('boot log:'))",
  );
  assert.ok(
    c.skipped.some((s) => s.startsWith('clockevent device:')),
    "c.skipped.some((s) => s.startsWith('clockevent device:'))",
  );
  assert.deepEqual(c.matched, ['available_clocksource', 'current_clocksource']);
});

test('twins of recorded machines reproduce their sysfs texts and clocksource switches in the guest model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-twins-'));
  try {
    for (const m of ['firecracker-pvm', 'qemu-tcg-pc', 'qemu-tcg-jiffies-only']) {
      const r = await recorded(m);
      const file = join(dir, `${m}.yaml`);
      writeFileSync(file, planTwin(r).yaml);
      const replay = guestCli(file);
      if (!replay.ok) assert.fail(`${m}: the guest model could not replay the twin: ${replay.reason}`);
      const c = compareTwin(machineView(r), replay.guest);
      for (const key of ['available_clocksource', 'current_clocksource', 'clockevent_device', 'clocksource switch sequence']) {
        assert.ok(c.matched.includes(key), `${m}: ${key} differs: ${JSON.stringify(c.differences.find((d) => d.what === key))}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the in-process replay doctor prints equals what `timevisor guest --scenario` shows', async () => {
  const r = await recorded('firecracker-pvm');
  const plan = planTwin(r);
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-twin-cli-'));
  try {
    const file = join(dir, 'twin.yaml');
    writeFileSync(file, plan.yaml);
    const cli = guestCli(file);
    if (!cli.ok) assert.fail(`timevisor guest --scenario could not replay the twin: ${cli.reason}`);
    const lib = replayScenario(plan.scenario);
    assert.ok(lib.ok, lib.ok ? '' : lib.reason);
    for (const k of [
      'boot_log',
      'available_clocksource',
      'current_clocksource',
      'clockevent_device',
      'broadcast_device',
      'tick_mode',
    ] as const) {
      assert.deepEqual(lib.value[k], cli.guest[k], k);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a kernel log that no longer starts at boot is not compared line by line', async () => {
  const view = machineView(await recorded('bhyve-propolis-guest'));
  assert.equal(view.boot_clock_lines, undefined);
  assert.ok(
    view.hidden.some((h) => /no longer starts at boot/.test(h)),
    'view.hidden.some((h) => /no longer starts at boot/.test(h))',
  );
  assert.ok(
    machineView(await recorded('firecracker-pvm')).boot_clock_lines!.length > 0,
    "machineView(await recorded('firecracker-pvm')).boot_clock_lines!.length > 0",
  );
});

test('the twin carries the kvm-clock reading at kvmclock_init that the machine printed', async () => {
  const plan = planTwin(await recorded('firecracker-pvm'));
  const s = parseScenarioText(plan.yaml, 'twin');
  assert.equal(s.vms[0]!.kvmclock_at_init, 52_991_526n);
  const r = replayScenario(plan.scenario);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  assert.ok(
    r.value.boot_log.includes('kvm-clock: using sched offset of 52991526 cycles'),
    "r.value.boot_log.includes('kvm-clock: using sched offset of 52991526 cycles')",
  );
  assert.equal(r.value.broadcast_device, '\n');
});

test('a machine running an NTP client gets a twin with sync: ntp, and the difference in clients is listed', async () => {
  const r = await recorded('firecracker-pvm');
  const withChrony = { ...r, ntp: { ...r.ntp, clients: { ok: true as const, value: ['chronyd'] } } };
  const plan = planTwin(withChrony);
  const s = parseScenarioText(plan.yaml, 'twin');
  assert.equal(s.vms[0]!.sync.method, 'ntp');
  assert.ok(
    plan.gaps.some((g) => g.includes('chronyd')),
    "plan.gaps.some((g) => g.includes('chronyd'))",
  );
  assert.equal(parseScenarioText(planTwin(r).yaml, 'twin').vms[0]!.sync.method, 'none'); // this machine runs none
});

test('recorded KVM and TCG machines: what their twins do not reproduce is only the documented boot-timing numbers', async () => {
  const expected: Record<string, string[]> = {
    // told its TSC rate by kvm-clock: only the sched_clock stamps differ
    'firecracker-pvm': ['sched-clock-marking-stable'],
    // calibrated against the PIT under TCG: the early calibration's read-phase error, and sched_clock
    'qemu-tcg-pc': ['tsc-measured-frequency', 'tsc-measured-frequency', 'sched-clock-marking-stable'],
  };
  for (const [m, gaps] of Object.entries(expected)) {
    const report = await recorded(m);
    const r = replayScenario(planTwin(report).scenario);
    assert.ok(r.ok, m);
    const c = compareTwin(machineView(report), r.value);
    assert.deepEqual(
      c.differences.map((d) => d.gap?.id ?? `unexplained: ${d.what}: ${d.machine} | ${d.twin}`),
      gaps,
      m,
    );
  }
});
