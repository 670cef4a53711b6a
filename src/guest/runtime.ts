// What runs once the guest has booted: steal-time registration with KVM (arch/x86/kernel/kvm.c
// kvm_guest_init → kvm_register_steal_time) and the source of steal for /proc/stat.
import type { Ns } from '../core/index.ts';
import { KVM_FEATURE_STEAL_TIME, MSR_KVM_STEAL_TIME } from '../core/index.ts';
import type { TimeParams } from './cmdline.ts';
import type { KernelConfig } from './kernel.ts';
import type { GuestPlatform } from './platform.ts';
import { kvmStealClockReader } from './steal.ts';

/** Where this model's guest kernel places the per-CPU steal-time records. */
export const STEAL_TIME_GPA = 0x10_2000n;

/**
 * kvm_guest_init(): steal time when KVM offers KVM_FEATURE_STEAL_TIME and no-steal-acc is not given
 * (CONFIG_PARAVIRT): each CPU's 64-byte record's GPA | KVM_MSR_ENABLED goes to MSR_KVM_STEAL_TIME.
 * Returns the per-CPU steal clock (kvm_steal_clock), or null when steal time is off.
 */
export function kvmRegisterStealTime(p: GuestPlatform, k: KernelConfig, t: TimeParams): ((cpu: number) => Ns) | null {
  const kvm = p.cpuid.kvm;
  const on = k.kvmGuest && !!kvm && ((kvm.features >>> KVM_FEATURE_STEAL_TIME) & 1) === 1 && !t.noSteal && !!p.memory && !!p.wrmsr;
  if (!on) return null;
  for (let c = 0; c < p.vcpus; c++) p.wrmsr!(c, MSR_KVM_STEAL_TIME, (STEAL_TIME_GPA + BigInt(c * 64)) | 1n);
  return kvmStealClockReader(p.memory!, STEAL_TIME_GPA);
}
