// vmm: machine profiles (what each VMM offers a guest), guest kernel presets, and a VirtualMachine
// that turns a profile plus a host into the GuestPlatform a guest kernel boots on; bootVm() does both.
export { PROFILES, machineProfile, DEFAULT_HOST, KVM_SUPPORTED_FEATURES, QEMU_KVM_FEATURES, type HostCpu, type MachineProfile } from './profiles.ts';
export { KERNEL_PRESETS, kernelPreset } from './kernels.ts';
export { VirtualMachine, resolveHost, type VirtualMachineOptions } from './machine.ts';
export { bootVm, type BootVmOptions, type BootedVm, guestReport, type GuestReport } from './boot-vm.ts';
export { VmLifecycle, PAUSE_CLOCK_POLICY, type PauseClockPolicy, type PauseRecord } from './lifecycle.ts';
