// A virtual machine as a guest sees it: the profile's CPUID and devices on top of a host whose TSC
// runs in model time, with KVM's clock semantics (src/hypervisor) behind kvmclock and steal time.
// Builds the GuestPlatform that src/guest boots on.
import type { QuietScheduler, Scheduler, Timer } from '../core/index.ts';
import { InputError, Oscillator, quietScheduler, TscCounter, type TscPlan, u64, withTscAdd } from '../core/index.ts';
import { NSEC_PER_SEC, type Cycles, type Ns } from '../core/index.ts';
import {
  FlatGuestMemory,
  KVM_CLOCK_REALTIME,
  KVM_CLOCK_TSC_STABLE,
  HOST_HPET_PERIOD_FS,
  type KvmVcpu,
  KvmIoctlError,
  KvmVm,
  KVMCLOCK_SYNC_PERIOD_NS,
  kvmEmulateHypercall,
  type RdtscExiting,
  LinuxHostTimekeeper,
  MAINLINE_KVM_CLOCK,
  NO_TSC_SCALING,
  type TscScalingCaps,
  VMX_TSC_SCALING,
  defaultTscScalingRatio,
} from '../hypervisor/index.ts';
import { MSR_IA32_TSC, MSR_KVM_STEAL_TIME, MSR_KVM_SYSTEM_TIME_NEW, type PvclockVcpuTimeInfo } from '../core/index.ts';
import type { GuestPlatform, QuietEntries } from '../guest/index.ts';
import type { TraceRecorder } from '../core/index.ts';
import { DEFAULT_HOST, type HostCpu, type MachineProfile } from './profiles.ts';
import { VmDevices, type RtcConfig } from './vm-devices.ts';
import { VmclockDevice, vmclockFlavor } from './vmclock.ts';
import { VmgenidDevice, vmgenidFlavor, type VmgenidOptions } from './vmgenid.ts';

/** Where the VMClock page sits in guest memory (the last page of the model's RAM). */
export const VMCLOCK_GPA = 0x1f_f000n;
/** The longest quiet span a VM takes (1 h): see quietEntries. */
const MAX_QUIET_SPAN_NS = 3_600_000_000_000n;
/** Where the VMGenID buffer sits: the page below VMClock, at QEMU's VMGENID_GUID_OFFSET (40) into its blob. */
export const VMGENID_GPA = 0x1f_e028n;

/**
 * The host's schedule of a VM's vCPU threads: which runs on a host CPU when, and how long each has waited
 * runnable (sched_info.run_delay, what KVM's record_steal_time reports as steal). The world's CPU
 * scheduler implements it; `deschedule` is a fixed one. Queries are for t ≥ the last change, in integer ns.
 */
export interface VcpuSchedule {
  /** vCPU `cpu`'s thread runs on a host CPU at t. */
  running(cpu: number, t: Ns): boolean;
  /** The first time ≥ t at which it runs (t when it runs at t). */
  nextRun(cpu: number, t: Ns): Ns;
  /** Its thread's sched_info.run_delay at t. */
  runDelay(cpu: number, t: Ns): Ns;
  /** It runs at every instant from t until the schedule next changes (absent: it may wait). */
  alwaysRuns?(cpu: number, t: Ns): boolean;
  /** The VMM stopped (false) or restarted (true) the threads: a stopped thread sleeps and waits for nothing. */
  setRunnable(runnable: boolean): void;
}

/** `deschedule`: every vCPU thread runs `runNs` of each `periodNs` from `from` and waits runnable the rest. */
export function periodicVcpuSchedule(from: Ns, ds: { periodNs: Ns; runNs: Ns }): VcpuSchedule {
  if (ds.periodNs <= 0n || ds.runNs <= 0n || ds.runNs > ds.periodNs)
    throw new InputError('deschedule needs 0 < runNs ≤ periodNs', 'deschedule');
  const running = (t: Ns): boolean => (t - from) % ds.periodNs < ds.runNs;
  return {
    running: (_cpu, t) => running(t),
    nextRun: (_cpu, t) => (running(t) ? t : from + ((t - from) / ds.periodNs + 1n) * ds.periodNs),
    alwaysRuns: () => ds.runNs === ds.periodNs,
    runDelay: (_cpu, t) => {
      const up = t - from;
      const inPeriod = up % ds.periodNs;
      return (up / ds.periodNs) * (ds.periodNs - ds.runNs) + (inPeriod > ds.runNs ? inPeriod - ds.runNs : 0n);
    },
    setRunnable: () => {},
  };
}

export interface VirtualMachineOptions {
  profile: MachineProfile;
  host?: Partial<HostCpu>;
  scheduler: Scheduler;
  vcpus?: number;
  /** True UTC (ns since the epoch) at scheduler time 0. */
  epochNs?: Ns;
  /** How long the host has been up at scheduler time 0 (its TSC count). */
  hostUptimeNs?: Ns;
  /** Fraction of time each vCPU thread waits runnable on the host (shows up as steal). */
  stealFraction?: number;
  /** From `atNs` on, the guest-visible TSC runs `ppm` faster than calibrated (a non-invariant TSC
   *  changing rate with CPU frequency, as under TCG on such a host). */
  tscRateChange?: { atNs: Ns; ppm: number };
  /** How often vCPUs re-enter the guest (KVM handles clock/steal requests on entry). */
  vcpuEntryIntervalNs?: Ns;
  /** vCPU threads run `runNs` out of every `periodNs` (an overcommitted host); the rest is steal. */
  deschedule?: { periodNs: Ns; runNs: Ns };
  /** KVM's in-kernel PIT lost-tick policy (default reinject). */
  pitLostTickPolicy?: 'reinject' | 'discard';
  /**
   * The guest's one-shot tick (TSC-deadline after boot) runs update_wall_time at its programmed expiry instead
   * of through the wired LAPIC interrupt: exact when no vCPU ever waits for a host CPU, and what lets a VM's
   * quiet spans (the fleet fast path) apply. The boot-time periodic tick stays wired. Default: wired.
   */
  directOneshotTick?: boolean;
  /** The host's CPU scheduler: the vCPU threads it creates for this VM (takes precedence over deschedule). */
  vcpuSchedule?: (nrVcpus: number) => VcpuSchedule;
  /** The host's TSC at scheduler time t (≥ now), when a world model owns the host (its oscillator);
   *  otherwise the VM runs its own host TSC at tscKhz·(1+ppm). */
  hostTscAt?: (t: Ns) => Cycles;
  /** hostTscAt as a formula of true time while nothing but time moves (TscPlan; null: not one now). */
  hostTscPlan?: () => TscPlan | null;
  /** QEMU's `-rtc base=…,clock=…` (qemu-* profiles); default base=utc (the epoch), clock=host. */
  rtc?: RtcConfig;
  /** The host's CLOCK_REALTIME (ns since the epoch) now, when a world model owns the host: what
   *  `-rtc base=utc,clock=host` and the other VMMs' CMOS devices read. Default: epochNs + scheduler time. */
  hostRealtime?: () => Ns;
  /** Steps applied to the host's CLOCK_REALTIME so far (settimeofday on the host), as KVM's host clock sees them. */
  hostRealtimeSteps?: () => Ns;
  /** A VMClock device (QEMU `-device vmclock`, Firecracker's vmclock): see src/vmm/vmclock.ts. */
  vmclock?: { precise: boolean; esterrorNs: Ns; maxerrorNs: Ns };
  /** A VMGenID device (QEMU `-device vmgenid,guid=…`, Firecracker's): see src/vmm/vmgenid.ts. */
  vmgenid?: VmgenidOptions;
  /** QEMU `-cpu …,tsc-frequency=N`: the guest TSC rate the VMM sets with KVM_SET_TSC_KHZ (default: the host's). */
  tscFrequencyKhz?: number;
  /** Trace recorder for KVM's and the devices' events, and the VM's name in them (default: the profile's). */
  trace?: TraceRecorder;
  name?: string;
  /** The host's CPUs' TSCs are not synchronised (see HostTscSkew); vCPU i runs on host CPU i. */
  hostTscSkew?: HostTscSkew;
  /** The VMM traps every guest RDTSC (see RdtscExiting in src/hypervisor/vcpu.ts). */
  rdtscExiting?: RdtscExiting;
}

/**
 * A host whose CPUs' TSCs differ: host CPU k's TSC is CPU 0's + `cycles[k]`. Unless the host kernel
 * trusts its TSC (`tsc=reliable`, which skips check_tsc_sync_source in arch/x86/kernel/tsc_sync.c), the
 * skew fails that check at CPU bring-up: the host marks its TSC unstable and runs on the HPET, so KVM has
 * no master clock (pvclock_update_vm_gtod_copy needs a TSC host clocksource).
 */
export interface HostTscSkew {
  cycles: readonly Cycles[];
  tscReliable: boolean;
}

/** Whether the host marks its TSC unstable for this skew (any CPU differing from CPU 0, not tsc=reliable). */
export function skewMarksTscUnstable(skew: HostTscSkew | undefined): boolean {
  if (!skew || skew.tscReliable) return false;
  return skew.cycles.some((c) => c !== (skew.cycles[0] ?? 0n));
}

/** What a VMM saves of a VM's clocks to snapshot or migrate it: KVM_GET_CLOCK, each vCPU's TSC and MSRs, the TSC rate. */
export interface VmClockState {
  /** KVM_GET_CLOCK at save, TSC_STABLE cleared (KVM_SET_CLOCK rejects it). */
  clock: { clock: Ns; flags: number; realtime: Ns };
  vcpus: { tsc: Cycles; msrs: [number, bigint][] }[];
  /** KVM_GET_TSC_KHZ: the guest's TSC rate. */
  tscKhz: number;
  /** KVM_GET_CLOCK_GUEST on the boot vCPU, when the VMM asked for it and KVM gave it (else why not). */
  pvclock?: PvclockVcpuTimeInfo | { error: string };
}

/** The host a saved VM is restored on, and how the VMM restores it. */
export interface RestoreTarget {
  host: HostCpu;
  hostTscAt: (t: Ns) => Cycles;
  /** See VirtualMachineOptions.hostTscPlan. */
  hostTscPlan?: () => TscPlan | null;
  hostRealtime: () => Ns;
  hostRealtimeSteps?: () => Ns;
  /** The destination CPU scales the TSC (VMX/SVM TSC multiplier). */
  tscScaling: boolean;
  /** KVM_SET_CLOCK with KVM_CLOCK_REALTIME: KVM advances kvmclock by the realtime elapsed since the save. */
  clockRealtime: boolean;
  /** The destination's CPU scheduler, when the world schedules host CPUs: the new process's vCPU threads. */
  vcpuSchedule?: (nrVcpus: number) => VcpuSchedule;
  /**
   * vms[].clock_guest: the VMM follows the migration procedure of Documentation/virt/kvm/devices/vcpu.rst as dwmw2's
   * series v6 09/36 rewrites it — guest TSCs moved on by the host realtime elapsed, then KVM_SET_CLOCK_GUEST with the
   * saved record, falling back to KVM_SET_CLOCK with KVM_CLOCK_REALTIME — instead of the profile's own restore.
   */
  clockGuest?: boolean;
  /** The destination host's CPU TSC skew, if its TSCs are not synchronised. */
  hostTscSkew?: HostTscSkew;
}

/** What the restore did, for the event log. */
export interface RestoreOutcome {
  /** KVM_SET_TSC_KHZ failed (the VMM went on, the guest TSC runs at the destination's rate). */
  tscKhzError: string | null;
  tscCatchup: boolean;
  /** With clockGuest: 'set' when KVM_SET_CLOCK_GUEST took the saved record, else why KVM_SET_CLOCK (with REALTIME) set it. */
  clockGuest?: string;
  /** With clockGuest: the host realtime elapsed since the save, by which each guest TSC was moved on (ΔT). */
  tscAdvanceNs?: Ns;
}

/** Validate host parameters; an impossible host is an InputError naming the option. */
export function resolveHost(h: Partial<HostCpu> | undefined, where = '--host-tsc-khz'): HostCpu {
  const host = { ...DEFAULT_HOST, ...h };
  if (!Number.isInteger(host.tscKhz) || host.tscKhz <= 0)
    throw new InputError(`host TSC frequency must be a positive whole number of kHz, got ${host.tscKhz}`, where);
  if (host.tscKhz < 1000 || host.tscKhz > 100_000_000)
    throw new InputError(`host TSC frequency ${host.tscKhz} kHz is outside 1 MHz … 100 GHz`, where);
  if (!Number.isFinite(host.ppm) || Math.abs(host.ppm) > 1000)
    throw new InputError(`oscillator error ${host.ppm} ppm is outside ±1000 ppm`, 'oscillator.ppm');
  return host;
}

export class VirtualMachine {
  private currentHost: HostCpu;
  readonly platform: GuestPlatform;
  readonly kvm: KvmVm | null = null;
  readonly vcpus: KvmVcpu[] = [];
  readonly memory = new FlatGuestMemory(0x20_0000);
  /** The profile's timer devices on the VM's port and MMIO buses; the guest's reads go through them. */
  readonly devices: VmDevices;
  readonly createdAt: Ns;
  private readonly hostTsc0: Cycles;
  /** The crystal of this VM's own host when no world owns the host (opts.hostTscAt absent). */
  private readonly crystal: Oscillator;
  private readonly hostTscAtCreate: Cycles;
  private readonly sched: Scheduler;
  private readonly entryTimer: Timer | null = null;
  private entryIntervalNs = 0n;

  /** The host the VM runs on now (a migration or a restore elsewhere changes it). */
  get host(): HostCpu {
    return this.currentHost;
  }

  private hostTscAtFn: ((t: Ns) => Cycles) | null;
  private hostTscPlanFn: (() => TscPlan | null) | null;
  private hostRealtimeFn: () => Ns;
  private hostRealtimeStepsFn: () => Ns;
  private hostTscSkew: HostTscSkew | undefined;
  private readonly stealFraction: number;
  private readonly epoch: Ns;

  constructor(readonly opts: VirtualMachineOptions) {
    this.sched = opts.scheduler;
    this.currentHost = resolveHost(opts.host);
    this.hostTscAtFn = opts.hostTscAt ?? null;
    this.hostTscPlanFn = opts.hostTscPlan ?? null;
    this.hostRealtimeStepsFn = opts.hostRealtimeSteps ?? (() => 0n);
    this.hostTscSkew = opts.hostTscSkew;
    const p = opts.profile;
    const nrVcpus = opts.vcpus ?? p.defaultVcpus;
    if (!Number.isInteger(nrVcpus) || nrVcpus < 1 || nrVcpus > 64)
      throw new InputError(`vCPU count must be 1…64, got ${nrVcpus}`, '--vcpus');
    this.createdAt = opts.scheduler.now;
    const uptime = opts.hostUptimeNs ?? 3600n * NSEC_PER_SEC;
    this.crystal = new Oscillator({ ppm: this.host.ppm });
    this.hostTsc0 = this.cyclesFor(uptime);
    this.hostTscAtCreate = this.hostTsc();
    const epoch = opts.epochNs ?? 1_767_225_600n * NSEC_PER_SEC; // 2026-01-01T00:00:00Z
    this.epoch = epoch;
    this.hostRealtimeFn = opts.hostRealtime ?? (() => epoch + this.sched.now);
    this.stealFraction = opts.stealFraction ?? 0;
    // the guest sees the TSC rate the VMM sets (CPUID 0x40000010 reports it), the host's by default
    const cpuid = p.cpuid(opts.tscFrequencyKhz !== undefined ? { ...this.host, tscKhz: opts.tscFrequencyKhz } : this.host);
    const platform: GuestPlatform = {
      cpuid,
      devices: p.devices,
      vcpus: nrVcpus,
      rdtsc: (cpu?: number) => this.guestTsc(cpu),
      rdtscPlan: () => this.guestTscPlan(),
      tscTrueHz: () => this.tscTrueHz(),
      pitRateRatio: 1,
      pioReadNs: p.pioReadNs,
      mmioReadNs: p.mmioReadNs,
      ...(opts.rdtscExiting && p.accel === 'kvm'
        ? { rdtscExit: { costNs: Number(opts.rdtscExiting.exitCostNs), compensated: opts.rdtscExiting.offsetCompensation } }
        : {}),
    };
    // The devices count the VMM's clocks (QEMU_CLOCK_VIRTUAL, or host time for the other VMMs' own
    // devices), with the RTC's time base the scenario's UTC at creation; the guest reads them by MMIO/PIO.
    const devices = new VmDevices({
      profile: p,
      scheduler: opts.scheduler,
      hostRealtime: () => this.hostRealtimeFn(),
      ...(opts.rtc ? { rtc: opts.rtc } : {}),
      ...(opts.trace ? { trace: opts.trace } : {}),
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      ...(opts.pitLostTickPolicy ? { pitLostTickPolicy: opts.pitLostTickPolicy } : {}),
    });
    this.devices = devices;
    if (devices.hpet) platform.readHpet = () => devices.readHpet();
    if (devices.pmTimerPort !== null) platform.readPmTimer = () => devices.readPmTimer();
    if (opts.vcpuSchedule) {
      this.schedule = opts.vcpuSchedule(nrVcpus);
      this.worldSchedule = true;
    } else if (opts.deschedule) this.schedule = periodicVcpuSchedule(this.createdAt, opts.deschedule);
    if (this.schedule) {
      // each vCPU asks its own thread (read through this.schedule: a restore elsewhere replaces it)
      platform.vcpuRunning = (cpu) => this.schedule?.running(cpu, this.sched.now) ?? true;
      platform.nextVcpuRun = (cpu) => this.schedule?.nextRun(cpu, this.sched.now) ?? this.sched.now;
      platform.vcpuAlwaysRuns = (cpu) => {
        const s = this.schedule;
        return s ? (s.alwaysRuns?.(cpu, this.sched.now) ?? false) : true;
      };
    }
    if (devices.rtc) platform.readCmos = () => devices.readCmos();
    // --- timer interrupts (issue 12): the devices' IRQs and each vCPU's LAPIC timer reach the guest ---
    // through the profile's irqchip; vCPU threads answer through the platform hooks, read at each call
    // because the lifecycle (pauses) and the host scheduler install them after boot.
    if (opts.directOneshotTick) platform.directOneshotTick = true;
    platform.interrupts = devices.wire(
      {
        vcpus: nrVcpus,
        running: (cpu) => !this.platform.vcpuRunning || this.platform.vcpuRunning(cpu),
        nextRun: (cpu) => (this.platform.nextVcpuRun ? this.platform.nextVcpuRun(cpu) : this.sched.now),
        tscKhz: opts.tscFrequencyKhz ?? this.host.tscKhz,
        guestTsc: (cpu) => this.guestTsc(cpu),
        hvTimer: this.host.vendor === 'intel', // the VMX preemption timer; SVM has none
        enterGuest: (cpu) => this.enterBeforeInjection(cpu),
        virtualTscKhz: (cpu) => this.vcpus[cpu]?.virtualTscKhz || (opts.tscFrequencyKhz ?? this.host.tscKhz),
        hvTimerDelay: (cpu, delta) => this.hvTimerDelay(cpu, delta),
      },
      p.accel === 'kvm',
    );
    // --- end timer interrupts ---
    if (p.accel === 'kvm') {
      this.attachKvm(uptime, NO_TSC_SCALING);
      for (const v of this.vcpus) {
        if (opts.tscFrequencyKhz !== undefined) v.setTscKhz(opts.tscFrequencyKhz);
        v.run(v.id);
      }
      platform.memory = this.memory;
      platform.wrmsr = (cpu, index, value) => {
        const v = this.vcpus[cpu];
        if (!v?.setMsr(index, value)) throw new InputError(`guest WRMSR 0x${index.toString(16)} failed on vCPU ${cpu}`);
        v.run(cpu); // the exit is handled and the vCPU re-enters: pending clock/steal requests run
      };
      // KVM_HC_CLOCK_PAIRING and friends are handled in KVM itself (kvm_emulate_hypercall): every KVM VMM has them
      platform.hypercall = (cpu, nr, a0, a1) => {
        const v = this.vcpus[cpu];
        if (!v) throw new InputError(`guest hypercall ${nr} on vCPU ${cpu}, which does not exist`);
        return kvmEmulateHypercall(v, this.memory, nr, a0, a1);
      };
      const interval = opts.vcpuEntryIntervalNs ?? 10_000_000n;
      this.entryIntervalNs = interval;
      const t = opts.scheduler.timer(() => {
        if (!this.vcpusPaused) for (const v of this.vcpus) this.enterWhenRunning(v.id);
        t.armIn(interval);
      });
      t.armIn(interval);
      this.entryTimer = t;
      const q = quietScheduler(opts.scheduler);
      if (q) platform.quietEntries = (next, updateInterval) => this.quietEntries(q, next, updateInterval);
    }
    this.platform = platform;
    if (opts.vmclock) {
      const flavor = vmclockFlavor(p.name);
      if (!flavor) throw new InputError(`profile ${p.name} has no VMClock device (QEMU and Firecracker do)`, 'vmclock');
      const vc = opts.vmclock;
      this.vmclock = new VmclockDevice(
        this.memory,
        VMCLOCK_GPA,
        flavor,
        opts.scheduler,
        vc.precise
          ? {
              guestTsc: () => this.guestTsc(),
              guestTscHz: () => this.tscTrueHz(),
              utcNow: () => epoch + this.sched.now,
              esterrorNs: vc.esterrorNs,
              maxerrorNs: vc.maxerrorNs,
            }
          : null,
      );
    }
    if (opts.vmgenid) {
      const flavor = vmgenidFlavor(p.name);
      if (!flavor) throw new InputError(`profile ${p.name} has no VMGenID device (QEMU and Firecracker do)`, 'vmgenid');
      this.vmgenid = new VmgenidDevice(this.memory, VMGENID_GPA, flavor, opts.vmgenid);
    }
    // The TSC rate change happens in a scheduler event, so counters change only at events
    const ch = opts.tscRateChange;
    if (ch && ch.atNs >= this.sched.now) opts.scheduler.timer(() => this.counterEpoch++).armAt(ch.atNs);
    platform.counterEpoch = () => this.counterEpoch;
  }

  /** KVM_CREATE_VM and its vCPUs on the current host (boot, or a restore/migration destination). */
  private attachKvm(hostUptimeNs: Ns, tscScaling: TscScalingCaps): void {
    const nrVcpus = this.platform?.vcpus ?? this.opts.vcpus ?? this.opts.profile.defaultVcpus;
    const skew = this.hostTscSkew;
    const unstable = skewMarksTscUnstable(skew);
    const hostTk = new LinuxHostTimekeeper({
      tscKhz: this.host.tscKhz,
      rdtsc: () => this.hostTsc(),
      tscAtBoot: 0n,
      realtimeAtBootNs: this.epoch - hostUptimeNs,
      realtimeSteps: () => this.hostRealtimeStepsFn(),
      constantTsc: this.host.invariantTsc,
      // KVM's host REALTIME is the owner's (a world host's NTP-synced clock), read at the TSC value KVM read
      ...(this.opts.hostRealtime ? { realtimeAt: (tsc: Cycles) => this.hostRealtimeAtTsc(tsc) } : {}),
      ...(skew ? { cpuTscSkew: skew.cycles } : {}),
      ...(unstable ? { tscUnstable: true, hpet: { periodFs: HOST_HPET_PERIOD_FS } } : {}),
    });
    const kvm = new KvmVm({
      clockFeatures: this.host.kvm ?? MAINLINE_KVM_CLOCK,
      host: hostTk,
      memory: this.memory,
      scheduler: this.sched,
      name: this.opts.name ?? this.opts.profile.name,
      tscScaling,
      appliesTscOffset: !this.opts.profile.kvmPvm, // a PVM guest reads the host TSC
      ...(this.opts.trace ? { trace: this.opts.trace } : {}),
    });
    (this as { kvm: KvmVm | null }).kvm = kvm;
    this.vcpus.length = 0;
    const rdtscExiting = this.opts.rdtscExiting ? { rdtscExiting: this.opts.rdtscExiting } : {};
    for (let i = 0; i < nrVcpus; i++) this.vcpus.push(kvm.createVcpu({ runDelayNs: () => this.runDelay(i), ...rdtscExiting }));
  }

  /**
   * A guest entry of vCPU `cpu` (KVM handles its pending clock and steal requests): now when its thread
   * runs, else when the host schedules it in again (kvm_sched_in → kvm_arch_vcpu_load requests the steal
   * update, recorded on that entry) — one deferred event per vCPU, not one per slice.
   */
  enterWhenRunning(cpu: number): void {
    const s = this.schedule;
    const now = this.sched.now;
    if (!s || s.running(cpu, now)) {
      this.vcpus[cpu]?.run(cpu);
      return;
    }
    let d = this.deferredEntries[cpu];
    if (!d) {
      d = this.sched.timer(() => {
        if (!this.vcpusPaused) this.enterWhenRunning(cpu);
      });
      this.deferredEntries[cpu] = d;
    }
    d.armAt(s.nextRun(cpu, now));
  }

  /**
   * vcpu_enter_guest before an interrupt is injected: a thread scheduled in at this instant makes its
   * kvm_sched_in entry (the steal update kvm_arch_vcpu_load requests) first, so the guest's handler reads the
   * record as of its own schedule-in, whichever of the two timers the engine holds first.
   */
  private enterBeforeInjection(cpu: number): void {
    const d = this.deferredEntries[cpu];
    if (d?.pending && d.expires === this.sched.now && !this.vcpusPaused) {
      d.cancel();
      this.vcpus[cpu]?.run(cpu);
      return;
    }
    this.vcpus[cpu]?.enterGuest();
  }

  /**
   * Save the VM's clocks as a VMM does for a snapshot or a migration (the VM must be paused): KVM_GET_CLOCK
   * (TSC_STABLE cleared: KVM_SET_CLOCK rejects it), each vCPU's MSR_IA32_TSC and kvmclock/steal MSRs,
   * KVM_GET_TSC_KHZ. Null under TCG (no KVM state; QEMU's own vmstate carries its clocks).
   */
  saveClockState(opts: { clockGuest?: boolean } = {}): VmClockState | null {
    const kvm = this.kvm;
    if (!kvm) return null;
    const c = kvm.getClock();
    return {
      ...(opts.clockGuest ? { pvclock: this.ioctl(() => kvm.getClockGuest(this.vcpus[0]!)) } : {}),
      clock: { clock: c.clock, flags: c.flags & ~KVM_CLOCK_TSC_STABLE, realtime: c.realtime },
      vcpus: this.vcpus.map((v) => ({
        tsc: v.getMsr(MSR_IA32_TSC)!,
        msrs: [MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_STEAL_TIME].map((m): [number, bigint] => [m, v.getMsr(m) ?? 0n]),
      })),
      tscKhz: this.vcpus[0]!.virtualTscKhz || this.host.tscKhz,
    };
  }

  /**
   * Restore saved clocks on `target` (another host, or the same one later): a new KVM VM and vCPUs there,
   * KVM_SET_TSC_KHZ with the saved rate (errors ignored, as QEMU does on incoming migration:
   * target/i386/kvm/kvm.c kvm_arch_put_registers → kvm_arch_set_tsc_khz), host-initiated writes of
   * MSR_IA32_TSC and the kvmclock/steal MSRs (KVM_SET_MSRS), then KVM_SET_CLOCK with the saved clock,
   * with KVM_CLOCK_REALTIME when the VMM asks KVM to add the time since the save.
   */
  restoreClockState(state: VmClockState | null, target: RestoreTarget): RestoreOutcome {
    this.currentHost = target.host;
    this.hostTscAtFn = target.hostTscAt;
    this.hostTscPlanFn = target.hostTscPlan ?? null;
    this.hostRealtimeFn = target.hostRealtime;
    this.hostRealtimeStepsFn = target.hostRealtimeSteps ?? (() => 0n);
    this.hostTscSkew = target.hostTscSkew;
    this.counterEpoch++;
    if (this.worldSchedule) {
      // a restore or an incoming migration runs in a new VMM process: new vCPU threads, run_delay from 0
      const n = this.platform.vcpus;
      this.schedule = target.vcpuSchedule ? target.vcpuSchedule(n) : null;
    }
    const outcome: RestoreOutcome = { tscKhzError: null, tscCatchup: false };
    if (!state) return outcome;
    this.kvm?.destroy();
    this.attachKvm(0n, target.tscScaling ? VMX_TSC_SCALING : NO_TSC_SCALING);
    const kvm = this.kvm!;
    // The documented procedure (clockGuest) moves each guest TSC on by the host realtime elapsed since the
    // source's KVM_GET_CLOCK: ΔT = time_dst − time_src, tsc_dst = tsc_src + ΔT·freq (steps 5–7)
    let elapsed = 0n;
    if (target.clockGuest && state.clock.flags & KVM_CLOCK_REALTIME) {
      elapsed = kvm.host.realtimeNsAt(kvm.host.rdtsc()) - state.clock.realtime;
      outcome.tscAdvanceNs = elapsed;
    }
    for (const [i, v] of this.vcpus.entries()) {
      const saved = state.vcpus[i]!;
      try {
        v.setTscKhz(state.tscKhz);
      } catch (e) {
        outcome.tscKhzError = (e as Error).message;
      }
      outcome.tscCatchup ||= v.tscCatchup;
      // the procedure writes KVM_VCPU_TSC_OFFSET = tsc_dst − scaled host TSC; at one instant the host write of
      // MSR_IA32_TSC = tsc_dst computes the same offset (kvm_synchronize_tsc)
      v.setMsr(MSR_IA32_TSC, u64(saved.tsc + (elapsed * BigInt(state.tscKhz)) / 1_000_000n), true);
      for (const [msr, value] of saved.msrs) if (value !== 0n) v.setMsr(msr, value, true);
    }
    if (!target.clockGuest) {
      const flags = target.clockRealtime ? state.clock.flags & KVM_CLOCK_REALTIME : 0;
      kvm.setClock({ clock: state.clock.clock, flags, realtime: state.clock.realtime });
      return outcome;
    }
    // steps 8–9: KVM_SET_CLOCK_GUEST on the boot vCPU with the saved record; when it is missing or fails,
    // KVM_SET_CLOCK with KVM_CLOCK_REALTIME
    const record = state.pvclock;
    const r = !record
      ? { error: 'no record was saved' }
      : 'error' in record
        ? record
        : this.ioctl(() => kvm.setClockGuest(this.vcpus[0]!, record));
    if (r && 'error' in r) {
      outcome.clockGuest = r.error;
      kvm.setClock({ clock: state.clock.clock, flags: state.clock.flags & KVM_CLOCK_REALTIME, realtime: state.clock.realtime });
    } else outcome.clockGuest = 'set';
    return outcome;
  }

  /** Run a KVM ioctl the VMM tolerates failing: its result, or the failure as { error }. */
  private ioctl<T>(call: () => T): T | { error: string } {
    try {
      return call();
    } catch (e) {
      if (e instanceof KvmIoctlError) return { error: e.message };
      throw e;
    }
  }

  /** The VMClock device, when the VM has one. */
  readonly vmclock: VmclockDevice | null = null;
  /** The VMGenID device, when the VM has one. */
  readonly vmgenid: VmgenidDevice | null = null;

  private vcpusPaused = false;
  /** GuestPlatform.counterEpoch: changes whenever the VMM changes a guest counter's rate or value. */
  private counterEpoch = 0;

  /** The VMM stopped (true) or restarted (false) the vCPU threads: paused vCPUs never enter the guest. */
  setVcpusPaused(paused: boolean): void {
    this.vcpusPaused = paused;
    this.schedule?.setRunnable(!paused); // QEMU's paused vCPU threads sleep on a condition variable
    this.counterEpoch++;
    if (!paused) this.devices.kickVcpus(); // timer interrupts that waited for the vCPUs are taken now
  }

  /**
   * The entry timer in a quiet span (GuestPlatform.quietEntries). Its expiries can be run after the
   * fact only when each would do nothing the guest's updates read: no KVM request pending (an entry
   * then only re-records steal time, unchanged without run delay), vCPU threads that never wait, one
   * host TSC, nothing traced.
   * Its period must equal the guest's. When the two fall due together, their order (insertion order in
   * the engine) stays the one they have now, so the span re-arms them in it.
   */
  private quietEntries(q: QuietScheduler, next: Ns, updateInterval: Ns): QuietEntries | null {
    const t = this.entryTimer;
    const I = this.entryIntervalNs;
    const e0 = t?.expires ?? null;
    const start = this.sched.now;
    if (!t || e0 === null || this.vcpusPaused || updateInterval !== I) return null;
    // a thread that waits (a host CPU schedule, deschedule, steal) or a skewed host: event by event
    if (this.stealFraction !== 0 || this.schedule || this.hostTscSkew || this.kvm?.trace.on) return null;
    if (!this.vcpus.every((v) => v.quietEntry())) return null;
    // at most MAX_QUIET_SPAN_NS: the horizon walks every participant expiry up to the span's end, so a
    // span that must be declined (and asked for again at the next update) costs a bounded walk
    let cap = next + MAX_QUIET_SPAN_NS;
    for (;;) {
      const until = q.quietHorizon([t], { next, periodNs: I }, cap); // the guest runs quiet participants inside
      if (until === null || until <= next) return null;
      const fit = this.clockSyncsFit(e0, I, until);
      if (fit === true) return new QuietEntrySpan(this, q, t, I, e0, start, until, this.kvm?.kvmclockUpdates ?? 0);
      // a span that ends earlier may fit (before the sync or update it cannot take)
      if (fit === null || fit >= until) return null;
      cap = fit;
    }
  }

  /**
   * Whether KVM's periodic kvmclock sync (kvmclock_sync_fn → kvmclock_update_fn: KVM_REQ_CLOCK_UPDATE on
   * every vCPU, arch/x86/kvm/x86.c), run inside the span as a quiet participant, can be followed by the
   * entries after the fact: each sync before `until` is handled by the first entry after it
   * (kvm_guest_time_update), which must lie in the span and not be its last (whose exit sets
   * last_guest_tsc); with the master clock that update reads no time, so it can run at the span's end.
   * An update work already pending (a global clock update's 100 ms) is left to run event by event.
   * True: they fit; a time: a span that ends there may (before the pending update, or the last sync);
   * null: no span.
   */
  private clockSyncsFit(e0: Ns, I: Ns, until: Ns): true | Ns | null {
    const kvm = this.kvm;
    if (!kvm) return true;
    const u = kvm.kvmclockUpdateAt;
    if (u !== null && u < until) return u; // a span that ends before it
    const s0 = kvm.kvmclockSyncAt;
    if (s0 === null || s0 >= until) return true;
    if (!kvm.useMasterClock || this.vcpus.some((v) => v.tscCatchup) || I >= KVMCLOCK_SYNC_PERIOD_NS) return null;
    const sLast = s0 + ((until - 1n - s0) / KVMCLOCK_SYNC_PERIOD_NS) * KVMCLOCK_SYNC_PERIOD_NS;
    const last = e0 + ((until - 1n - e0) / I) * I; // the span's last entry
    const first = sLast < e0 ? e0 : e0 + ((sLast - e0) / I + 1n) * I; // the first entry after it
    return first < last ? true : sLast; // else a span that ends before the last sync
  }

  /**
   * QuietEntrySpan.end: every entry before `until` (e0 < next < until) — those after the guest's last
   * update too: nothing between that update and `until` can see them before they would have run.
   */
  endQuietEntries(q: QuietScheduler, t: Timer, I: Ns, e0: Ns, start: Ns, until: Ns, clockUpdates0: number, rearmUpdates: () => void): void {
    const n = (until - 1n - e0) / I + 1n;
    const last = e0 + (n - 1n) * I;
    // kvmclock syncs run in the span (clockSyncsFit): the first round handles the pending
    // KVM_REQ_CLOCK_UPDATE, each later sync's entry rewrites the same record once more (version + 2)
    const syncs = (this.kvm?.kvmclockUpdates ?? 0) - clockUpdates0;
    for (const v of this.vcpus) {
      v.runRepeated(Number(n), this.hostTscAt(last));
      for (let k = 1; k < syncs; k++) v.guestTimeUpdate();
    }
    q.countDispatched(Number(n));
    // Re-arm in the order the last expiries would have: the later one last; on a tie the order
    // they fall due in, which stays the one at the span's start (an entry still due then runs after).
    const now = this.sched.now;
    const updatesFirst = last > now || (last === now && e0 === start);
    if (updatesFirst) rearmUpdates();
    t.armAt(last + I);
    if (!updatesFirst) rearmUpdates();
  }

  /** vCPU `cpu`'s thread's sched_info.run_delay now: time spent runnable but not running. */
  runDelay(cpu: number): Ns {
    if (this.schedule) return this.schedule.runDelay(cpu, this.sched.now);
    if (this.stealFraction === 0) return 0n; // the product below is 0 (or −0): no conversions per entry
    return BigInt(Math.floor(Number(this.sched.now - this.createdAt) * this.stealFraction));
  }

  /** The host's schedule of the vCPU threads (null: they always run). */
  private schedule: VcpuSchedule | null = null;
  /** The schedule came from the world's host CPUs (a restore takes the destination's). */
  private worldSchedule = false;
  private readonly deferredEntries: Timer[] = [];

  /** Cycles of this VM's own host TSC (no world) over `ns`: the one host TSC model of src/core/oscillator.ts. */
  private cyclesFor(ns: Ns): Cycles {
    return this.ownCounter().cyclesAt(this.crystal.phaseAt(ns));
  }
  private ownCounter(): TscCounter {
    let c = this.ownTsc;
    if (c === null || this.ownTscKhz !== this.host.tscKhz) {
      c = this.ownTsc = new TscCounter(BigInt(this.host.tscKhz));
      this.ownTscKhz = this.host.tscKhz;
    }
    return c;
  }
  private ownTsc: TscCounter | null = null;
  private ownTscKhz = 0;

  /**
   * What kvm-clock will read at scheduler time `t` (≥ now), as KVM_GET_CLOCK computes it from the
   * current master-clock snapshot (arch/x86/kvm/x86.c __get_kvmclock) — with an unscaled TSC the same
   * number a vCPU's record gives the guest (src/hypervisor/clock-pair.ts). Null when it cannot be
   * foreseen: no KVM or no master clock. A world host's TSC is foreseen at its rate now (a crystal
   * wander step before t would move the answer by its share).
   */
  kvmclockAt(t: Ns): Ns | null {
    const kvm = this.kvm;
    if (!kvm?.useMasterClock || t < this.sched.now) return null;
    return kvm.masterClockAt(this.hostTscAt(t));
  }

  /**
   * The owner's host CLOCK_REALTIME at host TSC `tsc`: REALTIME now, moved by the TSC cycles between `tsc`
   * and now at the nominal rate (KVM reads both from one rdtsc, so in the model the two are the same instant).
   */
  private hostRealtimeAtTsc(tsc: Cycles): Ns {
    return this.hostRealtimeFn() + ((tsc - this.hostTsc()) * 1_000_000n) / BigInt(this.host.tscKhz);
  }

  /** hostTscAt as a TscPlan (null: not one now). */
  private hostTscPlan(): TscPlan | null {
    if (!this.hostTscAtFn) return this.crystal.tscPlan(this.ownCounter(), this.hostTsc0);
    return this.hostTscPlanFn ? this.hostTscPlanFn() : null;
  }

  /**
   * guestTsc(0) as a TscPlan while nothing but time moves (null: not one): KVM's vCPU 0 reads the host
   * TSC plus its offset (KvmVcpu.tscPlan); TCG counts the host TSC from reset, minus its stops.
   */
  guestTscPlan(): TscPlan | null {
    if (this.opts.tscRateChange || this.hostTscSkew) return null; // skewed host CPUs: each reads its own
    if (this.kvm) return this.vcpus[0]!.tscPlan(this.hostTscPlan());
    if (this.ticksStoppedAt !== null) return null;
    return withTscAdd(this.hostTscPlan(), -this.hostTscAtCreate - this.ticksStoppedCycles);
  }

  /** The host TSC now. */
  hostTsc(): Cycles {
    return this.hostTscAt(this.sched.now);
  }

  /** The host TSC at scheduler time t (≥ now): the world's host, or this VM's own at tscKhz·(1+ppm). */
  private hostTscAt(t: Ns): Cycles {
    return this.hostTscAtFn ? this.hostTscAtFn(t) : this.hostTsc0 + this.cyclesFor(t);
  }

  tscTrueHz(): number {
    return this.host.tscKhz * 1000 * (1 + this.host.ppm / 1e6);
  }

  /**
   * vmx_set_hv_timer (arch/x86/kvm/vmx/vmx.c): a guest TSC delta becomes host cycles through the l1 scaling
   * ratio (u64_shl_div_u64, truncating), which the VMX preemption timer counts at the host TSC's nominal rate
   * (its 2^cpu_preemption_timer_multi granularity left out). Null when that is the software timer's own
   * conversion (no ratio, virtual_tsc_khz = the host's): the hv timer then converts like start_sw_tscdeadline.
   */
  private hvTimerDelay(cpu: number, deltaTsc: Cycles): Ns | null {
    const v = this.vcpus[cpu] ?? this.vcpus[0];
    const kvm = this.kvm;
    if (!v || !kvm) return null;
    const caps = kvm.tscScaling;
    const unscaled = v.l1TscScalingRatio === defaultTscScalingRatio(caps);
    const khz = BigInt(this.host.tscKhz);
    if (unscaled && v.virtualTscKhz === this.host.tscKhz) return null;
    const hostCycles = unscaled ? deltaTsc : (deltaTsc << BigInt(caps.fracBits)) / v.l1TscScalingRatio;
    return (hostCycles * 1_000_000n) / khz;
  }

  /** What RDTSC returns in the guest on vCPU `cpu` (each vCPU has its own TSC offset and host CPU). */
  guestTsc(cpu = 0): Cycles {
    let tsc: Cycles;
    if (this.kvm) tsc = (this.vcpus[cpu] ?? this.vcpus[0]!).guestRdtsc();
    else tsc = (this.ticksStoppedAt ?? this.hostTsc()) - this.hostTscAtCreate - this.ticksStoppedCycles; // TCG: host TSC rate, counting from reset, minus stops
    const ch = this.opts.tscRateChange;
    if (ch && this.sched.now > ch.atNs) {
      const extra = ((this.sched.now - ch.atNs) * BigInt(this.host.tscKhz) * BigInt(Math.round(ch.ppm * 1000))) / 1_000_000_000_000_000n;
      tsc += extra;
    }
    return tsc;
  }

  /**
   * The VM stopped (false) or runs again (true), as QEMU's vm_state_change notifiers see it: for the
   * qemu-* device set QEMU_CLOCK_VIRTUAL stops, so HPET, PM timer, PIT and a clock=vm RTC stand still.
   */
  vmStateChange(running: boolean): void {
    this.devices.vmStateChange(running);
    if (!this.kvm) {
      // TCG: cpu_disable_ticks/cpu_enable_ticks (softmmu/cpu-timers.c) freeze cpu_get_ticks(), which
      // helper_rdtsc returns: the guest TSC stands still while the VM is stopped (under KVM it runs on).
      const now = this.hostTsc();
      if (!running && this.ticksStoppedAt === null) this.ticksStoppedAt = now;
      else if (running && this.ticksStoppedAt !== null) {
        this.ticksStoppedCycles += now - this.ticksStoppedAt;
        this.ticksStoppedAt = null;
      }
    }
    this.counterEpoch++; // HPET, PM timer (and the TCG TSC) change rate
  }

  private ticksStoppedAt: Cycles | null = null;
  private ticksStoppedCycles: Cycles = 0n;

  destroy(): void {
    this.entryTimer?.cancel();
    for (const d of this.deferredEntries) d.cancel();
    this.schedule?.setRunnable(false); // the VMM's threads exit: the host's CPUs go to the others
    this.kvm?.destroy();
  }

  /** The run is over and nothing reads this VM again: its RAM goes to the next VM (FlatGuestMemory.recycle). */
  releaseRam(): void {
    this.memory.recycle();
  }
}

/**
 * The VMM's side of a guest's quiet span (GuestPlatform.quietEntries): a plain object with methods
 * rather than closures made per span.
 */
class QuietEntrySpan implements QuietEntries {
  constructor(
    private readonly vm: VirtualMachine,
    private readonly q: QuietScheduler,
    private readonly timer: Timer,
    private readonly intervalNs: Ns,
    private readonly e0: Ns,
    private readonly start: Ns,
    readonly until: Ns,
    private readonly clockUpdates0: number,
  ) {}

  begin(): void {
    this.timer.cancel();
  }

  end(rearmUpdates: () => void): void {
    this.vm.endQuietEntries(this.q, this.timer, this.intervalNs, this.e0, this.start, this.until, this.clockUpdates0, rearmUpdates);
  }
}
