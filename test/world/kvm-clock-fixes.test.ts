// hosts[].kvm (the host kernel's KVM clock behaviours) and vms[].clock_guest on examples/migrate-kvm-clock-fixes.yaml:
// a kvm-clock guest migrated 2.6 → 3.0 GHz with TSC scaling and back after 10 minutes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { InputError } from '../../src/core/errors.ts';
import { parseScenarioText, simulate, type VmEvent, type VmSummary } from '../../src/world/index.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const run = (file: string) => simulate(parseScenarioText(readFileSync(join(EXAMPLES, file), 'utf8'), file)).summary;
const vmOf = (vms: VmSummary[], name: string) => vms.find((v) => v.name === name)!;
const migrations = (v: VmSummary) => v.events.filter((e) => e.kind === 'migration');
const change = (e: VmEvent) => BigInt(e.offset_after_ns!) - BigInt(e.offset_before_ns);
/** REALTIME gained while on the 3.0 GHz host: from after the first migration to before the second. */
const gainedAway = (v: VmSummary) => BigInt(migrations(v)[1]!.offset_before_ns) - BigInt(migrations(v)[0]!.offset_after_ns!);
const DOWNTIME = 100_000_000n;

test('mainline KVM: 0.38 ppm fast on the scaled host, and the way back saves KVM_GET_CLOCK 230.757 µs behind the guest: REALTIME and MONOTONIC step back', () => {
  const v = vmOf(run('migrate-kvm-clock-fixes.yaml').vms, 'mainline');
  const [there, back] = migrations(v);
  assert.equal(change(there!), -DOWNTIME); // from an unscaled host KVM_GET_CLOCK is what the guest reads
  assert.equal(there!.monotonic_advance_ns, '0');
  // 599.9 s at 2,600,000/2,599,999 − 1 = 0.3846 ppm fast (less the 32.32 multiplier's own truncation)
  assert.equal(gainedAway(v), 230_617n);
  // KVM_GET_CLOCK on the 3.0 GHz host read the host TSC at the host's scale since the master-clock snapshot
  // taken at the first restore: 230,757 ns less than the guest's record gave; QEMU restored that
  assert.equal(change(back!), -DOWNTIME - 230_757n);
  assert.equal(back!.monotonic_advance_ns, '-230757');
  assert.match(
    back!.verdict,
    /MONOTONIC went back 230\.757 µs \(kvmclock restored without KVM_CLOCK_REALTIME; KVM_GET_CLOCK had saved 230\.757 µs less than the guest's kvm-clock read/,
  );
});

test('scaled_get_clock: KVM_GET_CLOCK reads what the guest reads (1 ns: kvm_scale_tsc of the delta), the rate error stays', () => {
  const v = vmOf(run('migrate-kvm-clock-fixes.yaml').vms, 'getclock');
  const [, back] = migrations(v);
  assert.equal(gainedAway(v), 230_617n); // the guest's own kvmclock scale is still mainline's
  assert.equal(change(back!), -DOWNTIME - 1n);
  assert.equal(back!.monotonic_advance_ns, '-1');
});

test('the 2026 series and the documented procedure (TSC moved on by the elapsed realtime, KVM_SET_CLOCK_GUEST): right rate to 0.0006 ppm, and the migrations are invisible', () => {
  const v = vmOf(run('migrate-kvm-clock-fixes.yaml').vms, 'series');
  assert.equal(gainedAway(v), 377n); // 2,599,999,999 Hz and the multiplier's truncation: 0.00063 ppm over 599.9 s
  // kvmclock stays the same function of the guest TSC, and the TSC moved on by ΔT as the host's CLOCK_REALTIME
  // counts it (the scenario's hosts are NTP-synced: exactly the 100 ms downtime, a whole number of cycles here)
  assert.deepEqual(
    migrations(v).map((m) => [change(m), m.monotonic_advance_ns]),
    [
      [0n, '100000000'],
      [0n, '100000000'],
    ],
  );
  for (const m of migrations(v))
    assert.match(
      m.verdict,
      /REALTIME unchanged; MONOTONIC saw the gap \(the guest TSC moved on by the 100\.000 ms the host's realtime advanced; KVM_SET_CLOCK_GUEST put back the saved pvclock record/,
    );
});

const HOSTS = `duration: 20min
hosts:
  - { name: src, tsc: { freq_khz: 2600000 }, kvm: { clock_guest_ioctls: true } }
  - { name: dst, tsc: { freq_khz: 3000000 }, kvm: { clock_guest_ioctls: true } }
  - { name: old, tsc: { freq_khz: 2600000 } }
vms:
`;

test('clock_guest falls back to KVM_SET_CLOCK with KVM_CLOCK_REALTIME as documented: no ioctl on a mainline kernel (ENOTTY), a record 400 MHz off without TSC scaling (ERANGE)', () => {
  const s = simulate(
    parseScenarioText(
      `${HOSTS}  - { name: old-kernel, host: old, profile: qemu-kvm-noinvtsc, clock_guest: true, migrations: [{ at: 5min, to: src, downtime: 100ms }] }
  - { name: unscaled, host: src, profile: qemu-kvm-noinvtsc, clock_guest: true, migrations: [{ at: 5min, to: dst, downtime: 100ms, tsc_scaling: false }] }
`,
      'cg.yaml',
    ),
  ).summary;
  const old = migrations(vmOf(s.vms, 'old-kernel'))[0]!;
  assert.match(
    old.verdict,
    /KVM_SET_CLOCK_GUEST not used \(KVM_GET_CLOCK_GUEST: not in this host kernel \(ENOTTY\)\), so KVM_SET_CLOCK with KVM_CLOCK_REALTIME/,
  );
  assert.equal(change(old), 0n); // kvmclock caught up by the downtime as the host's (NTP-synced) realtime counts it
  const unscaled = migrations(vmOf(s.vms, 'unscaled'))[0]!;
  assert.match(
    unscaled.verdict,
    /KVM_SET_CLOCK_GUEST not used \(KVM_SET_CLOCK_GUEST: the record's 2600000000 Hz is more than 1 kHz from the vCPU's 3000000000 Hz \(ERANGE\)\), so KVM_SET_CLOCK with KVM_CLOCK_REALTIME/,
  );
});

test('bad input: an unknown hosts[].kvm key and clock_guest on a profile without KVM are refused, naming the path', () => {
  const refusal = (text: string) => {
    try {
      parseScenarioText(text, 'k.yaml');
    } catch (e) {
      assert.ok(e instanceof InputError, String(e));
      return e;
    }
    assert.fail('expected an InputError');
  };
  let e = refusal(`duration: 1min
hosts: [{ name: h, tsc: { freq_khz: 2600000 }, kvm: { clock_guest: true } }]
vms: [{ name: v, host: h }]
`);
  assert.equal(e.path, 'hosts[0].kvm.clock_guest');
  e = refusal(`${HOSTS}  - { name: v, host: src, profile: qemu-tcg, clock_guest: true }\n`);
  assert.equal(e.path, 'vms[0].clock_guest');
  assert.match(e.message, /profile qemu-tcg has no KVM clock/);
});
