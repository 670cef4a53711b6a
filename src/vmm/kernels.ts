// Guest kernel presets: the build options that decide what a guest's timekeeping can use.
// See docs/fidelity.md (## vmm) for where each value comes from.
import { InputError } from '../core/index.ts';
import type { KernelConfig } from '../guest/index.ts';

export const KERNEL_PRESETS: Record<string, KernelConfig> = {
  /**
   * A current x86_64 distribution kernel (Debian 13 / Ubuntu style, and this workplace's 6.18
   * Firecracker guest): KVM_GUEST=y, PARAVIRT_CLOCK=y, HPET_TIMER=y, X86_PM_TIMER=y, HZ=250,
   * NO_HZ_IDLE, HIGH_RES_TIMERS. HZ=250 is what the 6.18 guest's jiffies line implies
   * (max_idle_ns 7645041785100000 = 0xffffffff * ((4000000<<8) * 89/100 >> 8) / 2).
   */
  distro: {
    name: 'distro',
    version: '6.12',
    bits: 64,
    hz: 250,
    kvmGuest: true,
    paravirtClock: true,
    hpetTimer: true,
    acpiPmTimer: true,
    x86Tsc: true,
    noHz: true,
    highResTimers: true,
    clocksourceWatchdog: true,
    localApic: true,
    paravirtTimeAccounting: false,
    rtcHctosys: true,
    hpetCharDev: true,
    jiffiesBeforeTscEarly: true,
  },
  /**
   * Debian 12's 6.1 kernel (linux-image-amd64): the distro options, with 6.1's boot order (the
   * jiffies clocksource registers at core_initcall, after tsc-early), as recorded under QEMU TCG in
   * test/fixtures/doctor/qemu-tcg-pc/.
   */
  debian12: {
    name: 'debian12',
    version: '6.1.0-amd64',
    // the stable 6.1.y backport is in Debian's kernel: the lab's real Debian 12 guest under a loaded TCG
    // printed "clocksource: Long readout interval, skipping watchdog check: cs_nsec: 1055144489 wd_nsec: 1055136540"
    watchdogLongIntervalSkip: true,
    bits: 64,
    hz: 250,
    kvmGuest: true,
    paravirtClock: true,
    hpetTimer: true,
    acpiPmTimer: true,
    x86Tsc: true,
    noHz: true,
    highResTimers: true,
    clocksourceWatchdog: true,
    localApic: true,
    paravirtTimeAccounting: false,
    rtcHctosys: true,
    hpetCharDev: true,
    jiffiesBeforeTscEarly: false,
  },
  /**
   * A 32-bit Yocto `qemux86` linux-yocto kernel. The qemux86 BSP builds the standard ktype without
   * the yocto-kernel-cache feature cfg/paravirt_kvm.scc (which is what turns on PARAVIRT and
   * KVM_GUEST); layers that want kvm-clock add it explicitly (e.g. meta-freenivi-sdk's
   * linux-yocto_3.14.bbappend: KERNEL_FEATURES_append = " cfg/paravirt_kvm.scc"). So: no kvm-clock,
   * no steal time; HPET and ACPI PM timer drivers are built in; HZ is the Kconfig default 250.
   */
  'yocto-qemux86': {
    name: 'yocto-qemux86',
    version: '6.6-yocto-standard',
    bits: 32,
    hz: 250,
    kvmGuest: false,
    paravirtClock: false,
    hpetTimer: true,
    acpiPmTimer: true,
    x86Tsc: true,
    noHz: true,
    highResTimers: true,
    clocksourceWatchdog: true,
    localApic: true,
    paravirtTimeAccounting: false,
    rtcHctosys: true,
    hpetCharDev: true,
    jiffiesBeforeTscEarly: true,
  },
};

export function kernelPreset(name: string, option = '--kernel'): KernelConfig {
  const k = KERNEL_PRESETS[name];
  if (!k) throw new InputError(`unknown guest kernel preset "${name}" (known: ${Object.keys(KERNEL_PRESETS).join(', ')})`, option);
  return k;
}
