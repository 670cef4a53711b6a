// Snapshot/restore, live migration and host clock steps, per VMM (src/vmm/snapshot.ts cites each one's
// source), on the scenarios in examples/: each asserted outcome and verdict.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { InputError } from '../../src/core/errors.ts';
import { parseScenarioText, simulate, type VmSummary } from '../../src/world/index.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const run = (file: string) => simulate(parseScenarioText(readFileSync(join(EXAMPLES, file), 'utf8'), file)).summary;
const vmOf = (vms: VmSummary[], name: string) => vms.find((v) => v.name === name)!;
const eventOf = (v: VmSummary, kind: string) => v.events.find((e) => e.kind === kind)!;
const change = (e: { offset_before_ns: string; offset_after_ns: string | null }) => BigInt(e.offset_after_ns!) - BigInt(e.offset_before_ns);
const S = 1_000_000_000n;

test('Firecracker restore after 60 s, default load options: kvmclock and TSC restored as saved — 60 s behind, monotonic saw nothing', () => {
  const s = run('firecracker-restore-60s.yaml');
  for (const name of ['fc-tsc', 'fc-kvmclock']) {
    const v = vmOf(s.vms, name);
    const r = eventOf(v, 'restore');
    // the guest's clock reads exactly what it read at the save: the offset grows by the gap, to the ns
    assert.equal(change(r), -60n * S, name);
    assert.equal(r.monotonic_advance_ns, '0', name);
    assert.match(
      r.verdict,
      /^restored 60\.000 s later: REALTIME moved 60\.000 s back .*MONOTONIC did not see the gap \(kvmclock restored without KVM_CLOCK_REALTIME/,
    );
    assert.equal(eventOf(v, 'snapshot').offset_after_ns, null);
  }
  assert.equal(vmOf(s.vms, 'fc-tsc').final_clocksource, 'tsc');
  assert.equal(vmOf(s.vms, 'fc-kvmclock').final_clocksource, 'kvm-clock');
});

test('Firecracker clock_realtime: KVM advances kvmclock by the gap — a kvm-clock guest is right, a tsc guest still 60 s behind', () => {
  const s = run('firecracker-restore-60s-clock-realtime.yaml');
  const kc = eventOf(vmOf(s.vms, 'fc-kvmclock'), 'restore');
  // REALTIME and MONOTONIC move together by what KVM_SET_CLOCK added: the host's CLOCK_REALTIME elapsed
  // (x86.c kvm_vm_ioctl_set_clock reads ktime_get_real_ns; this host is NTP-synced, so exactly the 60 s gap)
  assert.equal(BigInt(kc.monotonic_advance_ns!) - 60n * S, change(kc));
  assert.equal(change(kc), 0n);
  assert.match(
    kc.verdict,
    /REALTIME unchanged; MONOTONIC saw the gap \(kvmclock restored with KVM_CLOCK_REALTIME; VMGenID changed: the guest reseeded its CRNG\)$/,
  );
  const tsc = eventOf(vmOf(s.vms, 'fc-tsc'), 'restore');
  assert.equal(change(tsc), -60n * S); // the TSC was restored as saved
  assert.match(tsc.verdict, /the TSC restored from the saved MSR_IA32_TSC/);
});

test('Cloud Hypervisor restore an hour later: KVM_CLOCK_REALTIME always, so a kvm-clock guest catches up', () => {
  const v = vmOf(run('cloud-hypervisor-restore-1h.yaml').vms, 'ch');
  const r = eventOf(v, 'restore');
  assert.equal(BigInt(r.monotonic_advance_ns!) - 3600n * S, change(r));
  assert.equal(change(r), 0n); // the NTP-synced host's REALTIME elapsed exactly the hour
  assert.match(r.verdict, /^restored 1\.00 h later: REALTIME unchanged; MONOTONIC saw the gap/);
});

test('QEMU restore an hour later: an hour behind, and the agent’s guest-set-time puts it right to the ns', () => {
  const s = run('qemu-restore-1h-agent.yaml');
  for (const name of ['qemu-agent', 'qemu-none']) assert.equal(change(eventOf(vmOf(s.vms, name), 'restore')), -3600n * S, name);
  const sync = eventOf(vmOf(s.vms, 'qemu-agent'), 'sync');
  assert.equal(sync.offset_after_ns, '0'); // settimeofday to the host's (NTP-true) REALTIME, read at the same instant
  assert.match(sync.verdict, /^the agent's guest-set-time put REALTIME from 1\.00 h behind to right within 1 ms$/);
  assert.equal(
    vmOf(s.vms, 'qemu-none').events.some((e) => e.kind === 'sync'),
    false,
  );
});

test('migration 2.6 → 3.0 GHz: the downtime is lost; without TSC scaling the TSC runs 15 % fast and the watchdog says so; with it kvm-clock runs 0.38 ppm fast', () => {
  const s = run('migrate-2.6-to-3.0ghz.yaml');
  for (const v of s.vms) assert.equal(change(eventOf(v, 'migration')), -100_000_000n, v.name); // QEMU restores kvmclock and TSC as saved
  const unscaled = vmOf(s.vms, 'kvmclock-unscaled');
  assert.match(eventOf(unscaled, 'migration').verdict, /KVM_SET_TSC_KHZ failed, so the guest TSC runs at the destination's rate/);
  assert.ok(
    unscaled.kernel_log.some((l) => /Marking clocksource 'tsc' as unstable because the skew is too large/.test(l)),
    unscaled.kernel_log.join('\n'),
  );
  assert.equal(unscaled.final_clocksource, 'kvm-clock');
  // KVM scales kvmclock by the destination's own 3,000,000 kHz: the guest keeps true time (sample rounding: 6 decimals)
  assert.ok(Math.abs(unscaled.drift_ppm) < 0.001, String(unscaled.drift_ppm));
  // with TSC scaling KVM takes kvmclock's scale from kvm_scale_tsc(3,000,000 kHz, ratio) = 2,599,999 kHz (the ratio
  // floor((2,600,000 << 48) / 3,000,000) truncates): the guest's 2.6 GHz TSC read as 2.599999 GHz runs
  // 2,600,000/2,599,999 − 1 = 0.384615 ppm fast, less the pvclock multiplier's own truncation (2^-32 ≈ 0.0002 ppm)
  const scaled = vmOf(s.vms, 'kvmclock-scaled');
  assert.ok(Math.abs(scaled.drift_ppm - 0.384615) < 0.0005, String(scaled.drift_ppm));
  const tsc = vmOf(s.vms, 'tsc-scaled');
  assert.equal(tsc.final_clocksource, 'tsc');
  assert.ok(Math.abs(tsc.drift_ppm) < 0.1, String(tsc.drift_ppm)); // the scaled TSC keeps its rate (guest tsc mult rounding)
});

test('a host clock step: running guests do not move; an agent sync then copies the host’s wrong time', () => {
  const s = run('host-clock-step.yaml');
  const quiet = vmOf(s.vms, 'quiet');
  const step = eventOf(quiet, 'host_step');
  assert.equal(change(step), 0n);
  assert.match(step.verdict, /REALTIME stepped -30\.000 s: REALTIME unchanged in the guest/);
  const agent = vmOf(s.vms, 'agent');
  assert.equal(eventOf(agent, 'sync').offset_after_ns, String(-30n * S));
});

const BASE = `duration: 20min
hosts:
  - { name: src, tsc: { freq_khz: 2600000 } }
  - { name: dst, tsc: { freq_khz: 3000000 } }
vms:
`;
function refusal(vm: string): InputError {
  try {
    parseScenarioText(`${BASE}${vm}`, 'm.yaml');
  } catch (e) {
    assert.ok(e instanceof InputError, String(e));
    return e;
  }
  assert.fail('expected an InputError');
}

test('what a VMM refuses is refused with its reason, naming the file, line and path', () => {
  let e = refusal('  - { name: v, host: src, profile: qemu-kvm, migrations: [{ at: 5min, to: dst, downtime: 100ms }] }\n');
  assert.equal(e.path, 'vms[0].migrations[0]');
  assert.match(e.message, /QEMU refuses: "State blocked by non-migratable CPU device \(invtsc flag\)"/);
  e = refusal(
    '  - { name: v, host: src, profile: qemu-kvm, tsc_frequency_khz: 2600000, migrations: [{ at: 5min, to: dst, downtime: 100ms, tsc_scaling: false }] }\n',
  );
  assert.match(e.message, /TSC frequency mismatch between VM \(2600000 kHz\) and host \(3000000 kHz\), and TSC scaling unavailable/);
  e = refusal('  - { name: v, host: src, profile: firecracker, migrations: [{ at: 5min, to: dst, downtime: 100ms }] }\n');
  assert.match(e.message, /Firecracker has no live migration/);
  e = refusal('  - { name: v, host: src, profile: kvmtool, snapshots: [{ at: 5min, restore_after: 1min }] }\n');
  assert.equal(e.path, 'vms[0].snapshots[0]');
  assert.match(e.message, /kvmtool cannot save/);
  e = refusal('  - { name: v, host: src, profile: qemu-kvm-noinvtsc, migrations: [{ at: 5min, to: nowhere, downtime: 1s }] }\n');
  assert.equal(e.path, 'vms[0].migrations[0].to');
  e = refusal(
    '  - { name: v, host: src, profile: qemu-kvm-noinvtsc, pauses: [{ at: 5min, duration: 2min }], snapshots: [{ at: 6min, restore_after: 1min }] }\n',
  );
  assert.equal(e.path, 'vms[0].snapshots[0].at');
  assert.match(e.message, /overlaps an earlier pause/);
  e = refusal('  - { name: v, host: src, profile: qemu-kvm-noinvtsc, snapshots: [{ at: 30min, restore_after: 1min }] }\n');
  assert.match(e.message, /after the end of the run/);
  e = refusal(
    '  - { name: v, host: src, profile: cloud-hypervisor, snapshots: [{ at: 5min, restore_after: 1min, clock_realtime: false }] }\n',
  );
  assert.match(e.message, /always restores kvmclock with KVM_CLOCK_REALTIME/);
  assert.equal(e.where, 'm.yaml:6');
});
