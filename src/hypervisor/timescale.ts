// kvm_get_time_scale() and div_frac() from arch/x86/kvm/x86.c: the 32.32 fixed-point multiplier and
// power-of-two shift that convert base_hz ticks to scaled_hz ticks, as pvclock_scale_delta() applies
// them. KVM computes the kvmclock scale with (NSEC_PER_SEC, tsc_khz*1000) and the guest-TSC-from-ns
// scale with (user_tsc_khz*1000, NSEC_PER_SEC).
import { InputError } from '../core/index.ts';
import { u32, u64 } from '../core/index.ts';
import { type PvclockVcpuTimeInfo, pvclockScaleDelta } from '../core/index.ts';
import type { Cycles, Ns } from '../core/index.ts';
import { NSEC_PER_SEC } from '../core/index.ts';
import { kvmScaleTsc, type TscScalingCaps } from './tsc.ts';

export interface TimeScale {
  /** s8 tsc_shift */
  shift: number;
  /** u32 tsc_to_system_mul */
  mul: number;
}

const HI32 = 0xffff_ffff_0000_0000n;

/** div_frac(): (dividend << 32) / divisor, as do_shl32_div32 computes it (x86 divl; dividend < divisor). */
export function divFrac(dividend: bigint, divisor: bigint): number {
  if (divisor === 0n) throw new RangeError('div_frac: division by zero');
  // The divl in do_shl32_div32 faults if the quotient does not fit 32 bits; kvm_get_time_scale's loops
  // guarantee dividend < divisor, so it always fits.
  return Number(u32(((dividend & 0xffff_ffffn) << 32n) / divisor));
}

/** kvm_get_time_scale(scaled_hz, base_hz) from arch/x86/kvm/x86.c. */
export function kvmGetTimeScale(scaledHz: bigint, baseHz: bigint): TimeScale {
  if (scaledHz <= 0n || baseHz <= 0n) throw new InputError(`kvm_get_time_scale needs positive rates (scaled ${scaledHz}, base ${baseHz})`);
  let tps64 = u64(baseHz);
  let scaled64 = u64(scaledHz);
  let shift = 0;
  while (tps64 > u64(scaled64 * 2n) || (tps64 & HI32) !== 0n) {
    tps64 >>= 1n;
    shift--;
  }
  let tps32 = u32(tps64);
  while (tps32 <= scaled64 || (scaled64 & HI32) !== 0n) {
    if ((scaled64 & HI32) !== 0n || (tps32 & 0x8000_0000n) !== 0n) scaled64 >>= 1n;
    else tps32 = u32(tps32 << 1n);
    shift++;
  }
  return { shift, mul: divFrac(scaled64, tps32) };
}

/** The kvmclock scale for a TSC of `tscKhz` kHz: kvm_get_time_scale(NSEC_PER_SEC, tsc_khz * 1000). */
export function kvmclockScale(tscKhz: number | bigint): TimeScale {
  return kvmGetTimeScale(1_000_000_000n, BigInt(tscKhz) * 1000n);
}

/** nsec_to_cycles() from arch/x86/kvm/x86.h: ns to guest TSC cycles with the vCPU's virtual_tsc scale. */
export function nsecToCycles(ns: bigint, virtualTsc: TimeScale): bigint {
  return pvclockScaleDelta(ns, virtualTsc.mul, virtualTsc.shift);
}

/**
 * The pvclock record KVM builds in host-TSC terms from a master-clock snapshot: what __get_kvmclock
 * (KVM_GET_CLOCK) and kvm_get_wall_clock_epoch read at a fresh host TSC (arch/x86/kvm/x86.c). Read at
 * the same host TSC it gives what an unscaled vCPU's own record gives the guest.
 */
export function hostClockRecord(
  master: { masterCycleNow: Cycles; masterKernelNs: Ns },
  kvmclockOffset: bigint,
  hostTscKhz: number,
): Pick<PvclockVcpuTimeInfo, 'tscTimestamp' | 'systemTime' | 'tscToSystemMul' | 'tscShift'> {
  const { shift, mul } = kvmclockScale(hostTscKhz);
  return {
    tscTimestamp: master.masterCycleNow,
    systemTime: u64(master.masterKernelNs + kvmclockOffset),
    tscToSystemMul: mul,
    tscShift: shift,
  };
}

/**
 * The TSC rate kvm_guest_time_update() builds a vCPU's kvmclock scale from: the host's tsc_khz, through
 * the vCPU's TSC scaling ratio when the CPU scales. Mainline scales kHz and truncates to an unsigned
 * int of kHz before multiplying by 1000 (2.6 GHz on a 3.0 GHz host: 2,599,999 kHz); with `hz` — "KVM:
 * x86: Improve accuracy of KVM clock when TSC scaling is in force" (dwmw2, v6 02/36, 2026-07-03) — it
 * scales Hz (2,599,999,999 Hz). Both fall back to 1 when the scaled rate is 0 (arch/x86/kvm/x86.c).
 */
export function kvmclockTargetHz(hostTscKhz: number, ratio: bigint, caps: TscScalingCaps, hz: boolean): bigint {
  if (!caps.hasTscControl) return BigInt(hostTscKhz) * 1000n;
  if (hz) return kvmScaleTsc(BigInt(hostTscKhz) * 1000n, ratio, caps) || 1n;
  return (BigInt.asUintN(32, kvmScaleTsc(BigInt(hostTscKhz), ratio, caps)) || 1n) * 1000n;
}

/**
 * hvclock_to_hz() from the KVM_SET_CLOCK_GUEST patch (dwmw2 series v6 05/36): the TSC rate a pvclock
 * scale stands for, NSEC_PER_SEC << 32 / mul, shifted back, with the v6 bounds on the shift.
 */
export function hvclockToHz(mul: number, tscShift: number): bigint {
  let tm = (NSEC_PER_SEC << 32n) << 2n;
  let shift = tscShift + 2;
  let m = mul >>> 0;
  while ((m & 1) === 0) {
    shift++;
    m >>>= 1;
  }
  tm = u64(tm / BigInt(m));
  if (shift >= 64) return 0n;
  if (shift > 0) return tm >> BigInt(shift);
  if (shift <= -64) return 0n;
  return u64(tm << BigInt(-shift));
}
