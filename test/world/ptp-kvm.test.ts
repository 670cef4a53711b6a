// chronyd with `refclock PHC /dev/ptp0` on the ptp_kvm clock (examples/chrony-ptp-kvm.yaml): a guest locked
// to its host's REALTIME through KVM_HC_CLOCK_PAIRING, across a pause and a snapshot restore.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { InputError } from '../../src/core/errors.ts';
import { parseScenario, parseScenarioText, type ScenarioInput, simulate } from '../../src/world/index.ts';

const EXAMPLE = join(import.meta.dirname, '../../examples/chrony-ptp-kvm.yaml');
const S = 1_000_000_000n;

test('after a 60 s pause (kvm-clock) and a 60 s snapshot gap (tsc) chronyd steps onto the host REALTIME via PHC0 and stays within 1 µs', () => {
  const { summary, timeline } = simulate(parseScenarioText(readFileSync(EXAMPLE, 'utf8'), EXAMPLE));
  for (const [name, cs, bound] of [
    ['qemu-kvmclock', 'kvm-clock', 100n], // PTP_SYS_OFFSET_PRECISE: exact pairs, only chrony's own loop noise
    ['fc-tsc', 'tsc', 250n], // PTP_SYS_OFFSET: the readings sit 100 ns off (the hypercall's asymmetry)
  ] as const) {
    const v = summary.vms.find((x) => x.name === name)!;
    assert.equal(v.final_clocksource, cs);
    assert.equal(v.chrony!.reference_id, 'PHC0');
    assert.equal(v.chrony!.stratum, 1); // refclock stratum 0 → chronyd stratum 1
    const steps = v.chrony_updates!.filter((u) => u.kind === 'step');
    assert.equal(steps.length, 1, name);
    // the step undoes the minute the guest's clock did not see, to within a microsecond
    assert.ok(Math.abs(steps[0]!.offset_s + 60) < 1e-6, `${name} step ${steps[0]!.offset_s}`);
    const after = timeline.filter((r) => r.vm === name && Number(r.t) / 1e9 > steps[0]!.at_s + 1);
    assert.ok(after.length > 20);
    for (const r of after) assert.ok(r.guestOffsetNs > -bound && r.guestOffsetNs < bound, `${name} at ${r.t}: ${r.guestOffsetNs}`);
  }
  // on tsc the guest settles ~100 ns ahead: chrony takes the reading's middle for the PHC read, 100 ns early
  const fc = timeline.filter((r) => r.vm === 'fc-tsc' && r.t > 400n * S);
  const mean = fc.reduce((a, r) => a + r.guestOffsetNs, 0n) / BigInt(fc.length);
  assert.ok(mean > 50n && mean < 150n, `mean ${mean}`);
});

const base = (vm: Record<string, unknown>, host: Record<string, unknown> = {}): ScenarioInput =>
  ({
    name: 'ptp',
    duration: '5min',
    sample_interval: '10s',
    hosts: [{ name: 'h0', tsc: { freq_khz: 2596136 }, ...host }],
    vms: [{ name: 'vm0', host: 'h0', profile: 'qemu-kvm-noinvtsc', ...vm }],
  }) as ScenarioInput;

test("the guest follows its host's REALTIME, not UTC: a host 5 s ahead without NTP puts the guest 5 s ahead", () => {
  const s = parseScenario(base({ sync: { method: 'chrony', makestep: [1, -1], refclock: {} } }, { ntp: false, realtime_error: 5 }));
  const { summary, timeline } = simulate(s);
  const last = timeline.filter((r) => r.vm === 'vm0').at(-1)!;
  assert.ok(last.guestOffsetNs - last.hostOffsetNs > -1000n && last.guestOffsetNs - last.hostOffsetNs < 1000n, String(last.guestOffsetNs));
  assert.ok(last.hostOffsetNs > 4n * S);
  assert.equal(summary.vms[0]!.chrony!.reference_id, 'PHC0');
  // deterministic: same scenario, same summary
  assert.deepEqual(simulate(s).summary, summary);
});

test('refclock beside a server: both selectable, the PHC (tighter root distance) is the reference', () => {
  const s = parseScenario({
    ...base({ sync: { method: 'chrony', servers: ['ntp1'], iburst: true, refclock: {} } }),
    ntp_servers: [{ name: 'ntp1', path: { delay: '1ms', jitter: '0.1ms' } }],
  } as ScenarioInput);
  const v = simulate(s).summary.vms[0]!;
  assert.equal(v.chrony!.reference_id, 'PHC0');
});

test('bad input: refclock without chrony, on a profile without KVM, ptp_kvm off, dpoll above poll — one line naming the path', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ sync: { method: 'ntp', refclock: {} } }, /vms\[0\]\.sync\.refclock.*set sync\.method to chrony/],
    [{ profile: 'qemu-tcg', sync: { method: 'chrony', refclock: {} } }, /vms\[0\]\.sync\.refclock.*KVM_HC_CLOCK_PAIRING.*qemu-tcg/],
    [{ profile: 'qemu-tcg', ptp_kvm: true }, /vms\[0\]\.ptp_kvm.*without KVM/],
    [{ ptp_kvm: false, sync: { method: 'chrony', refclock: {} } }, /vms\[0\]\.ptp_kvm.*\/dev\/ptp0/],
    [{ sync: { method: 'chrony', refclock: { poll: 2, dpoll: 3 } } }, /vms\[0\]\.sync\.refclock\.dpoll.*at most poll \(2\)/],
    [{ sync: { method: 'chrony', refclock: { phc: '/dev/ptp1' } } }, /vms\[0\]\.sync\.refclock\.phc/],
  ];
  for (const [vm, re] of bad) {
    assert.throws(
      () => parseScenario(base(vm)),
      (e: unknown) => e instanceof InputError && re.test(`${e.where} ${e.path ?? ''} ${e.message}`),
      JSON.stringify(vm),
    );
  }
});

test('after a live migration the PHC is the destination host’s clock: a guest moved to a host 3 s ahead follows it there', () => {
  const s = parseScenario({
    name: 'ptp-migrate',
    duration: '6min',
    sample_interval: '10s',
    hosts: [
      { name: 'a', tsc: { freq_khz: 2596136 } },
      { name: 'b', tsc: { freq_khz: 2596136 }, ntp: false, realtime_error: 3 },
    ],
    vms: [
      {
        name: 'vm0',
        host: 'a',
        profile: 'qemu-kvm-noinvtsc',
        migrations: [{ at: '2min', to: 'b', downtime: '100ms' }],
        sync: { method: 'chrony', makestep: [1, -1], refclock: { poll: 2 } },
      },
    ],
  } as ScenarioInput);
  const { timeline } = simulate(s);
  const rows = timeline.filter((r) => r.vm === 'vm0');
  const before = rows.filter((r) => r.t > 60n * S && r.t < 120n * S);
  assert.ok(before.every((r) => r.guestOffsetNs > -1000n && r.guestOffsetNs < 1000n)); // on host a: true UTC
  const last = rows.at(-1)!;
  assert.ok(last.hostOffsetNs > 2n * S, String(last.hostOffsetNs)); // now on host b
  assert.ok(last.guestOffsetNs - last.hostOffsetNs > -1000n && last.guestOffsetNs - last.hostOffsetNs < 1000n, String(last.guestOffsetNs));
});
