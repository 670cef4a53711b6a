// Booting a guest kernel's timekeeping, in the order Linux does it on x86 (init/main.c start_kernel,
// arch/x86/kernel/setup.c, time.c x86_late_time_init, the fs_initcall clocksource_done_booting and
// the device_initcall init_tsc_clocksource), driven by a Scheduler so that the TSC refinement a
// second later and the clocksource watchdog run in model time. The result is a GuestKernel: its
// boot log, sysfs texts, clocks, adjtimex, steal accounting and vDSO read paths. GuestKernel composes
// one module per mechanism: tsc-state.ts (arch/x86/kernel/tsc.c), wallclock.ts (persistent clock,
// rtc_hctosys), periodic-tick.ts (jiffies, tick_periodic), platform-timers.ts (HPET, ACPI PM timer,
// ..TIMER), runtime.ts (steal time), sysfs.ts (dmesg and sysfs texts), with clocksources.ts, watchdog.ts,
// sched-clock.ts, timekeeper.ts and clockevents.ts.
import type { Scheduler, Timer } from '../core/index.ts';
import { quietScheduler, type QuietScheduler } from '../core/index.ts';
import { NSEC_PER_SEC, type Ns, type TscPlan } from '../core/index.ts';
import type { TraceRecorder } from '../core/index.ts';
import { calibrateDelayLine, lpjFromKhz } from './calibrate-delay.ts';
import { setupTick, type TickSetup } from './clockevents.ts';
import { CLOCK_SOURCE_VALID_FOR_HRES, type Clocksource } from './clocksource.ts';
import { ClocksourceCore } from './clocksources.ts';
import { parseCmdline, type ParsedCmdline } from './cmdline.ts';
import { jiffiesClocksource, PIT_TICK_RATE, refinedJiffiesClocksource, tickNsec } from './jiffies.ts';
import type { KernelConfig } from './kernel.ts';
import { kvmclockAvailable, kvmclockInit, kvmclockVdsoMode, type KvmclockSetup } from './kvmclock.ts';
import { ADJ_SETOFFSET, type Timex, type TimexResult } from './ntp.ts';
import { PeriodicTick } from './periodic-tick.ts';
import type { GuestPlatform } from './platform.ts';
import { acpiBootLines, acpiPmClocksource, checkTimerLine, hpetClocksource, hpetLateInitLines, pmTimerUsable } from './platform-timers.ts';
import { kvmRegisterStealTime } from './runtime.ts';
import { SchedClock } from './sched-clock.ts';
import { StealAccounting, type CpuMode } from './steal.ts';
import { clockeventDeviceText, dmesgLines, type LogLine } from './sysfs.ts';
import { Timekeeper, type ClockId } from './timekeeper.ts';
import { PMTMR_TICKS_PER_SEC } from './tsc.ts';
import { TscState } from './tsc-state.ts';
import { vdsoReadCosts, type VdsoReadCost } from './vdso.ts';
import { readPersistentClock, rtcHctosys, type WallClockSource } from './wallclock.ts';
import { ClocksourceWatchdog } from './watchdog.ts';

export { STEAL_TIME_GPA } from './runtime.ts';

/** Model times of boot steps after kernel entry. Defaults: this workplace's 6.18 Firecracker guest's dmesg. */
export interface BootPhases {
  tscEarly: Ns;
  /** start_kernel's timekeeping_init(): the persistent clock is read, CLOCK_MONOTONIC starts at local_clock(). */
  timekeepingInit: Ns;
  cmdlineParse: Ns;
  acpiBoot: Ns;
  refinedJiffies: Ns;
  jiffies: Ns;
  lateTimeInit: Ns;
  doneBooting: Ns;
  deviceInitcall: Ns;
  /** late_initcall: rtc_hctosys. */
  lateInitcall: Ns;
  /** late_initcall sched_clock_init_late() (after the built-in drivers). */
  schedClockLate: Ns;
  /** tsc_refine_calibration_work runs HZ jiffies after it is first scheduled. */
  refineDelay: Ns;
}

export const DEFAULT_BOOT_PHASES: BootPhases = {
  tscEarly: 51_000n,
  // the 6.18 guest registers the jiffies clocksource from timekeeping_init (its "jiffies:" line)
  timekeepingInit: 248_153_000n,
  cmdlineParse: 60_000n,
  acpiBoot: 56_742_000n,
  refinedJiffies: 97_078_000n,
  jiffies: 248_153_000n,
  lateTimeInit: 249_607_000n,
  doneBooting: 309_322_000n,
  deviceInitcall: 379_140_000n,
  lateInitcall: 429_124_000n,
  schedClockLate: 434_462_000n,
  refineDelay: NSEC_PER_SEC,
};

export interface BootGuestOptions {
  platform: GuestPlatform;
  kernel: KernelConfig;
  cmdline?: string;
  scheduler: Scheduler;
  phases?: Partial<BootPhases>;
  /** How often update_wall_time() runs once booted (default: every tick; NOHZ idle guests wake less). */
  updateIntervalNs?: Ns;
  /** What the vCPUs are doing, for /proc/stat (default idle). */
  cpuMode?: (cpu: number) => CpuMode;
  /** Let the clocksource watchdog fast-forward quiet spans (default true; see watchdog.ts). */
  watchdogFastForward?: boolean;
  trace?: TraceRecorder;
}

export type { LogLine, WallClockSource };

export class GuestKernel {
  readonly log: LogLine[] = [];
  readonly core: ClocksourceCore;
  readonly cmdline: ParsedCmdline;
  readonly bootStart: Ns;
  timekeeper!: Timekeeper;
  tick: TickSetup = { device: null, broadcast: null, lines: [] };
  oneshot = false;
  /** arch/x86/kernel/tsc.c's state: frequencies, stability, the tsc/tsc-early clocksources, cyc2ns. */
  readonly tscState: TscState;
  kvmclock: KvmclockSetup | null = null;
  hpetEnabled = false;
  pmTimerEnabled = false;
  wallClockSource: WallClockSource = 'none';
  bootWallNs: Ns = 0n;
  /** The time rtc_hctosys set (whole seconds), when it ran. */
  hctosysNs: Ns | null = null;
  steal: StealAccounting | null = null;
  readonly watchdog: ClocksourceWatchdog;
  /** kernel/sched/clock.c state: sched_clock stability and its GTOD/raw offsets. */
  readonly schedClock: SchedClock;
  readonly tickNsec: Ns;
  private readonly jiffiesCs: Clocksource;
  private readonly refinedJiffiesCs: Clocksource;
  /** jiffies and the periodic tick until the switch to one-shot mode. */
  readonly periodicTick: PeriodicTick;
  private updateTimer: Timer | null = null;
  /** Per CPU: the jiffy up to which its process time is accounted. */
  private lastAccountedJiffies: bigint[] = [];

  constructor(readonly opts: BootGuestOptions) {
    const k = opts.kernel;
    this.cmdline = parseCmdline(opts.cmdline ?? '');
    this.bootStart = opts.scheduler.now;
    this.tickNsec = tickNsec(k.hz);
    this.core = new ClocksourceCore(
      {
        log: (l) => this.printk(l),
        changeClocksource: (cs) => {
          this.timekeeper?.changeClocksource(cs);
          this.checkOneshot();
        },
        oneshotActive: () => this.oneshot,
        clockNotify: () => this.checkOneshot(),
      },
      { override: this.cmdline.time.clocksource, watchdog: k.clocksourceWatchdog },
    );
    this.periodicTick = new PeriodicTick({
      scheduler: opts.scheduler,
      platform: opts.platform,
      hz: k.hz,
      tickNsec: this.tickNsec,
      uptimeNs: () => this.uptimeNs(),
      oneshot: () => this.oneshot,
      reinjects: () => this.tick.device?.name === 'pit',
      schedClockTick: () => this.schedClock.tick(),
      // the wired tick (issue 12): what clockevents_program_event and the idle loop look at
      ktime: (cpu) => this.timekeeper.get('monotonic', cpu === 0 ? undefined : cpu),
      tscKhz: () => this.tscKhz,
      lapicTimerPeriod: () => this.lapicTimerPeriod,
      hresValid: () => this.timekeeper.cs.has(CLOCK_SOURCE_VALID_FOR_HRES),
      idle: (cpu) => (opts.cpuMode ? opts.cpuMode(cpu) : 'idle') === 'idle',
      bits: k.bits === 32 ? 32 : 64,
      ...(opts.trace ? { trace: opts.trace } : {}),
    });
    const readJiffies = (): bigint => this.jiffies();
    this.jiffiesCs = jiffiesClocksource(k.hz, readJiffies);
    this.refinedJiffiesCs = refinedJiffiesClocksource(k.hz, PIT_TICK_RATE, readJiffies);
    this.watchdog = new ClocksourceWatchdog(
      this.core,
      opts.scheduler,
      k.hz,
      (l) => this.printk(l),
      (cs) => {
        if (this.tscState.owns(cs)) this.tscState.csMarkUnstable();
      },
      () => this.checkOneshot(),
      {
        ...(opts.watchdogFastForward !== undefined ? { fastForward: opts.watchdogFastForward } : {}),
        ...(opts.platform.counterEpoch ? { counterEpoch: () => opts.platform.counterEpoch!() } : {}),
        longIntervalSkip: k.watchdogLongIntervalSkip ?? kernelAtLeast(k.version, 6, 3),
        // read through the platform each time: the VMM's lifecycle installs these after boot
        vcpuRunning: (cpu) => !opts.platform.vcpuRunning || opts.platform.vcpuRunning(cpu),
        nextVcpuRun: (cpu) => (opts.platform.nextVcpuRun ? opts.platform.nextVcpuRun(cpu) : opts.scheduler.now),
        vcpuAlwaysRuns: (cpu) => !opts.platform.vcpuRunning || (opts.platform.vcpuAlwaysRuns?.(cpu) ?? false),
        cpus: opts.platform.vcpus,
        guestNs: () => this.timekeeper.get('monotonic'),
      },
    );
    this.schedClock = new SchedClock({
      sched: () => this.schedClockRaw(),
      ktime: () => this.timekeeper.get('monotonic'),
      printk: (l) => this.printk(l),
    });
    this.tscState = new TscState({
      platform: opts.platform,
      kernel: k,
      time: this.cmdline.time,
      scheduler: opts.scheduler,
      core: this.core,
      schedClock: this.schedClock,
      printk: (l) => this.printk(l),
      register: (cs, scale, freq) => this.register(cs, scale, freq),
      kvmclock: () => this.kvmclock,
      refineDelay: () => this.phases.refineDelay,
    });
  }

  get tscKhz(): number {
    return this.tscState.tscKhz;
  }

  get cpuKhz(): number {
    return this.tscState.cpuKhz;
  }

  get tscUnstable(): boolean {
    return this.tscState.unstable;
  }

  get tscKnownFreq(): boolean {
    return this.tscState.knownFreq;
  }

  /** X86_FEATURE_TSC_RELIABLE forced by the platform (PVM's pvm_get_tsc_khz). */
  get tscReliableCap(): boolean {
    return this.tscState.reliableCap;
  }

  get lapicTimerPeriod(): number {
    return this.tscState.lapicTimerPeriod;
  }

  /**
   * sched_clock(): kvm_sched_clock_read() once kvmclock is set up (paravirt), else
   * native_sched_clock(): the TSC through cyc2ns once tsc_enable_sched_clock() ran, before that
   * (or without a usable TSC) jiffies since boot times NSEC_PER_SEC/HZ.
   */
  schedClockRaw(): Ns {
    if (this.kvmclock) return this.kvmclock.schedClock();
    return this.tscState.nativeSchedClock() ?? this.periodicTick.ticks() * (NSEC_PER_SEC / BigInt(this.kernel.hz));
  }

  get platform(): GuestPlatform {
    return this.opts.platform;
  }

  get kernel(): KernelConfig {
    return this.opts.kernel;
  }

  /** Model ns since kernel entry. */
  uptimeNs(): Ns {
    return this.opts.scheduler.now - this.bootStart;
  }

  /** jiffies (32-bit, as the jiffies clocksource reads it): see PeriodicTick. */
  jiffies(): bigint {
    return this.periodicTick.jiffies();
  }

  /** Tick periods the guest itself skipped (side timer: dropped as still pending; a one-shot device's missed
   *  periods). Interrupts coalesced in the irqchip are the VM's count (VmDevices.timerIrqStats). */
  get ticksLost(): number {
    return this.periodicTick.ticksLost;
  }

  printk(line: string): void {
    this.log.push({ t: this.uptimeNs(), line });
    const tr = this.opts.trace;
    if (tr?.on) tr.instant(this.opts.scheduler.now, 'guest', 'printk', ['vprintk_emit'], { line });
  }

  private register(cs: Clocksource, scale: number, freq: number): void {
    this.core.register(cs, scale, freq);
    this.watchdog.start();
  }

  // ---------------------------------------------------------------- boot steps

  /** setup_arch() → kvm_init_platform → kvmclock_init, then tsc_early_init. */
  setupArch(): void {
    const p = this.platform;
    const k = this.kernel;
    const t = this.cmdline.time;
    if (p.cpuid.kvm && k.kvmGuest) this.printk(`Hypervisor detected: ${p.cpuid.pvm ? 'PVM' : 'KVM'}`); // pvm_detect wins under PVM
    if (kvmclockAvailable(p, k, t)) {
      this.kvmclock = kvmclockInit(p);
      for (const l of this.kvmclock.lines) this.printk(l);
      // kvm_sched_clock_init(): without PVCLOCK_TSC_STABLE_BIT sched_clock is not stable
      if (!this.kvmclock.stable) this.schedClock.clear();
      this.kvmclock.clocksource.vdsoClockMode = kvmclockVdsoMode(this.kvmclock, k, t);
      this.register(this.kvmclock.clocksource, 1, 1_000_000_000);
    }
    // Model convenience: the clocks start from the persistent clock at kernel entry, so that callers
    // sampling the guest before timekeeping_init (no userspace could) see the boot wall time rather
    // than 0; timekeeping_init() reads it again at its own boot step, as Linux does.
    this.timekeepingInit();
  }

  /**
   * timekeeping_init(): read the persistent clock (read_persistent_wall_and_boot_offset: the wall
   * clock, and local_clock() as the boot offset CLOCK_MONOTONIC starts from), on the jiffies
   * clocksource.
   */
  timekeepingInit(): void {
    const { wall, source } = readPersistentClock(this.platform, this.kvmclock);
    if (source !== 'none') this.wallClockSource = source;
    this.bootWallNs = wall;
    this.core.setDefault(this.jiffiesCs);
    // local_clock() before sched_clock_init() is the raw sched_clock()
    this.timekeeper = new Timekeeper(this.jiffiesCs, this.kernel.hz, wall, this.schedClockRaw());
  }

  /** tsc_early_init(). */
  tscEarlyInit(): void {
    this.tscState.earlyInit();
  }

  /** parse_args(): __setup handlers run after setup_arch (tsc=unstable, notsc). */
  parseArgs(): void {
    this.tscState.parseArgs();
  }

  /** mark_tsc_unstable(reason). */
  markTscUnstable(reason: string): void {
    this.tscState.markUnstable(reason);
  }

  /** acpi_boot_init(): the FADT's PM timer port and the HPET table (acpi_parse_fadt, acpi_parse_hpet). */
  acpiBoot(): void {
    for (const l of acpiBootLines(this.platform, this.kernel, this.cmdline.time)) this.printk(l);
  }

  /**
   * rtc_hctosys() as the rtc_cmos driver registers the RTC (CONFIG_RTC_HCTOSYS): the system time is set to
   * the CMOS clock's whole second + 0.5 s — also in guests that started from the kvmclock wall clock.
   */
  rtcHctosys(): void {
    const acpi = !!this.platform.devices.acpi && !this.cmdline.time.noacpi;
    const r = rtcHctosys(this.platform, this.kernel.rtcHctosys, acpi, this.hpetEnabled);
    if (!r) return;
    this.timekeeper.setTimeOfDay(r.ns);
    this.hctosysNs = r.ns;
    for (const l of r.lines) this.printk(l);
  }

  registerRefinedJiffies(): void {
    // apic.c prints this when it finds the CPUID bit, before tsc_init can still clear it
    const p = this.platform;
    if (p.cpuid.tscDeadlineTimer && p.devices.lapic && this.kernel.localApic && !this.cmdline.time.nolapic)
      this.printk('TSC deadline timer available');
    this.register(this.refinedJiffiesCs, 0, 0);
  }

  registerJiffies(): void {
    if (!this.core.list.includes(this.jiffiesCs)) this.register(this.jiffiesCs, 0, 0);
  }

  /** x86_late_time_init(): hpet_time_init, intr_mode_init (APIC timer), tsc_init. */
  lateTimeInit(): void {
    const p = this.platform;
    const k = this.kernel;
    const t = this.cmdline.time;
    const hpet = hpetClocksource(p, k, t);
    if (hpet) {
      this.hpetEnabled = true;
      this.register(hpet.cs, 1, hpet.hz);
    }
    this.pmTimerEnabled = pmTimerUsable(p, k, t);
    // intr_mode_select and timer_init (hpet_time_init → pit_timer_init) run before tsc_init, so
    // apic_needs_pit() sees the frequencies tsc_early_init found
    const freq = { tscKhz: this.tscKhz, cpuKhz: this.cpuKhz, lapicTimerPeriod: this.lapicTimerPeriod };
    this.tick = setupTick(p, k, t, this.hpetEnabled, this.tscKhz !== 0 && p.cpuid.tsc, freq);
    if (this.tick.device) this.periodicTick.start(this.tick.device);
    const timerLine = checkTimerLine(p, k, t, this.tick);
    if (timerLine) this.printk(timerLine);
    this.tscState.init(this.hpetEnabled, this.pmTimerEnabled);
  }

  /**
   * sched_clock_init() (start_kernel, right after late_time_init), then the scheduler tick's
   * sched_clock_tick() stamps on every jiffy boundary until sched_clock_init_late().
   */
  schedClockInit(): void {
    this.schedClock.init();
  }

  /**
   * In one-shot mode the tick is tick_sched_timer on the jiffy grid (while the CPU is busy, as it
   * is during boot); it keeps stamping sched_clock_data until sched_clock_init_late().
   */
  private startOneshotSchedTick(): void {
    const t = this.opts.scheduler.timer(() => {
      if (this.schedClock.running === 2) return;
      this.schedClock.tick();
      t.armIn(this.tickNsec);
    });
    t.armIn(this.tickNsec);
  }

  /** calibrate_delay() (start_kernel, after sched_clock_init), when asked to print its line. */
  calibrateDelay(): void {
    if (!this.kernel.printCalibrateDelay) return;
    const preset = this.kvmclock ? lpjFromKhz(this.kvmclock.tscKhz(), this.kernel.hz) : null;
    const line = calibrateDelayLine(preset, this.tscState.lpjFine || null, this.kernel.hz);
    if (line) this.printk(line);
  }

  /** sched_clock_init_late() (late_initcall). */
  schedClockInitLate(): void {
    this.schedClock.initLate();
  }

  /** clocksource_done_booting() and, in the same initcall level, the acpi_pm driver. */
  doneBooting(): void {
    this.registerJiffies();
    if (this.hpetEnabled && this.kernel.hpetCharDev) for (const l of hpetLateInitLines(this.platform.devices.hpet!)) this.printk(l);
    this.core.doneBooting();
    this.checkOneshot();
    if (this.pmTimerEnabled) this.register(acpiPmClocksource(this.platform.readPmTimer!), 1, PMTMR_TICKS_PER_SEC);
  }

  /** init_tsc_clocksource() (device_initcall). */
  initTscClocksource(): void {
    this.tscState.initClocksource(this.hpetEnabled, this.pmTimerEnabled);
  }

  /** tick_check_oneshot_change(): NOHZ or high resolution needs a one-shot device and an hres clocksource. */
  private checkOneshot(): void {
    if (this.oneshot) return;
    const t = this.cmdline.time;
    const k = this.kernel;
    const wants = (t.highres && k.highResTimers) || (t.nohz && k.noHz);
    const dev = this.tick.device;
    const cs = this.core.curr;
    if (wants && dev?.oneshot && cs?.has(CLOCK_SOURCE_VALID_FOR_HRES) && this.core.finishedBooting) {
      this.periodicTick.switchToOneshot();
      this.oneshot = true;
      if (this.schedClock.running === 1) this.startOneshotSchedTick();
    }
  }

  /** Start steal accounting and periodic timekeeping updates after boot. */
  startRuntime(): void {
    const p = this.platform;
    const stealClock = kvmRegisterStealTime(p, this.kernel, this.cmdline.time);
    this.steal = new StealAccounting(p.vcpus, this.tickNsec, stealClock);
    const j0 = this.uptimeNs() / this.tickNsec;
    this.lastAccountedJiffies = Array.from({ length: p.vcpus }, () => j0);
    const interval = this.opts.updateIntervalNs ?? this.tickNsec;
    // a wired tick runs update_wall_time and each CPU's accounting from that CPU's interrupt (periodic-tick.ts)
    if (
      this.periodicTick.startUpdates(
        interval,
        () => this.timekeeper.advance(),
        (cpu) => this.accountCpu(cpu),
      )
    )
      return;
    this.updateTimer = this.opts.scheduler.timer(() => {
      // No vCPU runs while the VM is paused or descheduled: the tick that drives update_wall_time()
      // waits for it (the accumulation then catches up in one go, as logarithmic_accumulation does).
      const p = this.platform;
      if (p.vcpuRunning && !p.vcpuRunning(0)) {
        const at = p.nextVcpuRun?.(0);
        if (at !== undefined && at > this.opts.scheduler.now) this.updateTimer!.armAt(at);
        else this.updateTimer!.armIn(interval);
        return;
      }
      this.update();
      if (!this.runQuiet(interval)) this.updateTimer!.armIn(interval);
    });
    this.updateTimer.armIn(interval);
  }

  /**
   * The next updates in a quiet span (QuietScheduler): while nothing but these updates and the VMM's
   * vCPU entries happens, run them here, one timekeeper advance per expiry at its own time, and account
   * their ticks at once (the steal clock does not move in the span: see StealAccounting.ticks). The
   * same integers as event by event; the engine counts the expiries as dispatched. True when it ran a
   * span (and re-armed the update timer).
   */
  private runQuiet(interval: Ns): boolean {
    const sched = quietScheduler(this.opts.scheduler);
    if (!sched || this.opts.cpuMode) return false;
    const now = sched.now;
    const span = this.platform.quietEntries?.(now + interval, interval);
    if (!span) return false;
    const updates = (span.until - 1n - now) / interval; // expiries strictly before span.until
    if (updates < 1n) return false;
    span.begin();
    // the clocksource's read as a formula of time (a quiet participant only reads the TSC: it holds for the span)
    const plan = this.timekeeper.quietPlan();
    const moveTo = (at: Ns) => sched.advanceTo(at);
    const due = sched.quietParticipantDue ? (before: Ns) => sched.quietParticipantDue!(before) : () => null;
    let p = due(span.until);
    let t = now + interval;
    for (let left = Number(updates); left > 0; ) {
      // the updates before the next quiet participant (the world's sampler, the NTP client's polls:
      // QuietScheduler.quietParticipantDue) — one at its time too when the participant was armed after
      // that update — counted once, so that the loop below compares no BigInts
      let c = left;
      if (p !== null) {
        const d = p.at - t;
        if (d < 0n) c = 0;
        else {
          const q = Number(d / interval);
          c = Math.min(left, d % interval !== 0n || !this.armedBefore(p.timer, p.at, interval, now) ? q + 1 : q);
        }
      }
      t = this.quietUpdates(sched, c, t, interval, plan, moveTo);
      left -= c;
      if (left > 0) {
        this.runParticipant(sched, p!, t);
        p = due(span.until);
      }
    }
    // the rest fall due at the last update's time, after it (the engine ended the span so)
    while (p !== null) {
      this.runParticipant(sched, p, null);
      p = due(span.until);
    }
    this.accountTicks();
    sched.countDispatched(Number(updates));
    span.end(() => this.updateTimer!.armIn(interval));
    return true;
  }

  /** `n` updates of a span from `t` on, every `interval`, each at its own time; returns the next one's time. */
  private quietUpdates(sched: QuietScheduler, n: number, t: Ns, interval: Ns, plan: TscPlan | null, moveTo: (at: Ns) => void): Ns {
    const tk = this.timekeeper;
    // after the first (checked) update, spanStep: no heap check per update (the span's horizon covers
    // them); Number(interval) exact below 2^53
    if (sched.spanStep && n > 1 && interval < 1n << 53n) {
      // the clocksource read by its plan: all n in the WebAssembly loop
      if (plan && tk.advanceEvery(plan, t, interval, n, moveTo)) return t + BigInt(n) * interval;
      const by = Number(interval);
      sched.advanceTo(t);
      tk.advance();
      for (let k = n - 1; k > 0; k--) {
        t += interval;
        sched.spanStep(t, by);
        tk.advance();
      }
      return t + interval;
    }
    for (let k = n; k > 0; k--, t += interval) {
      sched.advanceTo(t);
      tk.advance();
    }
    return t;
  }

  /** Where each quiet participant's pending expiry was armed in the current span: when, and whether before the update then. */
  private readonly participantArmed = new Map<Timer, { at: Ns; beforeUpdate: boolean }>();

  /**
   * Whether participant `timer`'s expiry at `t` (an update's time too) comes before that update: it was
   * armed before the update at t − interval armed the one at t. Armed before the span (at or before
   * its start, which an update began): before.
   */
  private armedBefore(timer: Timer, t: Ns, interval: Ns, spanStart: Ns): boolean {
    const a = this.participantArmed.get(timer);
    if (!a || a.at < spanStart) return true;
    const prev = t - interval;
    return a.at < prev || (a.at === prev && a.beforeUpdate);
  }

  /** Run participant `p` at its time inside a span; `nextUpdate`: the span's next update's time (null: none). */
  private runParticipant(sched: QuietScheduler, p: { timer: Timer; at: Ns }, nextUpdate: Ns | null): void {
    sched.advanceTo(p.at);
    sched.runParticipant!(p.timer);
    // armed now: before the update at this time when that update is still to come
    const beforeUpdate = nextUpdate !== null && p.at === nextUpdate;
    const a = this.participantArmed.get(p.timer);
    if (a) {
      a.at = p.at;
      a.beforeUpdate = beforeUpdate;
    } else this.participantArmed.set(p.timer, { at: p.at, beforeUpdate });
  }

  /** update_wall_time() and process accounting for the ticks since the last update. */
  update(): void {
    this.timekeeper.advance();
    this.accountTicks();
  }

  /** Process accounting for the ticks since the last update, every CPU at once (the side timer's update). */
  private accountTicks(): void {
    for (let c = 0; c < this.platform.vcpus; c++) this.accountCpu(c);
  }

  /** update_process_times on CPU `cpu`: account_process_tick for each jiffy since its last, its steal now. */
  private accountCpu(cpu: number): void {
    const now = this.uptimeNs() / this.tickNsec;
    const n = Number(now - this.lastAccountedJiffies[cpu]!);
    this.lastAccountedJiffies[cpu] = now;
    if (this.steal && n > 0) {
      const mode = this.opts.cpuMode;
      this.steal.ticks(cpu, mode ? mode(cpu) : 'idle', n);
    }
  }

  get phases(): BootPhases {
    return { ...DEFAULT_BOOT_PHASES, ...this.opts.phases };
  }

  // ---------------------------------------------------------------- what userspace sees

  bootLog(): string[] {
    return this.log.map((l) => l.line);
  }

  /** dmesg lines with "[%5lu.%06lu] " timestamps. */
  dmesg(): string[] {
    return dmesgLines(this.log);
  }

  availableClocksource(): string {
    return this.core.availableText();
  }

  currentClocksource(): string {
    return this.core.currentText();
  }

  /** /sys/devices/system/clockevents/clockevent0/current_device. */
  clockeventDevice(): string {
    return clockeventDeviceText(this.tick.device);
  }

  /** echo NAME > current_clocksource. */
  writeCurrentClocksource(name: string): void {
    this.core.writeCurrent(name);
  }

  clockGettime(id: ClockId, cpu?: number): Ns {
    return this.timekeeper.get(id, cpu);
  }

  /** adjtimex(2) / clock_adjtime(CLOCK_REALTIME): kernel/time/timekeeping.c do_adjtimex, and
   * timekeeping_inject_offset for ADJ_SETOFFSET (the step an NTP daemon makes). */
  adjtimex(txc: Timex): TimexResult {
    const tr = this.opts.trace;
    if (tr?.on) {
      const now = this.opts.scheduler.now;
      tr.instant(now, 'guest', 'do_adjtimex', ['__x64_sys_clock_adjtime'], { modes: txc.modes ?? 0 });
      if ((txc.modes ?? 0) & ADJ_SETOFFSET)
        tr.instant(now, 'guest', 'timekeeping_inject_offset', ['__x64_sys_clock_adjtime', 'do_adjtimex']);
    }
    return this.timekeeper.adjtimex(txc);
  }

  settimeofday(ns: Ns): void {
    this.timekeeper.setTimeOfDay(ns);
  }

  procStat(): string {
    return this.steal?.procStat() ?? '';
  }

  vdso(): VdsoReadCost[] {
    return this.core.curr ? vdsoReadCosts(this.core.curr, this.platform) : [];
  }
}

/**
 * Boot a guest: schedules Linux's timekeeping boot steps on the scheduler starting now and
 * returns the kernel at once; run the scheduler past `phases.deviceInitcall` (plus a second when
 * the TSC must be refined) to see the finished boot.
 */
/** Whether a uname -r style version ("6.12", "6.1.0-amd64") is at least major.minor. */
export function kernelAtLeast(version: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

export function bootGuest(opts: BootGuestOptions): GuestKernel {
  const g = new GuestKernel(opts);
  const ph = g.phases;
  const at = (dt: Ns, fn: () => void): void => {
    const timer = opts.scheduler.timer(fn);
    timer.armAt(g.bootStart + dt);
  };
  g.setupArch();
  at(ph.tscEarly, () => g.tscEarlyInit());
  at(ph.cmdlineParse, () => g.parseArgs());
  at(ph.timekeepingInit, () => g.timekeepingInit());
  at(ph.acpiBoot, () => g.acpiBoot());
  at(ph.refinedJiffies, () => g.registerRefinedJiffies());
  if (opts.kernel.jiffiesBeforeTscEarly) at(ph.jiffies, () => g.registerJiffies());
  at(ph.lateTimeInit, () => {
    g.lateTimeInit();
    g.schedClockInit();
    g.calibrateDelay();
  });
  at(ph.doneBooting, () => {
    g.doneBooting();
    g.startRuntime();
  });
  at(ph.deviceInitcall, () => g.initTscClocksource());
  at(ph.lateInitcall, () => g.rtcHctosys());
  at(ph.schedClockLate, () => g.schedClockInitLate());
  return g;
}
