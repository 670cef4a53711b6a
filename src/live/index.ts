// live: the real /dev/kvm backend (koffi), its UAPI layouts, the micro-guests, a small VMM (LiveMachine:
// in-kernel irqchip and PIT, a vCPU worker thread, exits dispatched to the device models on the host
// clock) and the experiments behind `timevisor kvm clock|steal|pause|pit|rtc|lapic|kvmclock`, each with
// its twin. One LiveKvm owns every fd and mapping; close() it.
//
//   const kvm = LiveKvm.open();                 // UnavailableError if /dev/kvm is missing or unusable
//   try {
//     const g = bootMicroGuest(kvm);             // VM + vCPU + kvmclock/steal MSRs + first KVM_RUN
//     g.vm.readPvclock(PVCLOCK_GPA); g.vm.getClock(); g.vcpu.runOnce();
//   } finally { kvm.close(); }
export { LiveKvm, LiveVm, LiveVcpu, KvmUnusableError, kvmUnavailableReason, kvmDevicePath, type ExitInfo } from './kvm.ts';
export {
  bootMicroGuest,
  guestKvmclock,
  CODE_GPA,
  PVCLOCK_GPA,
  WALL_CLOCK_GPA,
  STEAL_GPA,
  PIO_PORT,
  PIO_LOOP,
  type MicroGuest,
} from './micro-guest.ts';
export { sampleKvmClock, clockSampleJson, type ClockReport, type ClockSample } from './clock.ts';
export { measureSteal, threadRunDelayNs, type StealRun } from './steal.ts';
export { livePause, simulatePause, type PauseReport, type PauseSide } from './pause.ts';
export { uapiTable } from './uapi.ts';
export { compileC, cToolchainMissing, type CompiledProgram } from './cc.ts';
export { measureKvmclockDrift, type DriftReport } from './drift.ts';
export { LiveMachine, type LiveMachineOptions, MB, TICK_PORT, MARK_PORT, HPET_BASE, PM_BASE } from './vmm.ts';
export { HostScheduler } from './host-scheduler.ts';
export { applyCpuidPolicy, cpuidValue, type CpuidPolicy } from './cpuid.ts';
export { buildGuest, assemblerMissing, GUEST_LOAD_GPA, type GuestName } from './guest-build.ts';
export { HostTrace, bpftraceMissing, probesFor, twinCounts, formatCounts, type HostTraceResult } from './bpftrace.ts';
export { pitExperiment, simulatePit, pitDivisor, findKvmPitThread, type PitReport, type PitOptions } from './exp-pit.ts';
export { lapicExperiment, simulateLapic, parseLapicMode, type LapicReport, type LapicMode } from './exp-lapic.ts';
export { kvmclockExperiment, simulateKvmclock, type KvmclockReport } from './exp-kvmclock.ts';
export { rtcExperiment, simulateRtc, type RtcReport } from './exp-rtc.ts';
export { formatRows, pitRows, lapicRows, kvmclockRows, rtcRows, type CompareRow } from './compare.ts';
export { devicesExperiment, simulateDevices, timerIntervals, type DevicesReport } from './exp-devices.ts';
