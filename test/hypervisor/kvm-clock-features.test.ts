// Host-kernel KVM clock behaviours (KvmClockFeatures): mainline against the patches of dwmw2's "Cleaning up
// the KVM clock mess" series (v6, 2026-07-03) — the Hz kvmclock scale (02/36), get_kvmclock() through the
// guest's TSC scaling (13/36) and KVM_[GS]ET_CLOCK_GUEST (05/36). A 2.6 GHz guest on a 3.0 GHz VMX host.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodePvclock,
  MSR_IA32_TSC,
  MSR_KVM_SYSTEM_TIME_NEW,
  PVCLOCK_VCPU_TIME_INFO_SIZE,
  pvclockReadCycles,
} from '../../src/core/index.ts';
import {
  FlatGuestMemory,
  hvclockToHz,
  type KvmClockFeatures,
  KvmIoctlError,
  KvmVm,
  kvmclockScale,
  kvmclockTargetHz,
  MAINLINE_KVM_CLOCK,
  NO_TSC_SCALING,
  predictGetClock,
  SVM_TSC_SCALING,
  tscScalingRatio,
  VMX_TSC_SCALING,
} from '../../src/hypervisor/index.ts';
import { ManualHost } from './helpers.ts';

const GPA = 0x1000n;
const ALL: KvmClockFeatures = { hzTscScale: true, scaledGetClock: true, clockGuestIoctls: true };

/** A VM on `hostKhz` with one vCPU at `guestKhz`, set up as a VMM does (KVM_SET_TSC_KHZ, then a host TSC write). */
function guestOn(hostKhz: number, guestKhz: number, clockFeatures: KvmClockFeatures, scaling = VMX_TSC_SCALING, tsc = 1_000_000n) {
  const host = new ManualHost(hostKhz);
  const memory = new FlatGuestMemory(0x10000);
  const vm = new KvmVm({ host: host.tk, memory, tscScaling: scaling, clockFeatures });
  const v = vm.createVcpu();
  v.setTscKhz(guestKhz);
  v.setMsr(MSR_IA32_TSC, tsc, true); // kvm_synchronize_tsc: last_tsc_scaling_ratio is this vCPU's
  v.setMsr(MSR_KVM_SYSTEM_TIME_NEW, GPA | 1n);
  v.run(0);
  const record = () => decodePvclock(memory.read(GPA, PVCLOCK_VCPU_TIME_INFO_SIZE));
  /** What the guest's kvm-clock reads now. */
  const guestReads = () => pvclockReadCycles(record(), v.readL1Tsc());
  return { host, memory, vm, v, record, guestReads };
}

test('kvmclock scale with TSC scaling: mainline truncates the scaled kHz (2,599,999,000 Hz), hz_tsc_scale keeps Hz (2,599,999,999)', () => {
  for (const caps of [VMX_TSC_SCALING, SVM_TSC_SCALING]) {
    const ratio = tscScalingRatio(2_600_000, 3_000_000, caps); // floor(2.6/3.0 · 2^frac_bits): just below 2.6/3.0
    assert.equal(kvmclockTargetHz(3_000_000, ratio, caps, false), 2_599_999_000n);
    assert.equal(kvmclockTargetHz(3_000_000, ratio, caps, true), 2_599_999_999n);
  }
  assert.equal(kvmclockTargetHz(2_600_000, 0n, NO_TSC_SCALING, false), 2_600_000_000n); // no scaling: the host's own rate
  // the multiplier the guest is given, and what hvclock_to_hz makes of it back
  assert.equal(guestOn(3_000_000, 2_600_000, MAINLINE_KVM_CLOCK).record().tscToSystemMul, 3_303_822_267);
  assert.equal(guestOn(3_000_000, 2_600_000, ALL).record().tscToSystemMul, 3_303_820_999);
  assert.equal(kvmclockScale(2_600_000).mul, 3_303_820_996);
  assert.equal(hvclockToHz(3_303_820_996, -1), 2_600_000_000n);
  assert.equal(hvclockToHz(3_303_822_267, -1), 2_599_999_000n);
  assert.equal(hvclockToHz(3_303_820_999, -1), 2_599_999_998n); // (10^9 << 34) / mul >> 1, truncated twice
});

test('KVM_GET_CLOCK on a scaled vCPU: mainline runs at the host scale, 230,796 ns behind the guest after 600 s; scaled_get_clock reads what the guest reads', () => {
  const behind = (f: KvmClockFeatures) => {
    const g = guestOn(3_000_000, 2_600_000, f);
    g.host.advance(600n * 3_000_000_000n);
    const c = g.vm.getClock();
    const guest = pvclockReadCycles(g.record(), g.v.readL1Tsc(c.hostTsc));
    assert.equal(
      predictGetClock(g.record(), c.hostTsc, { tscOffset: g.v.l1TscOffset, ratio: g.v.l1TscScalingRatio, caps: VMX_TSC_SCALING }),
      guest,
    );
    return guest - c.clock;
  };
  // the guest's clock: 2.6 GHz cycles at a 2,599,999 kHz scale, 0.384615 ppm fast; KVM_GET_CLOCK: the host's 3.0 GHz scale
  assert.equal(behind(MAINLINE_KVM_CLOCK), 230_796n);
  // Hz scale: the guest is right to 2^-32 and ~1 Hz; mainline KVM_GET_CLOCK still does not use the guest's scale
  assert.equal(behind({ ...MAINLINE_KVM_CLOCK, hzTscScale: true }), 517n);
  // kvm_scale_tsc(host delta) against the difference of two scaled TSCs: they may differ by a cycle (< 1 ns)
  assert.equal(behind({ ...MAINLINE_KVM_CLOCK, scaledGetClock: true }), 1n);
  assert.equal(behind(ALL), 1n);
});

test('KVM_GET_CLOCK_GUEST returns the record the guest sees; ENOTTY on a mainline kernel, EINVAL without the master clock', () => {
  const g = guestOn(3_000_000, 2_600_000, ALL);
  const { version: _v, ...seen } = g.record();
  const { version: _w, ...got } = g.vm.getClockGuest(g.v);
  assert.deepEqual(got, seen);
  assert.throws(
    () => guestOn(3_000_000, 2_600_000, MAINLINE_KVM_CLOCK).vm.getClockGuest(guestOn(3_000_000, 2_600_000, MAINLINE_KVM_CLOCK).v),
    (e) => e instanceof KvmIoctlError && e.errno === 'ENOTTY',
  );
  const host = new ManualHost(3_000_000, 1_000_000_000_000n, { clocksourceIsTsc: false }); // no master clock
  const vm = new KvmVm({ host: host.tk, memory: new FlatGuestMemory(0x10000), clockFeatures: ALL });
  const v = vm.createVcpu();
  v.run(0);
  assert.throws(
    () => vm.getClockGuest(v),
    (e) => e instanceof KvmIoctlError && e.errno === 'EINVAL',
  );
});

test('KVM_SET_CLOCK_GUEST after a migration from a scaled host: the guest reads the saved record at its TSC exactly; KVM_SET_CLOCK alone steps it 230,796 ns back', () => {
  const migrate = (useClockGuest: boolean) => {
    const src = guestOn(3_000_000, 2_600_000, { ...ALL, hzTscScale: false, scaledGetClock: false }); // a mainline-scale source with the ioctls
    src.host.advance(600n * 3_000_000_000n);
    const saved = { clock: src.vm.getClock(), tsc: src.v.readL1Tsc(), pvclock: src.vm.getClockGuest(src.v), before: src.guestReads() };
    // the destination: an unscaled 2.6 GHz host; the VMM restores the TSC, KVM_SET_CLOCK, then KVM_SET_CLOCK_GUEST
    const dst = guestOn(2_600_000, 2_600_000, ALL, VMX_TSC_SCALING, saved.tsc);
    dst.vm.setClock({ clock: saved.clock.clock });
    if (useClockGuest) dst.vm.setClockGuest(dst.v, saved.pvclock);
    dst.v.run(0);
    assert.equal(dst.v.readL1Tsc(), saved.tsc); // no time passed on the destination
    return dst.guestReads() - saved.before;
  };
  assert.equal(migrate(true), 0n);
  assert.equal(migrate(false), -230_796n);
});

test('KVM_SET_CLOCK_GUEST refuses a record more than 1 kHz from the vCPU’s TSC rate (ERANGE) and keeps the clock; a guest TSC behind the record is EINVAL', () => {
  const src = guestOn(2_600_000, 2_600_000, ALL);
  const rec = src.vm.getClockGuest(src.v);
  const dst = guestOn(3_000_000, 3_000_000, ALL); // the same record on a 3.0 GHz vCPU: 400 MHz off
  const offset = dst.vm.kvmclockOffset;
  assert.throws(
    () => dst.vm.setClockGuest(dst.v, rec),
    (e) =>
      e instanceof KvmIoctlError &&
      e.errno === 'ERANGE' &&
      /2600000000 Hz is more than 1 kHz from the vCPU's 3000000000 Hz/.test(e.message),
  );
  assert.equal(dst.vm.kvmclockOffset, offset);
  const ahead = guestOn(2_600_000, 2_600_000, ALL);
  assert.throws(
    () => ahead.vm.setClockGuest(ahead.v, { ...rec, tscTimestamp: ahead.v.readL1Tsc() + 1_000_000n }),
    (e) => e instanceof KvmIoctlError && e.errno === 'EINVAL',
  );
  assert.throws(
    () => ahead.vm.setClockGuest(ahead.v, { ...rec, tscShift: 32 }),
    (e) => e instanceof KvmIoctlError && e.errno === 'EINVAL',
  );
});
