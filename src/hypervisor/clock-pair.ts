// Predicting KVM_GET_CLOCK from a vCPU's pvclock record, and explaining any difference.
//
// __get_kvmclock() (arch/x86/kvm/x86.c) reads the clock through a pvclock record it builds on the
// spot: tsc_timestamp = master_cycle_now (host TSC), system_time = master_kernel_ns + kvmclock_offset,
// scale = kvm_get_time_scale(NSEC_PER_SEC, tsc_khz * 1000), read at a fresh host TSC (returned as
// host_tsc). kvm_guest_time_update() built the guest's record from the same fields, but in guest-TSC
// terms (tsc_timestamp = kvm_read_l1_tsc(master_cycle_now)) and with the guest's TSC rate for the
// scale. So reading the guest's record at the guest TSC that corresponds to host_tsc gives exactly
// KVM_GET_CLOCK's clock whenever (a) both used the same master-clock snapshot and (b) the TSC is
// not scaled. With a scaled TSC mainline's KVM_GET_CLOCK runs at the host's scale while the guest's
// record runs at the scaled rate truncated to kHz (0.3846 ppm apart for 2.6 GHz on 3.0 GHz); with
// KvmClockFeatures.scaledGetClock (v6 13/36) get_kvmclock scales the host TSC delta and uses the guest's
// scale, and the two agree to 1 ns (kvm_scale_tsc of a delta vs the difference of two scaled TSCs:
// test/hypervisor/kvm-clock-features.test.ts). They also differ when the master clock was re-snapshotted after the record was written
// (KVM_SET_CLOCK, a TSC write, a masterclock update request) and the vCPU has not re-entered the
// guest since: the two snapshots' system_time differ by the host's CLOCK_MONOTONIC_RAW mult/shift
// arithmetic, while the record extrapolates with kvmclock's own 32.32 scale.
import type { Cycles, Ns } from '../core/index.ts';
import { pvclockReadCycles, type PvclockVcpuTimeInfo } from '../core/index.ts';
import { s64, u64 } from '../core/index.ts';
import type { MasterClock } from './kvm.ts';
import { kvmScaleTsc, NO_TSC_SCALING, type TscScalingCaps } from './tsc.ts';
import { hostClockRecord, kvmclockScale } from './timescale.ts';

export interface GuestTscMapping {
  /** vcpu->arch.l1_tsc_offset (u64). */
  tscOffset: bigint;
  /** l1_tsc_scaling_ratio; omitted = unscaled. */
  ratio?: bigint;
  caps?: TscScalingCaps;
}

/** The model's prediction of KVM_GET_CLOCK's clock: the guest's record read at host_tsc's guest TSC. */
export function predictGetClock(record: PvclockVcpuTimeInfo, hostTsc: Cycles, map: GuestTscMapping = { tscOffset: 0n }): Ns {
  const caps = map.caps ?? NO_TSC_SCALING;
  const ratio = map.ratio ?? 1n << BigInt(caps.fracBits);
  const guestTsc = u64(map.tscOffset + kvmScaleTsc(hostTsc, ratio, caps));
  return pvclockReadCycles(record, guestTsc);
}

export interface ClockPairExplanation {
  /** prediction − KVM_GET_CLOCK clock, ns (signed). */
  difference: bigint;
  /** KVM_GET_CLOCK recomputed from snapshot B (must equal the observed clock). */
  getClockFromSnapshot: Ns;
  /** The record read at host_tsc (snapshot A). */
  recordRead: Ns;
  /** raw(B) − raw(A): how far the host's raw clock moved between the snapshots. */
  rawAdvance: bigint;
  /** kvmclock's scaling of the same cycles (cB − cA). */
  pvclockAdvance: bigint;
}

/**
 * Decompose the difference between the record read (snapshot A) and KVM_GET_CLOCK (snapshot B)
 * at one host TSC: sysA + s(h − cA) − (sysB + s(h − cB)). With A = B it is 0 by construction.
 */
export function explainClockPair(
  a: MasterClock,
  b: MasterClock,
  kvmclockOffset: bigint,
  hostTscKhz: number,
  hostTsc: Cycles,
): ClockPairExplanation {
  const rec = (m: MasterClock) => hostClockRecord(m, kvmclockOffset, hostTscKhz);
  const { shift, mul } = kvmclockScale(hostTscKhz);
  const recordRead = pvclockReadCycles(rec(a), hostTsc);
  const getClockFromSnapshot = pvclockReadCycles(rec(b), hostTsc);
  return {
    difference: s64(recordRead - getClockFromSnapshot),
    getClockFromSnapshot,
    recordRead,
    rawAdvance: b.masterKernelNs - a.masterKernelNs,
    pvclockAdvance: pvclockReadCycles(
      { tscTimestamp: a.masterCycleNow, systemTime: 0n, tscToSystemMul: mul, tscShift: shift },
      b.masterCycleNow,
    ),
  };
}
