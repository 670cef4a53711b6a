// The build-time facts of a guest kernel that decide its timekeeping: the Kconfig options that
// compile clock drivers in or out, HZ, word size and version-dependent boot-order details.
// Presets (distro, yocto-qemux86) live in src/vmm/kernels.ts; this is only the shape.

export interface KernelConfig {
  /** Preset name, for messages. */
  name: string;
  /** uname -r style version, for messages. */
  version: string;
  /** clocksource_watchdog skips intervals longer than WATCHDOG_INTERVAL_MAX_NS ("Long readout interval");
   *  upstream since v6.3, and in stable backports — absent: decided from `version`. */
  watchdogLongIntervalSkip?: boolean;
  /** CONFIG_X86_64 (64) or CONFIG_X86_32 (32). */
  bits: 32 | 64;
  /** CONFIG_HZ. */
  hz: number;
  /** CONFIG_KVM_GUEST: kvm_para, kvmclock, steal time, PV EOI. Selects PARAVIRT_CLOCK. */
  kvmGuest: boolean;
  /** CONFIG_PARAVIRT_CLOCK (pvclock.c); kvm-clock needs it. */
  paravirtClock: boolean;
  /** CONFIG_HPET_TIMER: the hpet clocksource/clockevent. */
  hpetTimer: boolean;
  /** CONFIG_ACPI && CONFIG_X86_PM_TIMER: the acpi_pm clocksource. */
  acpiPmTimer: boolean;
  /** CONFIG_X86_TSC (32-bit: only for CPU types that guarantee a TSC; the driver still runs when CPUID has it). */
  x86Tsc: boolean;
  /** CONFIG_NO_HZ_IDLE / NO_HZ_FULL (tickless idle). */
  noHz: boolean;
  /** CONFIG_HIGH_RES_TIMERS. */
  highResTimers: boolean;
  /** CONFIG_CLOCKSOURCE_WATCHDOG (x86 selects it). */
  clocksourceWatchdog: boolean;
  /** CONFIG_X86_LOCAL_APIC (32-bit UP kernels may build without it). */
  localApic: boolean;
  /** CONFIG_PARAVIRT_TIME_ACCOUNTING: subtract steal from task time. */
  paravirtTimeAccounting: boolean;
  /** CONFIG_RTC_HCTOSYS: rtc_cmos sets the system clock (whole seconds) at late_initcall. */
  rtcHctosys: boolean;
  /** CONFIG_HPET (the /dev/hpet driver that prints the hpet0: lines). */
  hpetCharDev: boolean;
  /** The jiffies clocksource is registered before tsc-early (6.x order seen on a 6.18 guest). */
  jiffiesBeforeTscEarly: boolean;
  /** Print calibrate_delay's BogoMIPS line when its value needs no measuring (calibrate-delay.ts). Off in
   *  the presets (their recordings leave it out); the lab's twin turns it on. */
  printCalibrateDelay?: boolean;
}
