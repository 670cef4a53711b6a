import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScenarioText } from '../../src/world/scenario.ts';
import { simulate, timelineCsv } from '../../src/world/simulation.ts';
import { DEMO_SCENARIO_YAML } from '../../src/world/demo.ts';

const HOUR = 3_600_000_000_000n;

const scenario = (ppm: number, vm: string, duration = '1d', sample = '1h') => `
name: t
duration: ${duration}
sample_interval: ${sample}
hosts:
  - name: h
    oscillator: { ppm: ${ppm} }
    tsc: { freq_khz: 2596136 }
vms:
  - { name: v, host: h, ${vm} }
`;

const offsetAt = (rows: ReturnType<typeof simulate>['timeline'], t: bigint) => {
  const r = rows.find((x) => x.t === t);
  assert.ok(r, `no sample at ${t}`);
  return r.guestOffsetNs;
};

test('a guest without NTP inherits the host crystal: +12 ppm gains 12 µs per second', () => {
  const res = simulate(parseScenarioText(scenario(12, 'profile: qemu-kvm-noinvtsc, update_interval: 10s')));
  const v = res.summary.vms[0]!;
  assert.equal(v.clocksource, 'kvm-clock');
  assert.equal(v.wall_clock_source, 'kvmclock');
  // from 1 h to 24 h: 23 h × 12e-6 = 993.6 ms (to well under a microsecond per hour of kvmclock rounding)
  const gained = Number(offsetAt(res.timeline, 24n * HOUR) - offsetAt(res.timeline, HOUR));
  assert.ok(Math.abs(gained - 993.6e6) < 50e3, `gained ${gained} ns`);
  assert.ok(Math.abs(v.drift_ppm - 12) < 0.01, String(v.drift_ppm));
});

test('QEMU pause: kvmclock saved and restored, so monotonic skips the pause and the wall clock falls behind by it', () => {
  const res = simulate(parseScenarioText(scenario(0, 'profile: qemu-kvm-noinvtsc, pauses: [{ at: 2h, duration: 15s }]', '3h', '10min')));
  const p = res.summary.vms[0]!.pauses[0]!;
  assert.equal(p.monotonic_advance_ns, '0');
  const lost = Number(BigInt(p.offset_before_ns) - BigInt(p.offset_after_resume_ns!));
  assert.ok(Math.abs(lost - 15e9) < 1e3, `lost ${lost}`);
  assert.equal(p.offset_after_sync_ns, null);
  assert.ok(Number(res.summary.vms[0]!.final_offset_ns) < -14.9e9);
});

test('Firecracker pause: kvmclock runs on, so monotonic sees the pause and the wall clock stays right', () => {
  const res = simulate(
    parseScenarioText(
      scenario(0, 'profile: firecracker, cmdline: "clocksource=kvm-clock", pauses: [{ at: 2h, duration: 15s }]', '3h', '10min'),
    ),
  );
  const v = res.summary.vms[0]!;
  assert.equal(v.clocksource, 'kvm-clock');
  const p = v.pauses[0]!;
  assert.ok(Math.abs(Number(p.monotonic_advance_ns!) - 15e9) < 1e3, p.monotonic_advance_ns!);
  assert.ok(Math.abs(Number(BigInt(p.offset_after_resume_ns!) - BigInt(p.offset_before_ns))) < 1e3);
});

test('a guest on the tsc clocksource sees a QEMU pause as elapsed time: no wall-clock lag', () => {
  const res = simulate(parseScenarioText(scenario(0, 'profile: qemu-kvm, pauses: [{ at: 2h, duration: 15s }]', '3h', '10min')));
  const v = res.summary.vms[0]!;
  assert.equal(v.clocksource, 'tsc');
  const p = v.pauses[0]!;
  // within the guest's own TSC calibration error (well under 1 ppm of 15 s)
  assert.ok(Math.abs(Number(p.monotonic_advance_ns!) - 15e9) < 10e3, p.monotonic_advance_ns!);
  assert.ok(Math.abs(Number(BigInt(p.offset_after_resume_ns!) - BigInt(p.offset_before_ns))) < 10e3);
});

test('guest-agent guest-set-time after the resume puts the wall clock right', () => {
  const res = simulate(
    parseScenarioText(
      scenario(
        0,
        'profile: qemu-kvm-noinvtsc, pauses: [{ at: 2h, duration: 15s }], sync: { method: agent, agent_delay: 2s }',
        '3h',
        '10min',
      ),
    ),
  );
  const p = res.summary.vms[0]!.pauses[0]!;
  assert.ok(Math.abs(Number(p.offset_after_sync_ns)) < 1e3, String(p.offset_after_sync_ns));
  assert.ok(Math.abs(Number(res.summary.vms[0]!.final_offset_ns)) < 1e6);
});

test('NTP in the guest disciplines a 50 ppm crystal away and steps back a paused clock', () => {
  const res = simulate(
    parseScenarioText(
      scenario(50, 'profile: qemu-kvm-noinvtsc, pauses: [{ at: 20h, duration: 15s }], sync: { method: ntp }', '1d', '10min'),
    ),
  );
  const v = res.summary.vms[0]!;
  assert.ok(Math.abs(Number(offsetAt(res.timeline, 19n * HOUR))) < 1e6, 'disciplined to under 1 ms before the pause');
  assert.ok(Math.abs(v.drift_ppm) < 1, `residual drift ${v.drift_ppm} ppm`);
  const p = v.pauses[0]!;
  assert.ok(Number(p.offset_after_resume_ns) < -14.9e9);
  assert.ok(Math.abs(Number(p.offset_after_sync_ns)) < 1e6, String(p.offset_after_sync_ns));
  assert.ok(Math.abs(Number(v.final_offset_ns)) < 1e6, v.final_offset_ns);
});

test('same scenario and seed give byte-identical output; another seed changes the wander', () => {
  const yaml = scenario(12, 'profile: qemu-kvm-noinvtsc, update_interval: 10s', '6h').replace(
    'oscillator: { ppm: 12 }',
    'oscillator: { ppm: 12, wander_sigma_ppm: 0.01, wander_interval: 10s }',
  );
  const s = parseScenarioText(yaml);
  const a = simulate(s);
  const b = simulate(s);
  assert.equal(JSON.stringify(a.summary), JSON.stringify(b.summary));
  assert.equal(timelineCsv(a.timeline), timelineCsv(b.timeline));
  const c = simulate({ ...s, seed: 43 });
  assert.notEqual(timelineCsv(c.timeline), timelineCsv(a.timeline));
});

test('the demo parses and names four guests', () => {
  const s = parseScenarioText(DEMO_SCENARIO_YAML);
  assert.deepEqual(
    s.vms.map((v) => v.name),
    ['vm-kvmclock', 'vm-agent', 'vm-ntp', 'vm-tsc'],
  );
});

test('kvmclock_at_init moves kernel entry to when kvm-clock reads that value (the sched offset line)', () => {
  const base = simulate(parseScenarioText(scenario(0, 'profile: firecracker, update_interval: 10s', '1min', '10s')));
  const late = simulate(parseScenarioText(scenario(0, 'profile: firecracker, update_interval: 10s, kvmclock_at_init: 2s', '1min', '10s')));
  // the first sample is taken at kernel entry: 2 s after VM creation (to within kvm-clock's 1-ns scaling)
  const t0 = late.timeline[0]!.t;
  assert.ok(t0 >= 2_000_000_000n && t0 <= 2_000_000_002n, String(t0));
  assert.ok(base.timeline[0]!.t < 1_000_000_000n);
});

test('QEMU TCG pause: the emulated TSC stops (cpu_disable_ticks), so a tsc guest lags by the pause as the real lab guest did', () => {
  const res = simulate(
    parseScenarioText(
      scenario(0, 'profile: qemu-tcg, kernel: debian12, update_interval: 10s, pauses: [{ at: 1h, duration: 15s }]', '2h', '10min'),
    ),
  );
  const v = res.summary.vms[0]!;
  const p = v.pauses[0]!;
  assert.ok(Math.abs(Number(p.monotonic_advance_ns)) < 10e3, `${v.clocksource}: monotonic advanced ${p.monotonic_advance_ns}`);
  const lost = Number(BigInt(p.offset_before_ns) - BigInt(p.offset_after_resume_ns!));
  assert.ok(Math.abs(lost - 15e9) < 10e3, `lost ${lost}`);
});

test('a host whose own clock is 3 s off hands that error to an RTC-clocked guest', () => {
  const yaml = scenario(0, 'profile: qemu-kvm, cmdline: "no-kvmclock", update_interval: 10s', '10min', '1min').replace(
    'oscillator: { ppm: 0 }',
    'oscillator: { ppm: 0 }\n    ntp: false\n    realtime_error: 3',
  );
  const res = simulate(parseScenarioText(yaml));
  const v = res.summary.vms[0]!;
  assert.equal(v.wall_clock_source, 'cmos');
  // RTC whole seconds (+0.5 s from rtc_hctosys) on top of the host's +3 s: within (2.5, 3.5] s
  const off = Number(v.final_offset_ns);
  assert.ok(off > 2.5e9 && off <= 3.5e9, String(off));
});
