// Guest TSC from host TSC: the scaling ratio and offset KVM programs into the CPU, as
// arch/x86/kvm/x86.c (kvm_scale_tsc, set_tsc_khz, kvm_set_tsc_khz, kvm_read_l1_tsc) and the vendor
// setup in arch/x86/kvm/vmx/vmx.c and arch/x86/kvm/svm/svm.c define them.
import { u64 } from '../core/index.ts';

/** What the vendor module tells KVM about TSC scaling (kvm_caps.* in arch/x86/kvm/x86.h). */
export interface TscScalingCaps {
  /** kvm_caps.has_tsc_control */
  hasTscControl: boolean;
  /** kvm_caps.tsc_scaling_ratio_frac_bits */
  fracBits: number;
  /** kvm_caps.max_tsc_scaling_ratio */
  maxRatio: bigint;
}

/** Intel VMX: 48 fractional bits, ratio up to 2^64-1 (KVM_VMX_TSC_MULTIPLIER_MAX, vmx.c). */
export const VMX_TSC_SCALING: TscScalingCaps = { hasTscControl: true, fracBits: 48, maxRatio: (1n << 64n) - 1n };
/** AMD SVM: 32 fractional bits, ratio below 2^40 (SVM_TSC_RATIO_MAX = 0xff_ffff_ffff, svm.h). */
export const SVM_TSC_SCALING: TscScalingCaps = { hasTscControl: true, fracBits: 32, maxRatio: 0xff_ffff_ffffn };
/** No hardware TSC scaling (kvm-pvm, old CPUs): KVM falls back to TSC catch-up for faster guest TSCs. */
export const NO_TSC_SCALING: TscScalingCaps = { hasTscControl: false, fracBits: 0, maxRatio: 0n };

/** kvm_caps.default_tsc_scaling_ratio: 1.0 in the vendor's fixed point. */
export function defaultTscScalingRatio(caps: TscScalingCaps): bigint {
  return 1n << BigInt(caps.fracBits);
}

/** kvm_scale_tsc(): tsc * ratio >> frac_bits through a 128-bit product (mul_u64_u64_shr). */
export function kvmScaleTsc(tsc: bigint, ratio: bigint, caps: TscScalingCaps): bigint {
  if (ratio === defaultTscScalingRatio(caps)) return u64(tsc);
  return u64((u64(tsc) * u64(ratio)) >> BigInt(caps.fracBits));
}

/** The ratio set_tsc_khz() computes: mul_u64_u32_div(1 << frac_bits, user_tsc_khz, tsc_khz). */
export function tscScalingRatio(userTscKhz: number, hostTscKhz: number, caps: TscScalingCaps): bigint {
  return u64(((1n << BigInt(caps.fracBits)) * BigInt(userTscKhz >>> 0)) / BigInt(hostTscKhz >>> 0));
}

/** adjust_tsc_khz(): khz * (1e6 + ppm) / 1e6 in u64, truncated to u32. */
export function adjustTscKhz(khz: number, ppm: number): number {
  return Number(BigInt.asUintN(32, (BigInt(khz) * BigInt(1_000_000 + ppm)) / 1_000_000n));
}

/** KVM's tsc_tolerance_ppm module parameter default (arch/x86/kvm/x86.c). */
export const TSC_TOLERANCE_PPM = 250;
