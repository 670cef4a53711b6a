// The micro-guest every live experiment runs: 4 bytes of real-mode code at 0x1000 that write to
// I/O port 0x10 forever (`out 0x10, al; jmp $-2`), so each KVM_RUN returns after two emulated
// instructions with a PIO exit. kvmclock and steal time are enabled by host-initiated MSR writes
// (KVM_SET_MSRS), as a VMM restoring a guest would; the records land at fixed guest addresses.
import {
  MSR_KVM_STEAL_TIME,
  MSR_KVM_SYSTEM_TIME_NEW,
  MSR_KVM_WALL_CLOCK_NEW,
  MSR_IA32_TSC,
  pvclockReadCycles,
  type PvclockVcpuTimeInfo,
} from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import type { LiveKvm, LiveVcpu, LiveVm } from './kvm.ts';

export const CODE_GPA = 0x1000;
export const PVCLOCK_GPA = 0x2000;
export const WALL_CLOCK_GPA = 0x3000;
export const STEAL_GPA = 0x4000;
export const PIO_PORT = 0x10;
/** out 0x10, al ; jmp short -4 */
export const PIO_LOOP = Uint8Array.of(0xe6, PIO_PORT, 0xeb, 0xfc);

export interface MicroGuest {
  vm: LiveVm;
  vcpu: LiveVcpu;
}

/** A VM with 64 KiB of RAM, in-kernel irqchip, one vCPU running the PIO loop, kvmclock and steal time on. */
export function bootMicroGuest(kvm: LiveKvm, opts: { steal?: boolean } = {}): MicroGuest {
  const vm = kvm.createVm(0x10000);
  const vcpu = vm.createVcpu();
  vm.writeGuest(CODE_GPA, PIO_LOOP);
  vcpu.setRealMode(CODE_GPA);
  const msrs: [number, bigint][] = [
    [MSR_KVM_SYSTEM_TIME_NEW, BigInt(PVCLOCK_GPA) | 1n],
    [MSR_KVM_WALL_CLOCK_NEW, BigInt(WALL_CLOCK_GPA)],
  ];
  if (opts.steal ?? true) msrs.push([MSR_KVM_STEAL_TIME, BigInt(STEAL_GPA) | 1n]);
  vcpu.setMsrs(msrs);
  vcpu.runOnce(); // first entry: master clock, pvclock record, steal record
  return { vm, vcpu };
}

/** The guest's own clock: its pvclock record (from guest memory) read at its current TSC (IA32_TSC). */
export function guestKvmclock(g: MicroGuest): { ns: Ns; record: PvclockVcpuTimeInfo } {
  const tsc = g.vcpu.getMsr(MSR_IA32_TSC);
  const record = g.vm.readPvclock(PVCLOCK_GPA);
  return { ns: pvclockReadCycles(record, tsc), record };
}
