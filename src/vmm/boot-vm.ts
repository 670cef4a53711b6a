// Boot a guest kernel preset on a machine profile: create the VM now, enter the kernel after the
// profile's firmware/loader time, and report what the guest prints and shows in sysfs.
import type { Scheduler } from '../core/index.ts';
import type { Cycles, Ns, TscPlan } from '../core/index.ts';
import type { TraceRecorder } from '../core/index.ts';
import { bootGuest, type BootGuestOptions, type GuestKernel } from '../guest/index.ts';
import { parseCmdline } from '../guest/index.ts';
import type { KernelConfig } from '../guest/index.ts';
import type { HostCpu, MachineProfile } from './profiles.ts';
import type { VcpuSchedule } from './machine.ts';
import { type HostTscSkew, VirtualMachine } from './machine.ts';
import type { RdtscExiting } from '../hypervisor/index.ts';
import type { RtcConfig } from './vm-devices.ts';
import type { VmgenidOptions } from './vmgenid.ts';
import { hex } from '../core/index.ts';
import { InputError } from '../core/index.ts';

export interface BootVmOptions {
  profile: MachineProfile;
  kernel: KernelConfig;
  /** User kernel arguments (the VMM's own come first). */
  cmdline?: string;
  host?: Partial<HostCpu>;
  scheduler: Scheduler;
  vcpus?: number;
  epochNs?: Ns;
  stealFraction?: number;
  tscRateChange?: { atNs: Ns; ppm: number };
  /** How often vCPUs re-enter the guest (KVM handles clock/steal requests then). */
  vcpuEntryIntervalNs?: Ns;
  /** vCPU threads run `runNs` out of every `periodNs` (descheduled the rest: lost ticks, steal). */
  deschedule?: { periodNs: Ns; runNs: Ns };
  /** KVM's in-kernel PIT lost-tick policy (default reinject). */
  pitLostTickPolicy?: 'reinject' | 'discard';
  /** See VirtualMachineOptions.directOneshotTick. */
  directOneshotTick?: boolean;
  /** The host's CPU scheduler (see VirtualMachineOptions.vcpuSchedule). */
  vcpuSchedule?: (nrVcpus: number) => VcpuSchedule;
  /** The host's TSC at scheduler time t, when the world owns the host (see VirtualMachineOptions.hostTscAt). */
  hostTscAt?: (t: Ns) => Cycles;
  /** See VirtualMachineOptions.hostTscPlan. */
  hostTscPlan?: () => TscPlan | null;
  /** How long the host had been up (counting its TSC from 0) at scheduler time 0. */
  hostUptimeNs?: Ns;
  /** QEMU's `-rtc base=…,clock=…` for the qemu-* profiles (see VirtualMachineOptions.rtc). */
  rtc?: RtcConfig;
  /** The host's CLOCK_REALTIME now, when the world owns the host (see VirtualMachineOptions.hostRealtime). */
  hostRealtime?: () => Ns;
  /** See VirtualMachineOptions.hostRealtimeSteps. */
  hostRealtimeSteps?: () => Ns;
  /** See VirtualMachineOptions.tscFrequencyKhz. */
  tscFrequencyKhz?: number;
  /** See VirtualMachineOptions.vmclock. */
  vmclock?: { precise: boolean; esterrorNs: Ns; maxerrorNs: Ns };
  /** See VirtualMachineOptions.vmgenid. */
  vmgenid?: VmgenidOptions;
  /** See VirtualMachineOptions.hostTscSkew and .rdtscExiting. */
  hostTscSkew?: HostTscSkew;
  rdtscExiting?: RdtscExiting;
  /**
   * What kvm-clock read when the guest kernel set it up (arch/x86/kernel/kvmclock.c prints it as
   * "kvm-clock: using sched offset of N cycles"): how long the VM had existed — VMM setup, firmware,
   * loader — when kvmclock_init ran. The kernel enters (kvmclock_init is the model's first step) at
   * the first ns at which kvm-clock reads this value. Default: the profile's vmToKernelNs. Without
   * kvm-clock the kernel enters this long after VM creation.
   */
  kvmclockAtInitNs?: Ns;
  updateIntervalNs?: Ns;
  cpuMode?: BootGuestOptions['cpuMode'];
  trace?: TraceRecorder;
  /** The VM's name in trace sources ("vm0/vcpu0", "vm0/pit"). Default with a recorder: see traceVmName. */
  name?: string;
}

// VMs booted into one recorder without a name are numbered in boot order (vm#0, vm#1, …), so their
// events stay apart; the numbering lives with the recorder, not in a global counter.
const tracedVms = new WeakMap<TraceRecorder, number>();

/** The name a VM booted into `trace` gets when its options name none. */
function traceVmName(trace: TraceRecorder): string {
  const n = tracedVms.get(trace) ?? 0;
  tracedVms.set(trace, n + 1);
  return `vm#${n}`;
}

export class BootedVm {
  readonly vm: VirtualMachine;
  readonly kernelEntryAt: Ns;
  readonly cmdline: string;
  private g: GuestKernel | null = null;

  constructor(readonly opts: BootVmOptions) {
    const user = opts.cmdline ?? '';
    parseCmdline(user); // malformed input fails now, naming --cmdline
    this.cmdline = [opts.profile.vmmCmdline, user].filter((s) => s.trim() !== '').join(' ');
    this.vm = new VirtualMachine({
      profile: opts.profile,
      scheduler: opts.scheduler,
      ...(opts.host ? { host: opts.host } : {}),
      ...(opts.vcpus !== undefined ? { vcpus: opts.vcpus } : {}),
      ...(opts.epochNs !== undefined ? { epochNs: opts.epochNs } : {}),
      ...(opts.stealFraction !== undefined ? { stealFraction: opts.stealFraction } : {}),
      ...(opts.tscRateChange ? { tscRateChange: opts.tscRateChange } : {}),
      ...(opts.vcpuEntryIntervalNs !== undefined ? { vcpuEntryIntervalNs: opts.vcpuEntryIntervalNs } : {}),
      ...(opts.hostTscAt ? { hostTscAt: opts.hostTscAt } : {}),
      ...(opts.hostTscPlan ? { hostTscPlan: opts.hostTscPlan } : {}),
      ...(opts.hostUptimeNs !== undefined ? { hostUptimeNs: opts.hostUptimeNs } : {}),
      ...(opts.deschedule ? { deschedule: opts.deschedule } : {}),
      ...(opts.pitLostTickPolicy ? { pitLostTickPolicy: opts.pitLostTickPolicy } : {}),
      ...(opts.directOneshotTick ? { directOneshotTick: true } : {}),
      ...(opts.vcpuSchedule ? { vcpuSchedule: opts.vcpuSchedule } : {}),
      ...(opts.rtc ? { rtc: opts.rtc } : {}),
      ...(opts.hostRealtime ? { hostRealtime: opts.hostRealtime } : {}),
      ...(opts.hostRealtimeSteps ? { hostRealtimeSteps: opts.hostRealtimeSteps } : {}),
      ...(opts.tscFrequencyKhz !== undefined ? { tscFrequencyKhz: opts.tscFrequencyKhz } : {}),
      ...(opts.vmclock ? { vmclock: opts.vmclock } : {}),
      ...(opts.vmgenid ? { vmgenid: opts.vmgenid } : {}),
      ...(opts.hostTscSkew ? { hostTscSkew: opts.hostTscSkew } : {}),
      ...(opts.rdtscExiting ? { rdtscExiting: opts.rdtscExiting } : {}),
      ...(opts.trace?.on ? { trace: opts.trace, name: opts.name ?? traceVmName(opts.trace) } : {}),
    });
    this.kernelEntryAt =
      this.vm.createdAt +
      (opts.kvmclockAtInitNs !== undefined ? firstNsReading(this.vm, opts.kvmclockAtInitNs) : opts.profile.vmToKernelNs);
    const t = opts.scheduler.timer(() => {
      this.g = bootGuest({
        platform: this.vm.platform,
        kernel: opts.kernel,
        cmdline: this.cmdline,
        scheduler: opts.scheduler,
        ...(opts.updateIntervalNs !== undefined ? { updateIntervalNs: opts.updateIntervalNs } : {}),
        ...(opts.cpuMode ? { cpuMode: opts.cpuMode } : {}),
        ...(opts.trace ? { trace: opts.trace } : {}),
      });
      this.vm.devices.guestPitDisable();
    });
    t.armAt(this.kernelEntryAt);
  }

  /** The guest kernel once the scheduler has passed kernel entry. */
  get guest(): GuestKernel {
    if (!this.g) throw new Error('guest kernel not entered yet: run the scheduler past kernelEntryAt');
    return this.g;
  }

  get entered(): boolean {
    return this.g !== null;
  }
}

/**
 * ns after VM creation at which kvm-clock first reads `reading`. kvm-clock counts ns since
 * KVM_CREATE_VM, but through the TSC and a 32.32 scale, so a reading and the true time between
 * them differ by a few ns (truncation); step to the exact one.
 */
function firstNsReading(vm: VirtualMachine, reading: Ns): Ns {
  if (reading < 0n) throw new InputError(`kvm-clock reading at kvmclock_init must not be negative, got ${reading}`, 'kvmclock_at_init');
  const at = (dt: Ns): Ns | null => vm.kvmclockAt(vm.createdAt + dt);
  let dt = reading;
  if (at(dt) === null) return dt;
  for (let i = 0; i < 1000 && at(dt)! < reading; i++) dt++;
  for (let i = 0; i < 1000 && dt > 0n && at(dt - 1n)! >= reading; i++) dt--;
  return dt;
}

export function bootVm(opts: BootVmOptions): BootedVm {
  return new BootedVm(opts);
}

export interface GuestReport {
  profile: string;
  kernel: string;
  cmdline: string;
  host_tsc_khz: number;
  boot_log: string[];
  dmesg: string[];
  available_clocksource: string;
  current_clocksource: string;
  clockevent_device: string;
  broadcast_device: string;
  tick_mode: 'oneshot' | 'periodic';
  tsc_khz: number;
  tsc_unstable: boolean;
  wall_clock_source: string;
  boot_wall_clock_ns: string;
  clocksources: {
    name: string;
    rating: number;
    mult: number;
    shift: number;
    mask: string;
    max_cycles: string;
    max_idle_ns: string;
    valid_for_hres: boolean;
    watchdog: boolean;
  }[];
  watchdog: string | null;
  vdso: { clock: string; path: string; ns: number }[];
}

export function guestReport(b: BootedVm): GuestReport {
  const g = b.guest;
  return {
    profile: b.opts.profile.name,
    kernel: b.opts.kernel.name,
    cmdline: b.cmdline,
    host_tsc_khz: b.vm.host.tscKhz,
    boot_log: g.bootLog(),
    dmesg: g.dmesg(),
    available_clocksource: g.availableClocksource(),
    current_clocksource: g.currentClocksource(),
    clockevent_device: g.clockeventDevice(),
    broadcast_device: `${g.tick.broadcast?.name ?? ''}\n`,
    tick_mode: g.oneshot ? 'oneshot' : 'periodic',
    tsc_khz: g.tscKhz,
    tsc_unstable: g.tscUnstable,
    wall_clock_source: g.wallClockSource,
    boot_wall_clock_ns: String(g.bootWallNs),
    clocksources: g.core.list.map((c) => ({
      name: c.name,
      rating: c.rating,
      mult: c.mult,
      shift: c.shift,
      mask: hex(c.mask),
      max_cycles: hex(c.maxCycles),
      max_idle_ns: String(c.maxIdleNs),
      valid_for_hres: c.has(0x20),
      watchdog: g.core.watchdog === c,
    })),
    watchdog: g.core.watchdog?.name ?? null,
    vdso: g.vdso().map((v) => ({ clock: v.clock, path: v.path, ns: v.ns })),
  };
}
