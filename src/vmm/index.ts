// vmm: machine profiles (what each VMM offers a guest), guest kernel presets, and a VirtualMachine
// that turns a profile plus a host into the GuestPlatform a guest kernel boots on; bootVm() does both.
export {
  PROFILES,
  machineProfile,
  DEFAULT_HOST,
  KVM_SUPPORTED_FEATURES,
  QEMU_KVM_FEATURES,
  type HostCpu,
  type MachineProfile,
} from './profiles.ts';
export { KERNEL_PRESETS, kernelPreset } from './kernels.ts';
export {
  periodicVcpuSchedule,
  resolveHost,
  type RestoreOutcome,
  type RestoreTarget,
  VirtualMachine,
  type VirtualMachineOptions,
  type VcpuSchedule,
  type VmClockState,
  type HostTscSkew,
  skewMarksTscUnstable,
} from './machine.ts';
export { bootVm, type BootVmOptions, type BootedVm, guestReport, type GuestReport } from './boot-vm.ts';
export { VmLifecycle, PAUSE_CLOCK_POLICY, type PauseClockPolicy, type PauseRecord } from './lifecycle.ts';
export { VmDevices, vmmKind, type VmDevicesOptions, type RtcConfig, type VmmKind } from './vm-devices.ts';
export { VmVirtualClock } from './vm-clock.ts';
export { KvmtoolRtc } from './kvmtool-rtc.ts';
export {
  mc146818GetTime,
  MC146818_GET_TIME_TIMEOUT_MS,
  UIP_RECHECK_DELAY_US,
  type CmosPortIo,
  type Mc146818Time,
  type Mc146818Options,
} from './mc146818-get-time.ts';
export { INVTSC_BLOCKER, MOVE_CLOCK_POLICY, type MoveClockPolicy, moveClockPolicy, CLOCK_GUEST_NOTE } from './snapshot.ts';
export { type VmclockFlavor, VmclockDevice, vmclockFlavor } from './vmclock.ts';
export { type VmgenidFlavor, type VmgenidOptions, VmgenidDevice, vmgenidFlavor, parseUuid, guidText, VMGENID_SIZE } from './vmgenid.ts';
export {
  runKvmclockTest,
  hostMarksTscUnstable,
  skewCycles,
  type KvmclockTestOptions,
  type KvmclockTestHost,
  type KvmclockTestResult,
  type WarpCount,
} from './kvmclock-test.ts';
