// live: the real /dev/kvm backend (koffi), its UAPI layouts, the micro-guest, and the experiments
// behind `timevisor kvm clock|steal|pause`. One LiveKvm owns every fd and mapping; close() it.
//
//   const kvm = LiveKvm.open();                 // UnavailableError if /dev/kvm is missing or unusable
//   try {
//     const g = bootMicroGuest(kvm);             // VM + vCPU + kvmclock/steal MSRs + first KVM_RUN
//     g.vm.readPvclock(PVCLOCK_GPA); g.vm.getClock(); g.vcpu.runOnce();
//   } finally { kvm.close(); }
export { LiveKvm, LiveVm, LiveVcpu, kvmUnavailableReason, kvmDevicePath, type ExitInfo } from './kvm.ts';
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
