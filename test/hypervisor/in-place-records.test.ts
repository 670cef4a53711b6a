// KVM's per-entry records (record_steal_time, kvm_setup_guest_pvclock, kvm_steal_time_set_preempted) and the
// guest's reads of them (kvm_steal_clock, kvm-clock) go through word views on flat RAM; a memory without
// them takes the copying read/write path. Both must leave and read the same bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlatGuestMemory, type GuestMemory, KvmVm, type KvmVcpu } from '../../src/hypervisor/index.ts';
import { MSR_KVM_STEAL_TIME, MSR_KVM_SYSTEM_TIME_NEW, putLe32, putLe64 } from '../../src/core/index.ts';
import { PvclockGuest } from '../../src/guest/index.ts';
import { kvmStealClockReader } from '../../src/guest/steal.ts';
import { ManualHost } from './helpers.ts';

const U64 = (1n << 64n) - 1n;

/** The same RAM seen only through read/write: every record goes through the copying path. */
function copyingOnly(m: FlatGuestMemory): GuestMemory {
  return { read: (gpa, len) => m.read(gpa, len), write: (gpa, bytes) => m.write(gpa, bytes) };
}

function rig(copying: boolean, pvclockGpa: bigint) {
  const host = new ManualHost(2_596_136, 5_000_000_000_000n);
  const ram = new FlatGuestMemory(0x10000);
  // junk left in the steal record: an odd version (KVM skips it to even) and a steal about to wrap
  const junk = new Uint8Array(64);
  putLe64(junk, 0, U64 - 5n);
  putLe32(junk, 8, 0xffff_ffff);
  junk[16] = 1;
  ram.write(0x2000n, junk);
  const vm = new KvmVm({ host: host.tk, memory: copying ? copyingOnly(ram) : ram });
  let delay = 0n;
  const vcpu = vm.createVcpu({ runDelayNs: () => delay });
  vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, pvclockGpa | 1n, true);
  vcpu.setMsr(MSR_KVM_STEAL_TIME, 0x2000n | 1n, true);
  return { host, ram, vm, vcpu, addDelay: (ns: bigint) => (delay += ns) };
}

function state(v: KvmVcpu, ram: FlatGuestMemory) {
  return {
    ram: Buffer.from(ram.bytes).toString('base64'),
    lastSteal: v.lastSteal,
    preempted: v.stealPreempted,
    lastGuestTsc: v.lastGuestTsc,
    lastHostTsc: v.lastHostTsc,
  };
}

for (const [name, pvclockGpa] of [
  ['an aligned pvclock record', 0x1000n],
  ['a pvclock record not 8-byte aligned (copying path on both)', 0x1004n],
] as const) {
  test(`record_steal_time, kvm_setup_guest_pvclock and preempted marks in place leave the copying path's bytes: ${name}`, () => {
    const a = rig(false, pvclockGpa);
    const b = rig(true, pvclockGpa);
    for (let i = 0; i < 40; i++) {
      for (const r of [a, b]) {
        r.host.advance(2_596_136_000n + BigInt(i) * 7n);
        r.addDelay(BigInt(i % 3) * 1_000_003n);
        if (i % 5 === 0) r.vcpu.makeRequest('CLOCK_UPDATE');
        if (i === 17) r.vcpu.kvmclockCtrl(); // GUEST_STOPPED on the next record
        if (i % 7 === 3) r.vcpu.runRepeated(1 + i, r.host.tsc);
        else r.vcpu.run(0, i % 4 === 1);
      }
      assert.deepEqual(state(a.vcpu, a.ram), state(b.vcpu, b.ram), `round ${i}`);
    }
    // the steal record moved on: a version that was odd junk is even, the steal wrapped past 2^64
    const st = a.ram.read(0x2000n, 16);
    assert.equal(st[8]! & 1, 0);
  });
}

test('kvm_steal_clock and kvm-clock read in place give what the copying reads give, and a record outside RAM fails alike', () => {
  const a = rig(false, 0x1000n);
  const b = rig(true, 0x1000n);
  for (const r of [a, b]) {
    r.host.advance(1_000_000_000n);
    r.addDelay(123_456_789n);
    r.vcpu.run(0);
  }
  // an odd version never settles (kvm_steal_clock spins, as the kernel's would): check before reading
  assert.equal(a.ram.read(0x2008n, 1)[0]! & 1, 0, 'record_steal_time left an even version');
  const inPlace = kvmStealClockReader(a.ram, 0x2000n);
  const copying = kvmStealClockReader(copyingOnly(b.ram), 0x2000n);
  assert.equal(inPlace(0), copying(0));
  assert.equal(inPlace(0), U64 - 5n + 123_456_789n - (1n << 64n));
  // cpu 1's record (0x2040) is zeroes: steal 0, version 0
  assert.equal(inPlace(1), 0n);
  assert.equal(copying(1), 0n);
  // far outside the 64 KiB: both report the address as the memory does
  const far = 0x10000 / 64;
  assert.throws(() => inPlace(far), /outside guest memory/);
  assert.throws(() => copying(far), /outside guest memory/);

  const ga = new PvclockGuest();
  const gb = new PvclockGuest();
  for (let i = 0; i < 20; i++) {
    const tsc = 5_000_000_000_000n + BigInt(i) * 999_999_937n;
    const read = (g: PvclockGuest, mem: GuestMemory) => g.readNs(mem, 0x1000n, () => a.vcpu.readL1Tsc(tsc));
    assert.equal(read(ga, a.ram), read(gb, copyingOnly(b.ram)), `read ${i}`);
  }
});
