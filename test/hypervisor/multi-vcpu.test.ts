// Many vCPUs: each on its own host CPU with its own TSC and kvmclock record, KVM's TSC matching and
// master clock across them, a host that falls back to the HPET, and RDTSC exiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../../src/core/engine.ts';
import { decodePvclock, MSR_IA32_TSC, MSR_KVM_SYSTEM_TIME_NEW, PVCLOCK_TSC_STABLE_BIT, pvclockReadCycles } from '../../src/core/index.ts';
import {
  FlatGuestMemory,
  HOST_HPET_PERIOD_FS,
  hz32MultShift,
  KvmVm,
  LinuxHostTimekeeper,
  type KvmVcpu,
} from '../../src/hypervisor/index.ts';

const GHZ = 1_000_000; // kHz: a 1 GHz TSC, where kvmclock's scale is exact (mul 2^31, shift 1) and 1 cycle = 1 ns
const START = 1_000_000_000_000n;
const gpa = (cpu: number): bigint => 0x1000n + BigInt(cpu) * 64n;

function hostWith(opts: { skew?: bigint[]; hpet?: boolean; unstable?: boolean; khz?: number } = {}) {
  const clock = { tsc: START };
  const tk = new LinuxHostTimekeeper({
    tscKhz: opts.khz ?? GHZ,
    rdtsc: () => clock.tsc,
    tscAtBoot: 0n,
    ...(opts.skew ? { cpuTscSkew: opts.skew } : {}),
    ...(opts.hpet ? { hpet: { periodFs: HOST_HPET_PERIOD_FS } } : {}),
    ...(opts.unstable ? { tscUnstable: true } : {}),
  });
  return { clock, tk };
}

function vmWith(host: ReturnType<typeof hostWith>, n: number, scheduler?: Engine) {
  const memory = new FlatGuestMemory(0x10000);
  const vm = new KvmVm({ host: host.tk, memory, ...(scheduler ? { scheduler } : {}) });
  const vcpus: KvmVcpu[] = [];
  for (let i = 0; i < n; i++) vcpus.push(vm.createVcpu());
  for (const [i, v] of vcpus.entries()) {
    v.run(i);
    v.setMsr(MSR_KVM_SYSTEM_TIME_NEW, gpa(i) | 1n);
    v.run(i);
  }
  const record = (i: number) => decodePvclock(memory.read(gpa(i), 32));
  return { vm, vcpus, memory, record };
}

test('each vCPU reads the TSC of the host CPU it runs on: a skewed host CPU gives that vCPU a skewed guest TSC', () => {
  const host = hostWith({ skew: [0n, 500n, 1000n] });
  const { vcpus } = vmWith(host, 3);
  // kvm_synchronize_tsc(value 0) gave all three the offset of the first: the skew shows through
  const t = vcpus.map((v) => v.readL1Tsc());
  assert.equal(t[1]! - t[0]!, 500n);
  assert.equal(t[2]! - t[0]!, 1000n);
  assert.equal(vcpus[1]!.hostRdtsc(), START + 500n);
});

test('with the master clock every vCPU record comes from one snapshot: same tsc_timestamp and system_time, TSC_STABLE', () => {
  const host = hostWith();
  const { vm, record } = vmWith(host, 4);
  assert.equal(vm.useMasterClock, true);
  const r = [0, 1, 2, 3].map(record);
  for (const x of r) {
    assert.equal(x.tscTimestamp, r[0]!.tscTimestamp);
    assert.equal(x.systemTime, r[0]!.systemTime);
    assert.equal(x.flags & PVCLOCK_TSC_STABLE_BIT, PVCLOCK_TSC_STABLE_BIT);
  }
});

test('kvm_track_tsc_matching: a vCPU written to another TSC turns the master clock off; writing the others to match turns it on', () => {
  const host = hostWith();
  const { vm, vcpus, record } = vmWith(host, 3);
  assert.equal(vm.nrVcpusMatchedTsc, 2);
  const far = 50_000_000_000n; // 50 s of TSC: not "meant to be in sync" with anything
  vcpus[1]!.setMsr(MSR_IA32_TSC, far, true);
  assert.equal(vm.nrVcpusMatchedTsc, 0, 'a new generation');
  // vCPU 1 handles KVM_REQ_MASTERCLOCK_UPDATE on entry and asks every vCPU for a clock update
  for (const i of [1, 0, 2]) vcpus[i]!.run(i);
  assert.equal(vm.useMasterClock, false);
  assert.equal(record(0).flags & PVCLOCK_TSC_STABLE_BIT, 0);
  host.clock.tsc += 1000n;
  vcpus[0]!.setMsr(MSR_IA32_TSC, far + 1000n, true); // within 1 s of the expected value: matched
  vcpus[2]!.setMsr(MSR_IA32_TSC, far + 1000n, true);
  assert.equal(vm.nrVcpusMatchedTsc, 2);
  for (const i of [2, 0, 1]) vcpus[i]!.run(i);
  assert.equal(vm.useMasterClock, true);
  assert.equal(record(2).flags & PVCLOCK_TSC_STABLE_BIT, PVCLOCK_TSC_STABLE_BIT);
});

test('the HPET clocksource: mult/shift of clocksource_register_hz(14318179) and CLOCK_MONOTONIC_RAW in 69.8 ns steps', () => {
  // hpet_freq = 10^15 / 69841279 fs = 14318179 Hz; sec = 0xffffffff / hz = 299 → sftacc 32; shift 25 is the
  // first from 32 down with (10^9 << s + hz/2) / hz below 2^32: mult = (10^9·2^25 + 7159089) / 14318179
  assert.equal(Math.floor(1e15 / HOST_HPET_PERIOD_FS), 14_318_179);
  const mult = Number((1_000_000_000n * (1n << 25n) + 7_159_089n) / 14_318_179n);
  assert.deepEqual(hz32MultShift(14_318_179), { mult, shift: 25 });
  const host = hostWith({ hpet: true });
  assert.equal(host.tk.clocksourceIsTsc, false);
  // at 1 GHz: 1 µs of TSC is floor(1000 · 10^12 / (10^6 · 69841279)) = 14 HPET ticks
  const ns = host.tk.baseNsAt(1000n);
  assert.equal(ns, (14n * BigInt(mult)) >> 25n);
  assert.equal(host.tk.baseNsAt(1001n), ns, 'the next TSC cycle is inside the same HPET tick');
});

test('a host on the HPET gives KVM no master clock: records without TSC_STABLE, each vCPU anchored when it is updated', () => {
  const host = hostWith({ hpet: true, unstable: true, skew: [0n, 700n] });
  const { vm, vcpus, record } = vmWith(host, 2);
  assert.equal(vm.useMasterClock, false);
  host.clock.tsc += 3_000_000n; // 3 ms
  vcpus[1]!.run(1); // kvm_check_tsc_unstable(): every load re-anchors (KVM_REQ_GLOBAL_CLOCK_UPDATE)
  const r1 = record(1);
  assert.equal(r1.flags & PVCLOCK_TSC_STABLE_BIT, 0);
  assert.equal(r1.systemTime, vm.getKvmclockBaseNs() + vm.kvmclockOffset, 'system_time = kernel_ns + kvmclock_offset now');
  assert.equal(r1.tscTimestamp, vcpus[1]!.readL1Tsc(), 'tsc_timestamp = the guest TSC now, on host CPU 1');
  assert.notEqual(record(0).systemTime, r1.systemTime, 'vCPU 0 was not loaded: its record is older');
});

test("on an unstable host the skew of the host CPU cancels within a vCPU: its kvm-clock counts its own CPU's cycles from its anchor", () => {
  const host = hostWith({ hpet: true, unstable: true, skew: [0n, 123_456n] });
  const { vcpus, memory } = vmWith(host, 2);
  vcpus[1]!.run(1);
  const rec = decodePvclock(memory.read(gpa(1), 32));
  host.clock.tsc += 777n;
  assert.equal(pvclockReadCycles(rec, vcpus[1]!.readL1Tsc()), rec.systemTime + 777n);
});

test('RDTSC exiting with offset compensation: the guest TSC loses rate × exit_cost of every second', () => {
  const host = hostWith();
  const memory = new FlatGuestMemory(0x10000);
  const vm = new KvmVm({ host: host.tk, memory });
  const plain = vm.createVcpu({ rdtscExiting: { exitCostNs: 1000n, offsetCompensation: false, ratePerSec: 1000 } });
  const comp = vm.createVcpu({ rdtscExiting: { exitCostNs: 1000n, offsetCompensation: true, ratePerSec: 1000 } });
  plain.run(0);
  comp.run(1);
  const p0 = plain.guestRdtsc();
  const c0 = comp.guestRdtsc();
  host.clock.tsc += 1_000_000_000n; // 1 s
  assert.equal(plain.guestRdtsc() - p0, 1_000_000_000n, 'trapped but uncompensated: the TSC still counts real time');
  // 1000 exits of 1 µs hidden: 1 ms of a 1 GHz TSC
  assert.equal(comp.guestRdtsc() - c0, 999_000_000n);
});

test('RDTSC exiting on kvm-clock: the record lags by the hidden exits until KVM rewrites it, then reads as KVM_GET_CLOCK', () => {
  const host = hostWith();
  const memory = new FlatGuestMemory(0x10000);
  const vm = new KvmVm({ host: host.tk, memory });
  const v = vm.createVcpu({ rdtscExiting: { exitCostNs: 2000n, offsetCompensation: true, ratePerSec: 500 } });
  v.run(0);
  v.setMsr(MSR_KVM_SYSTEM_TIME_NEW, gpa(0) | 1n);
  v.run(0);
  assert.equal(vm.useMasterClock, true);
  const read = () => pvclockReadCycles(decodePvclock(memory.read(gpa(0), 32)), v.guestRdtsc());
  const before = read();
  host.clock.tsc += 2_000_000_000n; // 2 s: 1000 exits × 2 µs = 2 ms hidden
  assert.equal(read() - before, 2_000_000_000n - 2_000_000n);
  // kvm_guest_time_update: tsc_timestamp = kvm_read_l1_tsc(master_cycle_now) with the offset as it is now
  v.makeRequest('CLOCK_UPDATE');
  v.run(0);
  assert.equal(read(), vm.getClock().clock);
});
