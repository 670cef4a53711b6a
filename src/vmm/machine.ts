// A virtual machine as a guest sees it: the profile's CPUID and devices on top of a host whose TSC
// runs in model time, with KVM's clock semantics (src/hypervisor) behind kvmclock and steal time.
// Builds the GuestPlatform that src/guest boots on.
import type { Scheduler, Timer } from '../core/engine.ts';
import { InputError } from '../core/errors.ts';
import { NSEC_PER_SEC, type Cycles, type Ns } from '../core/time.ts';
import { FlatGuestMemory, KvmVm, LinuxHostTimekeeper, kvmclockScale, type KvmVcpu } from '../hypervisor/index.ts';
import { pvclockReadCycles } from '../core/pvclock-abi.ts';
import { u64 } from '../core/u64.ts';
import type { GuestPlatform } from '../guest/platform.ts';
import type { TraceRecorder } from '../core/trace.ts';
import { DEFAULT_HOST, type HostCpu, type MachineProfile } from './profiles.ts';
import { VmDevices, type RtcConfig } from './vm-devices.ts';

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
  /** The host's TSC now, when a world model owns the host (its oscillator, its TSC offset);
   *  otherwise the VM runs its own host TSC at tscKhz·(1+ppm). */
  hostRdtsc?: () => Cycles;
  /** QEMU's `-rtc base=…,clock=…` (qemu-* profiles); default base=utc (the epoch), clock=host. */
  rtc?: RtcConfig;
  /** The host's CLOCK_REALTIME (ns since the epoch) now, when a world model owns the host: what
   *  `-rtc base=utc,clock=host` and the other VMMs' CMOS devices read. Default: epochNs + scheduler time. */
  hostRealtime?: () => Ns;
  /** Trace recorder for KVM's and the devices' events, and the VM's name in them (default: the profile's). */
  trace?: TraceRecorder;
  name?: string;
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
  readonly host: HostCpu;
  readonly platform: GuestPlatform;
  readonly kvm: KvmVm | null = null;
  readonly vcpus: KvmVcpu[] = [];
  readonly memory = new FlatGuestMemory(0x20_0000);
  /** The profile's timer devices on the VM's port and MMIO buses; the guest's reads go through them. */
  readonly devices: VmDevices;
  readonly createdAt: Ns;
  private readonly hostTsc0: Cycles;
  private readonly hostTscAtCreate: Cycles;
  private readonly sched: Scheduler;
  private readonly entryTimer: Timer | null = null;

  constructor(readonly opts: VirtualMachineOptions) {
    this.sched = opts.scheduler;
    this.host = resolveHost(opts.host);
    const p = opts.profile;
    const nrVcpus = opts.vcpus ?? p.defaultVcpus;
    if (!Number.isInteger(nrVcpus) || nrVcpus < 1 || nrVcpus > 64)
      throw new InputError(`vCPU count must be 1…64, got ${nrVcpus}`, '--vcpus');
    this.createdAt = opts.scheduler.now;
    const uptime = opts.hostUptimeNs ?? 3600n * NSEC_PER_SEC;
    this.hostTsc0 = this.cyclesFor(uptime);
    this.hostTscAtCreate = this.hostTsc();
    const epoch = opts.epochNs ?? 1_767_225_600n * NSEC_PER_SEC; // 2026-01-01T00:00:00Z
    const stealFraction = opts.stealFraction ?? 0;
    const cpuid = p.cpuid(this.host);
    const platform: GuestPlatform = {
      cpuid,
      devices: p.devices,
      vcpus: nrVcpus,
      rdtsc: () => this.guestTsc(),
      tscTrueHz: () => this.tscTrueHz(),
      pitRateRatio: 1,
      pioReadNs: p.pioReadNs,
      mmioReadNs: p.mmioReadNs,
    };
    // The devices count the VMM's clocks (QEMU_CLOCK_VIRTUAL, or host time for the other VMMs' own
    // devices), with the RTC's time base the scenario's UTC at creation; the guest reads them by MMIO/PIO.
    const devices = new VmDevices({
      profile: p,
      scheduler: opts.scheduler,
      hostRealtime: opts.hostRealtime ?? (() => epoch + this.sched.now),
      ...(opts.rtc ? { rtc: opts.rtc } : {}),
      ...(opts.trace ? { trace: opts.trace } : {}),
      ...(opts.name !== undefined ? { name: opts.name } : {}),
    });
    this.devices = devices;
    if (devices.hpet) platform.readHpet = () => devices.readHpet();
    if (devices.pmTimerPort !== null) platform.readPmTimer = () => devices.readPmTimer();
    const ds = opts.deschedule;
    if (ds) {
      if (ds.periodNs <= 0n || ds.runNs <= 0n || ds.runNs > ds.periodNs)
        throw new InputError('deschedule needs 0 < runNs ≤ periodNs', 'deschedule');
      platform.vcpuRunning = () => (this.sched.now - this.createdAt) % ds.periodNs < ds.runNs;
      platform.nextVcpuRun = () => this.createdAt + ((this.sched.now - this.createdAt) / ds.periodNs + 1n) * ds.periodNs;
    }
    if (devices.rtc) platform.readCmos = () => devices.readCmos();
    if (p.accel === 'kvm') {
      const hostTk = new LinuxHostTimekeeper({
        tscKhz: this.host.tscKhz,
        rdtsc: () => this.hostTsc(),
        tscAtBoot: 0n,
        realtimeAtBootNs: epoch - uptime,
        constantTsc: this.host.invariantTsc,
      });
      const kvm = new KvmVm({
        host: hostTk,
        memory: this.memory,
        scheduler: opts.scheduler,
        name: opts.name ?? p.name,
        ...(opts.trace ? { trace: opts.trace } : {}),
      });
      (this as { kvm: KvmVm | null }).kvm = kvm;
      for (let i = 0; i < nrVcpus; i++) {
        this.vcpus.push(kvm.createVcpu({ runDelayNs: () => this.runDelay(stealFraction) }));
      }
      for (const v of this.vcpus) v.run(v.id);
      platform.memory = this.memory;
      platform.wrmsr = (cpu, index, value) => {
        const v = this.vcpus[cpu];
        if (!v?.setMsr(index, value)) throw new InputError(`guest WRMSR 0x${index.toString(16)} failed on vCPU ${cpu}`);
        v.run(cpu); // the exit is handled and the vCPU re-enters: pending clock/steal requests run
      };
      const interval = opts.vcpuEntryIntervalNs ?? 10_000_000n;
      const t = opts.scheduler.timer(() => {
        if (!this.vcpusPaused) for (const v of this.vcpus) v.run(v.id);
        t.armIn(interval);
      });
      t.armIn(interval);
      this.entryTimer = t;
    }
    this.platform = platform;
    // The TSC rate change happens in a scheduler event, so counters change only at events
    const ch = opts.tscRateChange;
    if (ch && ch.atNs >= this.sched.now) opts.scheduler.timer(() => this.counterEpoch++).armAt(ch.atNs);
    platform.counterEpoch = () => this.counterEpoch;
  }

  private vcpusPaused = false;
  /** GuestPlatform.counterEpoch: changes whenever the VMM changes a guest counter's rate or value. */
  private counterEpoch = 0;

  /** The VMM stopped (true) or restarted (false) the vCPU threads: paused vCPUs never enter the guest. */
  setVcpusPaused(paused: boolean): void {
    this.vcpusPaused = paused;
    this.counterEpoch++;
  }

  /** The vCPU threads' sched_info.run_delay: time spent runnable but not running. */
  private runDelay(stealFraction: number): Ns {
    const up = this.sched.now - this.createdAt;
    const ds = this.opts.deschedule;
    if (ds) {
      const off = ds.periodNs - ds.runNs;
      const inPeriod = up % ds.periodNs;
      return (up / ds.periodNs) * off + (inPeriod > ds.runNs ? inPeriod - ds.runNs : 0n);
    }
    return BigInt(Math.floor(Number(up) * stealFraction));
  }

  /** Cycles of a TSC at the host's true rate over `ns`. */
  private cyclesFor(ns: Ns): Cycles {
    const ppb = BigInt(Math.round(this.host.ppm * 1000));
    return (ns * BigInt(this.host.tscKhz) * (1_000_000_000n + ppb)) / 1_000_000_000_000_000n;
  }

  /**
   * What kvm-clock will read at scheduler time `t` (≥ now), as KVM_GET_CLOCK computes it from the
   * current master-clock snapshot (arch/x86/kvm/x86.c __get_kvmclock) — with an unscaled TSC the same
   * number a vCPU's record gives the guest (src/hypervisor/clock-pair.ts). Null when it cannot be
   * foreseen: no KVM, no master clock, or a host TSC owned by the world.
   */
  kvmclockAt(t: Ns): Ns | null {
    const kvm = this.kvm;
    if (!kvm?.useMasterClock || this.opts.hostRdtsc || t < this.sched.now) return null;
    const { shift, mul } = kvmclockScale(this.host.tscKhz);
    const rec = {
      tscTimestamp: kvm.masterCycleNow,
      systemTime: u64(kvm.masterKernelNs + kvm.kvmclockOffset),
      tscToSystemMul: mul,
      tscShift: shift,
    };
    return pvclockReadCycles(rec, this.hostTsc0 + this.cyclesFor(t));
  }

  /** The host TSC now. */
  hostTsc(): Cycles {
    return this.opts.hostRdtsc ? this.opts.hostRdtsc() : this.hostTsc0 + this.cyclesFor(this.sched.now);
  }

  tscTrueHz(): number {
    return this.host.tscKhz * 1000 * (1 + this.host.ppm / 1e6);
  }

  /** What RDTSC returns in the guest (vCPU 0). */
  guestTsc(): Cycles {
    let tsc: Cycles;
    if (this.kvm) tsc = this.vcpus[0]!.readL1Tsc();
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
    this.kvm?.destroy();
  }
}
