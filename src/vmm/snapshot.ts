// What each VMM does with a guest's clocks when it saves a VM and restores it later, or migrates it live
// to another host — one place per profile, with the sources. Every VMM here restores the vCPUs' TSC
// from the saved MSR_IA32_TSC (so the guest TSC does not see the gap) and kvmclock with KVM_SET_CLOCK;
// they differ in whether they ask KVM to add the time since the save (KVM_CLOCK_REALTIME) and in what
// they refuse.
import { InputError } from '../core/index.ts';

export interface MoveClockPolicy {
  /** Why the VMM cannot save and restore a VM, or null when it can. */
  snapshotRefused: string | null;
  /** Why the VMM cannot live-migrate this VM, or null when it can (`invtsc`: QEMU's invariant-TSC blocker). */
  migrationRefused: string | null;
  /** KVM_SET_CLOCK on restore carries KVM_CLOCK_REALTIME: 'never', 'option' (off unless asked), 'always'. */
  clockRealtime: 'never' | 'option' | 'always';
  source: string;
}

// QEMU: kvmclock's vmstate carries the clock read at vm_stop; on the destination vm_start runs
// KVM_SET_CLOCK with it and no flags (hw/i386/kvm/clock.c kvmclock_vm_state_change); the CPU vmstate
// carries MSR_IA32_TSC and tsc_khz (target/i386/machine.c), put back by kvm_arch_put_registers.
// With invtsc and no tsc-frequency QEMU registers a migration blocker (target/i386/kvm/kvm.c
// kvm_arch_init_vcpu: "State blocked by non-migratable CPU device (invtsc flag)").
const QEMU_KVM: MoveClockPolicy = {
  snapshotRefused: null,
  migrationRefused: null,
  clockRealtime: 'never',
  source: 'QEMU hw/i386/kvm/clock.c kvmclock_vm_state_change, target/i386/machine.c, target/i386/kvm/kvm.c',
};

export const MOVE_CLOCK_POLICY: Readonly<Record<string, MoveClockPolicy>> = {
  'qemu-kvm': { ...QEMU_KVM, migrationRefused: 'invtsc' },
  'qemu-kvm-noinvtsc': QEMU_KVM,
  // TCG: no KVM state; QEMU's timers vmstate carries the virtual clock and the emulated TSC's offset
  'qemu-tcg': { ...QEMU_KVM, source: 'QEMU softmmu/cpu-timers.c vmstate_timers, migration/savevm.c' },
  // Firecracker saves KVM_GET_CLOCK (TSC_STABLE cleared) and the vCPU MSRs; since PR #5809 the restore
  // drops KVM_CLOCK_REALTIME unless the snapshot-load request sets `clock_realtime` (src/vmm/src/arch/x86_64/vm.rs
  // save_state/restore_state, docs/snapshotting/snapshot-support.md). It has no live migration.
  firecracker: {
    snapshotRefused: null,
    migrationRefused: 'Firecracker has no live migration; restore a snapshot on the other host instead (snapshots[].restore_on)',
    clockRealtime: 'option',
    source: 'firecracker src/vmm/src/arch/x86_64/vm.rs save_state/restore_state; LoadSnapshot clock_realtime',
  },
  // Firecracker on a PVM host: the same VMM; PVM's TSC is the host's (no offset), which the restore cannot move
  'firecracker-pvm': {
    snapshotRefused:
      'snapshots of a PVM guest are not modelled: PVM gives the guest the host TSC with no offset, and what its restore does with it is unknown here',
    migrationRefused: 'Firecracker has no live migration',
    clockRealtime: 'option',
    source: 'firecracker src/vmm/src/arch/x86_64/vm.rs; PVM (see the firecracker-pvm profile)',
  },
  // Cloud Hypervisor keeps KVM_CLOCK_REALTIME from the save and fills it in when missing, so kvmclock
  // catches up on restore and after a migration (hypervisor/src/lib.rs, PR #8256)
  'cloud-hypervisor': {
    snapshotRefused: null,
    migrationRefused: null,
    clockRealtime: 'always',
    source: 'cloud-hypervisor hypervisor/src/lib.rs ClockData realtime (PR #8256), vmm/src/vm.rs Snapshottable',
  },
  kvmtool: {
    snapshotRefused: 'kvmtool cannot save, restore or migrate a VM',
    migrationRefused: 'kvmtool cannot save, restore or migrate a VM',
    clockRealtime: 'never',
    source: 'kvmtool (no snapshot or migration support)',
  },
};

/**
 * KVM_GET_CLOCK_GUEST / KVM_SET_CLOCK_GUEST (dwmw2's KVM clock series v6 05/36, not in a released kernel):
 * no VMM here uses them yet — QEMU (hw/i386/kvm/clock.c), Cloud Hypervisor (hypervisor/src/kvm) and
 * Firecracker (src/vmm/src/arch/x86_64/vm.rs) save and restore kvmclock only with KVM_[GS]ET_CLOCK — so
 * `vms[].clock_guest: true` models a VMM that follows the migration procedure the series documents
 * (Documentation/virt/kvm/devices/vcpu.rst, v6 09/36), on any KVM profile that can move a VM: save KVM_GET_CLOCK,
 * each guest TSC and the boot vCPU's KVM_GET_CLOCK_GUEST; on the destination move each guest TSC on by the host
 * realtime elapsed (ΔT·freq, KVM_VCPU_TSC_OFFSET), then KVM_SET_CLOCK_GUEST, or KVM_SET_CLOCK with
 * KVM_CLOCK_REALTIME when that is unavailable or fails (src/vmm/machine.ts restoreClockState).
 */
export const CLOCK_GUEST_NOTE = 'a VMM option: no VMM uses KVM_[GS]ET_CLOCK_GUEST yet';

export function moveClockPolicy(profile: string): MoveClockPolicy {
  const p = MOVE_CLOCK_POLICY[profile];
  if (!p) throw new InputError(`snapshot and migration are not modelled for profile "${profile}"`, 'profile');
  return p;
}

/** QEMU's reason for refusing to migrate a VM with an invariant TSC and no fixed tsc-frequency. */
export const INVTSC_BLOCKER = 'State blocked by non-migratable CPU device (invtsc flag)';
