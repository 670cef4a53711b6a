// Pause and resume as each VMM does them, in one place per profile (STYLE.md: one obvious place per
// lifecycle operation). What matters for the guest's clocks is what the VMM does with kvmclock:
//
//   qemu-kvm          stop: KVM_GET_CLOCK saved; cont: KVM_SET_CLOCK(saved), then KVM_KVMCLOCK_CTRL on
//                     every vCPU (QEMU hw/i386/kvm/clock.c, kvmclock_vm_state_change / do_kvmclock_ctrl)
//   cloud-hypervisor  pause: KVM_GET_CLOCK saved with flags reset; resume: KVM_SET_CLOCK(saved)
//                     (cloud-hypervisor vmm/src/vm.rs, impl Pausable for Vm)
//   firecracker       pause/resume only stop and restart the vCPU threads; kvmclock runs on
//                     (firecracker src/vmm/src/lib.rs, Vmm::pause_vm / resume_vm)
//   kvmtool           pause issues KVM_KVMCLOCK_CTRL on the *VM* fd, which KVM rejects (it is a vCPU
//                     ioctl: kvm_arch_vm_ioctl → -ENOTTY), then stops the vCPU threads
//                     (kvmtool kvm-ipc.c handle_pause → kvm.c kvm__pause)
//
//   qemu-tcg          stop freezes the emulated TSC and QEMU_CLOCK_VIRTUAL (cpu_disable_ticks)
//
// Saving and restoring kvmclock hides the pause from a guest clocked by kvm-clock: its monotonic
// clocks do not see the gap, and its wall clock falls behind by the pause until something (guest
// agent, NTP) sets it. Under KVM no VMM here touches the TSC on pause, so a guest clocked by the TSC
// sees the pause as elapsed time and its wall clock stays right; under TCG the TSC stops too.
import { InputError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import type { BootedVm } from './boot-vm.ts';
import type { RestoreOutcome, RestoreTarget, VmClockState } from './machine.ts';

export interface PauseClockPolicy {
  /** KVM_GET_CLOCK on pause and KVM_SET_CLOCK with the saved value on resume. */
  saveRestoreKvmclock: boolean;
  /** KVM_KVMCLOCK_CTRL on each vCPU at resume (sets PVCLOCK_GUEST_STOPPED for the soft-lockup watchdog). */
  kvmclockCtrl: boolean;
  /** vm_stop stops QEMU_CLOCK_VIRTUAL (softmmu/cpus.c do_vm_stop → cpu_disable_ticks): HPET, PM timer and
   *  PIT stand still until cont. Absent or false: the VMM's timer devices run on host time. */
  stopsVirtualClock?: boolean;
  source: string;
}

const QEMU: PauseClockPolicy = {
  saveRestoreKvmclock: true,
  kvmclockCtrl: true,
  stopsVirtualClock: true,
  source: 'QEMU hw/i386/kvm/clock.c kvmclock_vm_state_change; softmmu/cpus.c do_vm_stop',
};

const FIRECRACKER: PauseClockPolicy = {
  saveRestoreKvmclock: false,
  kvmclockCtrl: false,
  source: 'firecracker src/vmm/src/lib.rs Vmm::pause_vm',
};

export const PAUSE_CLOCK_POLICY: Readonly<Record<string, PauseClockPolicy>> = {
  'qemu-kvm': QEMU,
  'qemu-kvm-noinvtsc': QEMU,
  'cloud-hypervisor': { saveRestoreKvmclock: true, kvmclockCtrl: false, source: 'cloud-hypervisor vmm/src/vm.rs Pausable::pause/resume' },
  firecracker: FIRECRACKER,
  'firecracker-pvm': FIRECRACKER, // the same VMM on a PVM host
  kvmtool: {
    saveRestoreKvmclock: false,
    kvmclockCtrl: false,
    source: 'kvmtool kvm-ipc.c handle_pause (KVMCLOCK_CTRL on the VM fd fails with ENOTTY)',
  },
  // TCG: no kvmclock, but vm_stop's cpu_disable_ticks also freezes the emulated TSC
  'qemu-tcg': {
    saveRestoreKvmclock: false,
    kvmclockCtrl: false,
    stopsVirtualClock: true,
    source: 'QEMU softmmu/cpus.c do_vm_stop, softmmu/cpu-timers.c cpu_disable_ticks',
  },
};

export interface PauseRecord {
  pausedAt: Ns;
  resumedAt: Ns | null;
  /** The kvmclock value saved at pause (KVM_GET_CLOCK), when the VMM saves it. */
  savedKvmclock: Ns | null;
}

/** Pause/resume control of one booted VM. Also gates the guest: no vCPU runs while paused. */
export class VmLifecycle {
  readonly policy: PauseClockPolicy;
  readonly history: PauseRecord[] = [];
  private current: PauseRecord | null = null;
  private plannedResume: Ns | null = null;

  constructor(private readonly b: BootedVm) {
    const name = b.opts.profile.name;
    const policy = PAUSE_CLOCK_POLICY[name];
    if (!policy)
      throw new InputError(
        `pause/resume is not modelled for profile "${name}" (modelled: ${Object.keys(PAUSE_CLOCK_POLICY).join(', ')})`,
        'profile',
      );
    this.policy = policy;
    const p = b.vm.platform;
    const running = p.vcpuRunning?.bind(p);
    const next = p.nextVcpuRun?.bind(p);
    const always = p.vcpuAlwaysRuns?.bind(p);
    p.vcpuRunning = (cpu) => this.current === null && (running ? running(cpu) : true);
    p.nextVcpuRun = (cpu) => {
      if (this.current !== null) return this.plannedResume ?? this.b.opts.scheduler.now + 1_000_000_000n;
      return next ? next(cpu) : this.b.opts.scheduler.now;
    };
    p.vcpuAlwaysRuns = (cpu) => this.current === null && (always ? always(cpu) : !running);
  }

  get paused(): boolean {
    return this.current !== null;
  }

  /** Stop the VM now; `resumeAt`, when known, lets the guest's timers wait for exactly then. */
  pause(resumeAt?: Ns): void {
    if (this.current) throw new InputError('VM is already paused', 'pause');
    const kvm = this.b.vm.kvm;
    const saved = this.policy.saveRestoreKvmclock && kvm ? kvm.getClock().clock : null;
    this.current = { pausedAt: this.b.opts.scheduler.now, resumedAt: null, savedKvmclock: saved };
    this.plannedResume = resumeAt ?? null;
    this.b.vm.setVcpusPaused(true);
    this.b.vm.vmclock?.pause();
    if (this.policy.stopsVirtualClock) this.b.vm.vmStateChange(false);
  }

  /**
   * End a snapshot's absence or a migration's stop-and-copy: the saved clocks are restored on `target`
   * (src/vmm/machine.ts restoreClockState, which makes the VMM's KVM_SET_CLOCK), then the VM runs again as
   * after a pause — vm_start's KVMCLOCK_CTRL included — without the pause's own KVM_SET_CLOCK.
   */
  restore(state: VmClockState | null, target: RestoreTarget, kind: 'restore' | 'migration'): RestoreOutcome {
    const rec = this.current;
    if (!rec) throw new InputError('VM is not stopped', 'restore');
    const outcome = this.b.vm.restoreClockState(state, target);
    rec.savedKvmclock = null;
    this.b.vm.vmclock?.postLoad(kind); // QEMU vmclock_post_load, Firecracker do_post_restore
    this.resume();
    return outcome;
  }

  resume(): void {
    const rec = this.current;
    if (!rec) throw new InputError('VM is not paused', 'resume');
    const kvm = this.b.vm.kvm;
    if (kvm && rec.savedKvmclock !== null) kvm.setClock({ clock: rec.savedKvmclock });
    if (this.policy.kvmclockCtrl) for (const v of this.b.vm.vcpus) if (v.pvTimeActive) v.kvmclockCtrl();
    rec.resumedAt = this.b.opts.scheduler.now;
    this.history.push(rec);
    this.current = null;
    this.plannedResume = null;
    if (this.policy.stopsVirtualClock) this.b.vm.vmStateChange(true);
    this.b.vm.setVcpusPaused(false);
    this.b.vm.vmclock?.resume();
    // vCPUs re-enter and run the pending clock requests — each when the host schedules its thread
    for (const v of this.b.vm.vcpus) this.b.vm.enterWhenRunning(v.id);
  }
}
