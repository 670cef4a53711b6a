// KVM_HC_CLOCK_PAIRING: the hypercall behind the guest's ptp_kvm PHC (drivers/ptp/ptp_kvm_x86.c).
//
// kvm_pv_clock_pairing() (arch/x86/kvm/x86.c) answers with the host's CLOCK_REALTIME and the guest TSC
// at the same instant: kvm_get_walltime_and_clockread() reads the host TSC once and computes REALTIME
// from the pvclock_gtod_data copy of the host timekeeper at that TSC (only when the host clocksource is
// the TSC), then kvm_read_l1_tsc(vcpu, cycle) turns that host TSC into the guest's. The result is
// written to guest memory as struct kvm_clock_pairing (include/uapi/linux/kvm_para.h).
import type { Cycles, Ns } from '../core/index.ts';
import { NSEC_PER_SEC } from '../core/index.ts';
import type { GuestMemory } from './guest-memory.ts';
import type { KvmVcpu } from './vcpu.ts';

/** include/uapi/linux/kvm_para.h. */
export const KVM_HC_CLOCK_PAIRING = 9;
export const KVM_CLOCK_PAIRING_WALLCLOCK = 0;
export const KVM_ENOSYS = 1000;
export const KVM_EFAULT = 14; // EFAULT
export const KVM_EOPNOTSUPP = 95;

/** struct kvm_clock_pairing {s64 sec; s64 nsec; u64 tsc; u32 flags; u32 pad[9];}: 64 bytes. */
export const KVM_CLOCK_PAIRING_SIZE = 64;

export interface KvmClockPairing {
  sec: bigint;
  nsec: bigint;
  /** Guest TSC (kvm_read_l1_tsc of the host TSC REALTIME was read at). */
  tsc: Cycles;
  flags: number;
}

export function encodeClockPairing(p: KvmClockPairing): Uint8Array {
  const b = new Uint8Array(KVM_CLOCK_PAIRING_SIZE);
  const v = new DataView(b.buffer);
  v.setBigInt64(0, p.sec, true);
  v.setBigInt64(8, p.nsec, true);
  v.setBigUint64(16, p.tsc, true);
  v.setUint32(24, p.flags, true);
  return b; // pad[9] zeroed
}

export function decodeClockPairing(b: Uint8Array): KvmClockPairing {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { sec: v.getBigInt64(0, true), nsec: v.getBigInt64(8, true), tsc: v.getBigUint64(16, true), flags: v.getUint32(24, true) };
}

/**
 * kvm_pv_clock_pairing(vcpu, paddr, clock_type): 0, or the negative KVM error the guest sees in RAX.
 * -KVM_EOPNOTSUPP for another clock type, a vCPU in permanent TSC catch-up (tsc_always_catchup: the
 * guest could not pair a TSC with its pvclock record) or a host clocksource other than the TSC;
 * -KVM_EFAULT when the page cannot be written.
 */
export function kvmPvClockPairing(vcpu: KvmVcpu, memory: GuestMemory, paddr: bigint, clockType: number): number {
  if (clockType !== KVM_CLOCK_PAIRING_WALLCLOCK) return -KVM_EOPNOTSUPP;
  if (vcpu.tscAlwaysCatchup) return -KVM_EOPNOTSUPP;
  const read = vcpu.vm.host.walltimeAndClockread?.();
  if (!read) return -KVM_EOPNOTSUPP;
  const { sec, nsec } = timespec64(read.realtime);
  const pairing = encodeClockPairing({ sec, nsec, tsc: vcpu.readL1Tsc(read.tsc), flags: 0 });
  try {
    memory.write(paddr, pairing);
  } catch {
    return -KVM_EFAULT;
  }
  return 0;
}

/** ns → struct timespec64 (tv_nsec in [0, 10^9)). */
function timespec64(ns: Ns): { sec: bigint; nsec: bigint } {
  let sec = ns / NSEC_PER_SEC;
  let nsec = ns % NSEC_PER_SEC;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NSEC_PER_SEC;
  }
  return { sec, nsec };
}

/**
 * kvm_emulate_hypercall()'s dispatch for the hypercalls this model implements: KVM_HC_CLOCK_PAIRING
 * (x86-64 only); any other number is -KVM_ENOSYS.
 */
export function kvmEmulateHypercall(vcpu: KvmVcpu, memory: GuestMemory, nr: number, a0: bigint, a1: bigint): number {
  if (nr === KVM_HC_CLOCK_PAIRING) return kvmPvClockPairing(vcpu, memory, a0, Number(a1));
  return -KVM_ENOSYS;
}
