// guest: the Linux guest kernel's timekeeping as a model. A guest boots on a GuestPlatform (CPUID,
// devices, counters, guest memory and WRMSR — what src/vmm builds from a profile and a host) and
// becomes a GuestKernel: boot log, sysfs texts, clocks (timekeeper with NTP), watchdog, clockevents,
// steal accounting and vDSO read paths.
//
//   const g = bootGuest({ platform, kernel, cmdline, scheduler });  // schedules the boot steps
//   engine.run(t);                                                  // boot proceeds in model time
//   g.currentClocksource();  g.clockGettime('realtime');  g.adjtimex({ modes: ADJ_OFFSET, offset });
export {
  bootGuest,
  GuestKernel,
  DEFAULT_BOOT_PHASES,
  STEAL_TIME_GPA,
  type BootGuestOptions,
  type BootPhases,
  type LogLine,
  type WallClockSource,
} from './boot.ts';
export type {
  GuestPlatform,
  QuietEntries,
  GuestCpuid,
  GuestDevices,
  CmosReading,
  CpuVendor,
  AcpiTableHeader,
  RtcCmosDevice,
  GuestInterrupts,
} from './platform.ts';
export { TscState, type TscDeps } from './tsc-state.ts';
export { readPersistentClock, rtcHctosys, type HctosysResult } from './wallclock.ts';
export { rtcCmosProbeLines, pnpacpiDeviceName } from './rtc-cmos.ts';
export { acpiTableLines } from './acpi.ts';
export { dmesgLines, clockeventDeviceText } from './sysfs.ts';
export { PeriodicTick, type PeriodicTickDeps, clockeventsConfig } from './periodic-tick.ts';
export { HpetTickDevice, PitTickDevice, HPET_MIN_CYCLES, type GlobalTickDevice } from './tick-devices.ts';
export { acpiBootLines, hpetClocksource, acpiPmClocksource, hpetLateInitLines, checkTimerLine, pmTimerUsable } from './platform-timers.ts';
export { kvmRegisterStealTime } from './runtime.ts';
export { VmgenidDriver, VMFORK_RESEED_LINE } from './vmgenid.ts';
export { calibrateDelayLine, lpjFromKhz } from './calibrate-delay.ts';
export type { KernelConfig } from './kernel.ts';
export { parseCmdline, splitCmdline, type ParsedCmdline, type TimeParams } from './cmdline.ts';
export {
  Clocksource,
  clocksourceUpdateFreqScale,
  clocksCalcMaxNsecs,
  clocksourceMaxAdjustment,
  CLOCK_SOURCE_IS_CONTINUOUS,
  CLOCK_SOURCE_MUST_VERIFY,
  CLOCK_SOURCE_VALID_FOR_HRES,
  CLOCK_SOURCE_UNSTABLE,
  WATCHDOG_THRESHOLD,
  WATCHDOG_MAX_SKEW,
} from './clocksource.ts';
export { ClocksourceCore } from './clocksources.ts';
export { ClocksourceWatchdog } from './watchdog.ts';
export { jiffiesClocksource, refinedJiffiesClocksource, tickNsec, PIT_TICK_RATE, JIFFIES_SHIFT } from './jiffies.ts';
export {
  kvmclockInit,
  kvmclockAvailable,
  pvclockTscKhz,
  HV_CLOCK_GPA,
  HV_CLOCK_STRIDE,
  hvClockGpa,
  WALL_CLOCK_GPA,
  type KvmclockSetup,
} from './kvmclock.ts';
export { quickPitCalibrate, pitHpetPtimerCalibrateCpu, nativeCalibrateTsc, mhz } from './tsc.ts';
export { Timekeeper, standaloneTimekeeper, type ClockId, type StandaloneTimekeeperOptions } from './timekeeper.ts';
export * from './ntp.ts';
export { setupTick, type ClockeventDevice, type TickSetup } from './clockevents.ts';
export { StealAccounting, kvmStealClock, type CpuMode, type CpuStat } from './steal.ts';
export { vdsoReadCosts, rdtscCostNs, VDSO_COST, type VdsoReadCost, type VdsoClock } from './vdso.ts';
export { PvclockGuest, pvclockReadRecord, PVCLOCK_RAW_CYCLE_BIT, type PvclockMemory, type PvclockReadResult } from './pvclock.ts';
export { NtpKernelClient, type NtpClientOptions, type NtpMeasurement } from './ntp-client.ts';
export * as chrony from './chrony/index.ts';
export { Chronyd, type NtpServerLink, type NtpServerReply } from './chrony/index.ts';
export { USERSPACE_VCPU, vcpuScheduler, vcpuTimer, whenVcpuRuns, type VcpuGate } from './vcpu-wait.ts';
export { QgaAgent, QGA_COMMANDS, QGA_MODELLED, type QgaAgentOptions, type QgaGuest } from './qga-agent.ts';
export {
  PtpKvm,
  type PtpKvmGuest,
  type PtpKvmOptions,
  type PhcReading,
  type PtpError,
  CLOCK_PAIR_GPA,
  HYPERCALL_EXIT_NS,
  HYPERCALL_RETURN_NS,
} from './ptp-kvm.ts';
