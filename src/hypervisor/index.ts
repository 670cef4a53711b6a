// hypervisor: KVM's clock semantics for x86 guests, bit-exact with arch/x86/kvm/x86.c.
//
// How to use it (the vmm layer drives this; the guest sees only guest memory, MSRs and the TSC):
//
//   const host = new LinuxHostTimekeeper({ tscKhz: 2_596_136, rdtsc: () => worldHost.rdtsc(engine.now) });
//   const memory = new FlatGuestMemory(1 << 20);
//   const vm = new KvmVm({ host, memory, scheduler: engine, tscScaling: VMX_TSC_SCALING }); // KVM_CREATE_VM
//   const vcpu = vm.createVcpu({ runDelayNs: () => thread.runDelay });                        // KVM_CREATE_VCPU
//   vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, 0x1000n | 1n);   // guest enables kvmclock (wrmsr)
//   vcpu.setMsr(MSR_KVM_STEAL_TIME, 0x2000n | 1n);        // guest enables steal time
//   vcpu.run(cpu);          // KVM_RUN: vcpu_load, vcpu_enter_guest (requests → pvclock record), vcpu_put
//   vcpu.readL1Tsc();       // what RDTSC returns in the guest now
//   vm.getClock();          // KVM_GET_CLOCK  {clock, flags, realtime, hostTsc}
//   vm.setClock({ clock }); // KVM_SET_CLOCK
//   vm.getClockGuest(vcpu); vm.setClockGuest(vcpu, rec); // KVM_[GS]ET_CLOCK_GUEST (clockFeatures.clockGuestIoctls)
//   vcpu.kvmclockCtrl();    // KVM_KVMCLOCK_CTRL (GUEST_STOPPED on the next record update)
//
// The guest reads its record the Linux way (guest/pvclock.ts), through guest memory and its TSC only:
//
//   const guest = new PvclockGuest({ stableBitTrusted: true });   // KVM_FEATURE_CLOCKSOURCE_STABLE_BIT
//   guest.read(memory, 0x1000n, () => vcpu.readL1Tsc()).ns;       // kvm-clock's read
//
// The records themselves (layouts, flags, MSR numbers, pvclock_scale_delta) are in
// core/pvclock-abi.ts. Time moves only through `host.rdtsc` (and the scheduler for the delayed
// 100 ms / 300 s work): the model never reads the wall clock.
//
// KVM's in-kernel PIT (KVM_CREATE_PIT2) is KvmPit: the devices layer's 8254 registers (PitCommon) with
// KVM's channel 0 hrtimer, reinject/discard and the min_timer_period_us clamp (kvm-pit.ts):
//
//   const pit = new KvmPit({ scheduler: engine, irq: irq0, reinject: true });   // ports 0x40-0x43
//   pit.ackIrq();                                                               // EOI of IRQ0 (reinject)
//
// KVM_HC_CLOCK_PAIRING (the ptp_kvm PHC's hypercall: host REALTIME paired with the guest TSC): clock-pairing.ts
//
//   kvmEmulateHypercall(vcpu, memory, KVM_HC_CLOCK_PAIRING, gpa, BigInt(KVM_CLOCK_PAIRING_WALLCLOCK)); // 0 or -KVM_E…
//
// Why KVM_GET_CLOCK and a guest's record can disagree (different master-clock snapshots), and how to
// predict one from the other: clock-pair.ts.
export { kvmGetTimeScale, kvmclockScale, divFrac, nsecToCycles, kvmclockTargetHz, hvclockToHz, type TimeScale } from './timescale.ts';
export {
  type TscScalingCaps,
  VMX_TSC_SCALING,
  SVM_TSC_SCALING,
  NO_TSC_SCALING,
  defaultTscScalingRatio,
  kvmScaleTsc,
  tscScalingRatio,
  adjustTscKhz,
  TSC_TOLERANCE_PPM,
} from './tsc.ts';
export {
  type HostTimekeeper,
  LinuxHostTimekeeper,
  type LinuxHostTimekeeperConfig,
  HOST_HPET_PERIOD_FS,
  hz32MultShift,
} from './host-time.ts';
export { type GuestMemory, FlatGuestMemory, guestRamSpares } from './guest-memory.ts';
export {
  KvmVm,
  type KvmVmOptions,
  type KvmClockData,
  type MasterClock,
  type KvmClockFeatures,
  MAINLINE_KVM_CLOCK,
  KvmIoctlError,
  KVM_CLOCK_TSC_STABLE,
  KVM_CLOCK_REALTIME,
  KVM_CLOCK_HOST_TSC,
  KVM_CLOCK_VALID_FLAGS,
  KVMCLOCK_UPDATE_DELAY_NS,
  KVMCLOCK_SYNC_PERIOD_NS,
} from './kvm.ts';
export { KvmVcpu, type KvmVcpuOptions, type KvmRequest, type RdtscExiting } from './vcpu.ts';
export { predictGetClock, explainClockPair, type ClockPairExplanation } from './clock-pair.ts';
export { KvmPit, type KvmPitOptions } from './kvm-pit.ts';
export { KvmLapic, type KvmLapicOptions, IRQ0_VECTOR, LOCAL_TIMER_VECTOR } from './kvm-lapic.ts';
export {
  kvmPvClockPairing,
  kvmEmulateHypercall,
  encodeClockPairing,
  decodeClockPairing,
  type KvmClockPairing,
  KVM_HC_CLOCK_PAIRING,
  KVM_CLOCK_PAIRING_WALLCLOCK,
  KVM_CLOCK_PAIRING_SIZE,
  KVM_ENOSYS,
  KVM_EFAULT,
  KVM_EOPNOTSUPP,
} from './clock-pairing.ts';
