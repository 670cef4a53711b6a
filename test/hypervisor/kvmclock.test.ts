import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { u64 } from '../../src/core/u64.ts';
import {
  decodePvclock,
  decodeStealTime,
  decodeWallClock,
  MSR_IA32_TSC,
  MSR_KVM_STEAL_TIME,
  MSR_KVM_SYSTEM_TIME_NEW,
  MSR_KVM_WALL_CLOCK_NEW,
  PVCLOCK_GUEST_STOPPED,
  PVCLOCK_TSC_STABLE_BIT,
  pvclockReadCycles,
} from '../../src/core/index.ts';
import {
  FlatGuestMemory,
  KvmVm,
  KVM_CLOCK_HOST_TSC,
  KVM_CLOCK_REALTIME,
  KVM_CLOCK_TSC_STABLE,
  VMX_TSC_SCALING,
  SVM_TSC_SCALING,
  explainClockPair,
  predictGetClock,
  LinuxHostTimekeeper,
} from '../../src/hypervisor/index.ts';
import { ManualHost } from './helpers.ts';

const KHZ = 2_596_136;
const PVCLOCK_GPA = 0x1000n;
const STEAL_GPA = 0x2000n;
const WALL_GPA = 0x3000n;

function setup(opts: { scheduler?: Engine; host?: ManualHost } = {}) {
  const host = opts.host ?? new ManualHost(KHZ);
  const memory = new FlatGuestMemory(0x10000);
  const vm = new KvmVm({ host: host.tk, memory, ...(opts.scheduler ? { scheduler: opts.scheduler } : {}) });
  return { host, memory, vm };
}

test('kvmclock counts from 0 at VM creation and KVM_GET_CLOCK has no master clock before the first KVM_RUN', () => {
  const { host, vm } = setup();
  vm.createVcpu();
  host.advance(2_596_136n); // 1 ms of host TSC
  const data = vm.getClock();
  assert.equal(data.flags, 0);
  // base ns = raw clock's own mult/shift on the absolute TSC (tsc_at_boot 0, m = 6462379, shift 24):
  // (1000002596136 * m >> 24) - (1000000000000 * m >> 24) = 1000000 ns
  assert.equal(data.clock, 1_000_000n);
});

test('first KVM_RUN enables the master clock and writes a TSC_STABLE record with version 2 from the snapshot', () => {
  const { host, memory, vm } = setup();
  const vcpu = vm.createVcpu();
  assert.equal(vcpu.hasRequest('MASTERCLOCK_UPDATE'), true, 'kvm_track_tsc_matching asks for the master clock');
  vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  host.advance(1_000_000n);
  vcpu.run(0);
  assert.equal(vm.useMasterClock, true);
  const rec = decodePvclock(memory.read(PVCLOCK_GPA, 32));
  assert.equal(rec.version, 2);
  assert.equal(rec.flags, PVCLOCK_TSC_STABLE_BIT);
  assert.equal(rec.tscShift, -1);
  assert.equal(rec.tscToSystemMul, 3_308_738_291);
  // The guest TSC was synchronized to 0 at vCPU creation, so tsc_timestamp = cycles since then.
  assert.equal(rec.tscTimestamp, 1_000_000n);
  // system_time = raw(snapshot) - raw(creation) = (1e12+1e6)*m>>24 - 1e12*m>>24 with m = 6462379
  const m = 6_462_379n;
  assert.equal(rec.systemTime, ((1_000_001_000_000n * m) >> 24n) - ((1_000_000_000_000n * m) >> 24n));
});

test('KVM_GET_CLOCK equals the guest record read at host_tsc when both use one master-clock snapshot', () => {
  const { host, memory, vm } = setup();
  const vcpu = vm.createVcpu();
  vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  vcpu.run(0);
  for (let i = 1n; i <= 50n; i++) {
    host.advance(i * 7_919_993n);
    const data = vm.getClock();
    assert.equal(data.flags, KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC);
    const rec = decodePvclock(memory.read(PVCLOCK_GPA, 32));
    assert.equal(predictGetClock(rec, data.hostTsc, { tscOffset: vcpu.l1TscOffset }), data.clock);
  }
});

test('a master-clock snapshot taken after the record was written makes the record read differ by raw-vs-kvmclock rounding', () => {
  const { host, memory, vm } = setup();
  const vcpu = vm.createVcpu();
  vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  vcpu.run(0);
  const a = vm.masterClockHistory.at(-1)!;
  host.advance(25_961_360_000n); // 10 s of TSC
  vm.updateMasterclock(); // e.g. a masterclock update request handled by another vCPU; this one is not running
  const b = vm.masterClockHistory.at(-1)!;
  const data = vm.getClock();
  const rec = decodePvclock(memory.read(PVCLOCK_GPA, 32));
  const predicted = predictGetClock(rec, data.hostTsc, { tscOffset: vcpu.l1TscOffset });
  // By hand over the 10 s of cycles (A at TSC 1e12, B at 1e12 + 25961360000, m = 6462379):
  // host raw advance = (B * m >> 24) - (A * m >> 24) = 9999999266 ns,
  // kvmclock advance = (25961360000 >> 1) * 3308738291 >> 32 = 9999999999 ns → the old record runs 733 ns ahead.
  assert.equal(predicted - data.clock, 733n);
  const why = explainClockPair(a, b, vm.kvmclockOffset, KHZ, data.hostTsc);
  assert.equal(why.difference, 733n);
  assert.equal(why.rawAdvance, 9_999_999_266n);
  assert.equal(why.pvclockAdvance, 9_999_999_999n);
  assert.equal(why.getClockFromSnapshot, data.clock);
  // After the vCPU re-enters, its record comes from snapshot B and the prediction is exact again.
  vcpu.run(0);
  const rec2 = decodePvclock(memory.read(PVCLOCK_GPA, 32));
  assert.equal(rec2.version, 4);
  assert.equal(predictGetClock(rec2, data.hostTsc, { tscOffset: vcpu.l1TscOffset }), data.clock);
});

test('KVM_SET_CLOCK sets kvmclock at the new snapshot and the next record starts there', () => {
  const { host, memory, vm } = setup();
  const vcpu = vm.createVcpu();
  vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  vcpu.run(0);
  host.advance(5_000_000n);
  vm.setClock({ clock: 42_000_000_000n });
  vcpu.run(0);
  const rec = decodePvclock(memory.read(PVCLOCK_GPA, 32));
  assert.equal(rec.systemTime, 42_000_000_000n);
  assert.equal(vm.getClock().clock, 42_000_000_000n); // host TSC has not moved since
});

test('KVM_SET_CLOCK with KVM_CLOCK_REALTIME adds the realtime elapsed since data.realtime, never subtracts', () => {
  const { host, vm } = setup();
  const vcpu = vm.createVcpu();
  vcpu.run(0);
  const saved = vm.getClock();
  host.advance(2_596_136_000n); // 1 s
  vm.setClock({ clock: saved.clock, flags: KVM_CLOCK_REALTIME, realtime: saved.realtime });
  const after = vm.getClock();
  // realtime moved by raw(1 s of cycles) = 2596136000 * 6462379 >> 24 (from a TSC multiple of 2^0; computed exactly below)
  const m = 6_462_379n;
  const t0 = saved.hostTsc;
  const dReal = (((t0 + 2_596_136_000n) * m) >> 24n) - ((t0 * m) >> 24n);
  assert.equal(after.clock, saved.clock + dReal);
  // realtime in the future: clock unchanged
  vm.setClock({ clock: 5n, flags: KVM_CLOCK_REALTIME, realtime: after.realtime + 1_000_000_000n });
  assert.equal(vm.getClock().clock, 5n);
});

test('QEMU-style stop/cont: KVM_GET_CLOCK then KVM_SET_CLOCK hides the pause from kvmclock', () => {
  const { host, vm } = setup();
  const vcpu = vm.createVcpu();
  vcpu.run(0);
  host.advance(2_596_136n * 100n);
  const saved = vm.getClock();
  host.advance(2_596_136_000n * 30n); // 30 s paused
  vm.setClock({ clock: saved.clock });
  assert.equal(vm.getClock().clock, saved.clock);
});

test('KVMCLOCK_CTRL sets GUEST_STOPPED in the next record; KVM keeps it until the guest clears it', () => {
  const { memory, vm } = setup();
  const vcpu = vm.createVcpu();
  assert.throws(() => vcpu.kvmclockCtrl(), /not enabled/);
  vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  vcpu.run(0);
  vcpu.kvmclockCtrl();
  vcpu.run(0);
  assert.equal(decodePvclock(memory.read(PVCLOCK_GPA, 32)).flags, PVCLOCK_TSC_STABLE_BIT | PVCLOCK_GUEST_STOPPED);
  vcpu.makeRequest('CLOCK_UPDATE');
  vcpu.run(0);
  assert.equal(
    decodePvclock(memory.read(PVCLOCK_GPA, 32)).flags & PVCLOCK_GUEST_STOPPED,
    PVCLOCK_GUEST_STOPPED,
    'retained from the guest copy',
  );
  memory.write(PVCLOCK_GPA + 29n, Uint8Array.of(PVCLOCK_TSC_STABLE_BIT)); // the guest clears it (pvclock_clocksource_read)
  vcpu.makeRequest('CLOCK_UPDATE');
  vcpu.run(0);
  assert.equal(decodePvclock(memory.read(PVCLOCK_GPA, 32)).flags, PVCLOCK_TSC_STABLE_BIT);
});

test('an odd version left in guest memory is treated as junk: the record ends even', () => {
  const { memory, vm } = setup();
  memory.write(PVCLOCK_GPA, Uint8Array.of(7, 0, 0, 0));
  const vcpu = vm.createVcpu();
  vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  vcpu.run(0);
  // (7 + 1) | 1 = 9 while writing, then 10
  assert.equal(decodePvclock(memory.read(PVCLOCK_GPA, 32)).version, 10);
});

test('the wall-clock MSR writes the epoch (realtime minus kvmclock) with an even version', () => {
  const host = new ManualHost(KHZ, 1_000_000_000_000n, { realtimeAtBootNs: 1_700_000_000_123_456_789n });
  const { memory, vm } = setup({ host });
  const vcpu = vm.createVcpu();
  vcpu.run(0);
  host.advance(2_596_136_000n);
  vcpu.setMsr(MSR_KVM_WALL_CLOCK_NEW, WALL_GPA);
  const wc = decodeWallClock(memory.read(WALL_GPA, 12));
  assert.equal(wc.version, 2);
  const data = vm.getClock();
  const epoch = data.realtime - data.clock;
  assert.equal(BigInt(wc.sec) * 1_000_000_000n + BigInt(wc.nsec), epoch);
});

test('steal time accumulates the vCPU thread run_delay between entries, version +2 each, preempted cleared', () => {
  let runDelay = 5_000_000n;
  const { memory, vm } = setup();
  const vcpu = vm.createVcpu({ runDelayNs: () => runDelay });
  assert.equal(vcpu.setMsr(MSR_KVM_STEAL_TIME, STEAL_GPA | 0x2n | 1n), false, 'reserved bits');
  vcpu.setMsr(MSR_KVM_STEAL_TIME, STEAL_GPA | 1n);
  vcpu.run(0);
  let st = decodeStealTime(memory.read(STEAL_GPA, 64));
  assert.deepEqual([st.steal, st.version], [5_000_000n, 2]); // last_steal starts at 0: the first entry adds all run_delay so far
  runDelay += 1_234n;
  vcpu.run(0, true);
  st = decodeStealTime(memory.read(STEAL_GPA, 64));
  assert.deepEqual([st.steal, st.version, st.preempted], [5_001_234n, 4, 1]);
  vcpu.run(0);
  st = decodeStealTime(memory.read(STEAL_GPA, 64));
  assert.deepEqual([st.steal, st.version, st.preempted], [5_001_234n, 6, 0]);
});

test('vCPUs created together share one TSC offset (kvm_synchronize_tsc with value 0)', () => {
  const { host, vm } = setup();
  const v0 = vm.createVcpu();
  host.advance(3_000n);
  const v1 = vm.createVcpu();
  assert.equal(v1.l1TscOffset, v0.l1TscOffset);
  assert.equal(vm.nrVcpusMatchedTsc, 1);
  v0.run(0);
  assert.equal(vm.useMasterClock, true);
});

test('a host TSC write far from the expected value starts a new generation and turns the master clock off', () => {
  const { host, vm } = setup();
  const v0 = vm.createVcpu();
  const v1 = vm.createVcpu();
  v0.run(0);
  v1.run(1);
  assert.equal(vm.useMasterClock, true);
  v1.setMsr(MSR_IA32_TSC, 123_456_789_000_000n, true);
  assert.equal(v1.readL1Tsc(), 123_456_789_000_000n);
  assert.equal(vm.nrVcpusMatchedTsc, 0);
  v1.run(1);
  assert.equal(vm.useMasterClock, false);
  assert.equal(vm.getClock().flags, 0);
  // Writing within 1 s of the expected value (user_set_tsc now true) re-synchronizes to the same offset.
  host.advance(1_000n);
  v0.setMsr(MSR_IA32_TSC, 123_456_789_000_500n, true);
  assert.equal(v0.l1TscOffset, v1.l1TscOffset);
  v0.run(0);
  assert.equal(vm.useMasterClock, true);
});

test('a guest TSC write moves only the offset and IA32_TSC_ADJUST by the same amount', () => {
  const { vm } = setup();
  const v0 = vm.createVcpu();
  const before = v0.readL1Tsc();
  v0.setMsr(MSR_IA32_TSC, before + 1000n, false);
  assert.equal(v0.readL1Tsc(), before + 1000n);
  assert.equal(v0.ia32TscAdjustMsr, 1000n);
});

test('KVM_SET_TSC_KHZ: within 250 ppm no scaling; 2x gives ratio 2<<48 on VMX and 2<<32 on SVM', () => {
  for (const [caps, frac] of [
    [VMX_TSC_SCALING, 48n],
    [SVM_TSC_SCALING, 32n],
  ] as const) {
    const host = new ManualHost(KHZ);
    const vm = new KvmVm({ host: host.tk, memory: new FlatGuestMemory(0x10000), tscScaling: caps });
    const v = vm.createVcpu();
    v.setTscKhz(KHZ + 600); // 231 ppm: inside tolerance
    assert.equal(v.l1TscScalingRatio, 1n << frac);
    v.setTscKhz(2 * KHZ);
    assert.equal(v.l1TscScalingRatio, 2n << frac);
    assert.equal(v.readL1Tsc(host.tsc + 10n) - v.readL1Tsc(host.tsc), 20n);
    v.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
    v.run(0);
    const rec = decodePvclock(vm.memory.read(PVCLOCK_GPA, 32));
    // scale for 5,192,272 kHz: two right shifts (5.19e9 → 2.60e9 → 1.30e9), same fraction as 2,596,136 kHz
    assert.deepEqual([rec.tscShift, rec.tscToSystemMul], [-2, 3_308_738_291]);
  }
});

test('without hardware TSC scaling a slower guest TSC is refused and a faster one uses catch-up', () => {
  const { vm } = setup();
  const v = vm.createVcpu();
  assert.throws(() => v.setTscKhz(KHZ / 2), /below the host/);
  v.setTscKhz(2 * KHZ);
  assert.equal(v.tscCatchup, true);
});

test('KVM_SET_TSC_KHZ on the VM only before vCPUs exist', () => {
  const { vm } = setup();
  vm.setDefaultTscKhz(3_000_000);
  const v = vm.createVcpu();
  assert.equal(v.virtualTscKhz, 3_000_000);
  assert.throws(() => vm.setDefaultTscKhz(2_000_000), /before any vCPU/);
});

test('kvmclock_sync_fn refreshes every record each 300 s through the 100 ms update work', () => {
  const engine = new Engine();
  let tsc = 1_000_000_000_000n;
  const tk = new LinuxHostTimekeeper({ tscKhz: 1_000_000, rdtsc: () => tsc + engine.now });
  const memory = new FlatGuestMemory(0x10000);
  const vm = new KvmVm({ host: tk, memory, scheduler: engine });
  const vcpu = vm.createVcpu();
  vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  vcpu.load(0);
  vcpu.enterGuest(); // stays "running": kicks are handled at once
  assert.equal(decodePvclock(memory.read(PVCLOCK_GPA, 32)).version, 2);
  engine.run(100_000_000n); // the GLOBAL_CLOCK_UPDATE fan-out after 100 ms
  assert.equal(decodePvclock(memory.read(PVCLOCK_GPA, 32)).version, 4);
  engine.run(299_999_999_999n);
  assert.equal(decodePvclock(memory.read(PVCLOCK_GPA, 32)).version, 4);
  engine.run(300_000_000_000n);
  const rec = decodePvclock(memory.read(PVCLOCK_GPA, 32));
  assert.equal(rec.version, 6);
  // 1 GHz TSC: the record read equals KVM_GET_CLOCK at any later TSC
  tsc += 12_345n;
  const d = vm.getClock();
  assert.equal(pvclockReadCycles(rec, vcpu.readL1Tsc(d.hostTsc)), d.clock);
  vm.destroy();
});

test('a guest IA32_TSC_ADJUST write moves the TSC and refreshes the pvclock record so kvmclock does not jump', () => {
  const { host, memory, vm } = setup();
  const v = vm.createVcpu();
  v.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  v.run(0);
  host.advance(1_000_000n);
  const before = vm.getClock().clock;
  v.setMsr(0x3b, 5_000_000n, false); // MSR_IA32_TSC_ADJUST += 5M cycles
  assert.equal(v.hasRequest('CLOCK_UPDATE'), true);
  v.run(0);
  const rec = decodePvclock(memory.read(PVCLOCK_GPA, 32));
  assert.equal(pvclockReadCycles(rec, v.readL1Tsc()), before);
});

test('trace events are named after the KVM functions they stand for', async () => {
  const { TraceRecorder } = await import('../../src/core/trace.ts');
  const trace = new TraceRecorder({ enabled: true });
  const host = new ManualHost(KHZ);
  const vm = new KvmVm({ host: host.tk, memory: new FlatGuestMemory(0x10000), trace });
  const v = vm.createVcpu();
  v.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  v.setMsr(MSR_KVM_STEAL_TIME, STEAL_GPA | 1n, true);
  v.run(0);
  vm.setClock({ clock: 1n });
  const names = new Set(trace.recorded.map((e) => e.name));
  for (const n of [
    'pvclock_update_vm_gtod_copy',
    'kvm_synchronize_tsc',
    'kvm_guest_time_update',
    'record_steal_time',
    'kvm_vm_ioctl_set_clock',
  ])
    assert.ok(names.has(n), n);
});

test('TSC catch-up without hardware scaling: a 2 GHz guest on a 1 GHz host is bumped to 2× elapsed at each clock update', () => {
  // 1 GHz host: raw clock mult/shift is exact (1 ns per cycle); the virtual_tsc scale for 2 GHz is
  // shift 2, mul 2^31, so 1e9 ns → (1e9 << 2) * 2^31 >> 32 = 2e9 cycles.
  const host = new ManualHost(1_000_000, 5_000_000_000n);
  const vm = new KvmVm({ host: host.tk, memory: new FlatGuestMemory(0x10000) });
  vm.setDefaultTscKhz(2_000_000);
  const v = vm.createVcpu();
  assert.equal(v.tscCatchup, true);
  assert.deepEqual(v.virtualTsc, { shift: 2, mul: 2 ** 31 });
  v.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  host.advance(1_000_000_000n);
  assert.equal(v.readL1Tsc(), 1_000_000_000n, 'unscaled hardware TSC ran at the host rate');
  v.run(0);
  const rec = decodePvclock(vm.memory.read(PVCLOCK_GPA, 32));
  assert.equal(rec.tscTimestamp, 2_000_000_000n);
  assert.equal(v.readL1Tsc(), 2_000_000_000n, 'offset moved forward by the missing cycles');
});

test('kvm-pvm drops the TSC offset (guest TSC = host TSC) but KVM still matches vCPUs and runs the master clock', () => {
  const host = new ManualHost(KHZ);
  const vm = new KvmVm({ host: host.tk, memory: new FlatGuestMemory(0x10000), appliesTscOffset: false });
  const v0 = vm.createVcpu();
  host.advance(1_000n);
  const v1 = vm.createVcpu();
  assert.equal(v0.l1TscOffset, 0n);
  assert.equal(v1.readL1Tsc(), host.tsc);
  assert.equal(vm.nrVcpusMatchedTsc, 1);
  assert.equal(vm.curTscOffset, u64(-1_000_000_000_000n), 'bookkeeping keeps the offset KVM computed');
  v0.setMsr(MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_GPA | 1n, true);
  v0.run(0);
  const rec = decodePvclock(vm.memory.read(PVCLOCK_GPA, 32));
  assert.equal(rec.tscTimestamp, host.tsc, 'record in host-TSC terms, as read live on kvm-pvm');
  assert.equal(predictGetClock(rec, vm.getClock().hostTsc), vm.getClock().clock);
});
