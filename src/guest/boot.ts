// Booting a guest kernel's timekeeping, in the order Linux does it on x86 (init/main.c start_kernel,
// arch/x86/kernel/setup.c, time.c x86_late_time_init, the fs_initcall clocksource_done_booting and
// the device_initcall init_tsc_clocksource), driven by a Scheduler so that the TSC refinement a
// second later and the clocksource watchdog run in model time. The result is a GuestKernel: its
// boot log, sysfs texts, clocks, adjtimex, steal accounting and vDSO read paths.
import type { Scheduler, Timer } from '../core/engine.ts';
import type { TraceRecorder } from '../core/trace.ts';
import { NSEC_PER_SEC, type Ns } from '../core/time.ts';
import { CLOCK_SOURCE_MUST_VERIFY, CLOCK_SOURCE_VALID_FOR_HRES, type Clocksource } from './clocksource.ts';
import { ClocksourceCore } from './clocksources.ts';
import { parseCmdline, type ParsedCmdline } from './cmdline.ts';
import { setupTick, type TickSetup } from './clockevents.ts';
import { jiffiesClocksource, PIT_TICK_RATE, refinedJiffiesClocksource, tickNsec } from './jiffies.ts';
import type { KernelConfig } from './kernel.ts';
import { kvmclockAvailable, kvmclockInit, kvmclockVdsoMode, type KvmclockSetup } from './kvmclock.ts';
import type { GuestPlatform } from './platform.ts';
import { StealAccounting, kvmStealClock, type CpuMode } from './steal.ts';
import { Timekeeper, type ClockId } from './timekeeper.ts';
import type { Timex, TimexResult } from './ntp.ts';
import {
  cpuKhzFromCpuid,
  mhz,
  nativeCalibrateTsc,
  pitHpetPtimerCalibrateCpu,
  PMTMR_TICKS_PER_SEC,
  quickPitCalibrate,
  refineCalibration,
  tscClocksource,
  tscEarlyClocksource,
  pvmGetTscKhz,
} from './tsc.ts';
import { Clocksource as CS, CLOCK_SOURCE_IS_CONTINUOUS } from './clocksource.ts';
import { clocksourceMask } from '../core/u64.ts';
import { vdsoReadCosts, type VdsoReadCost } from './vdso.ts';
import { decodeStealTime, KVM_FEATURE_STEAL_TIME, KVM_STEAL_TIME_SIZE, MSR_KVM_STEAL_TIME } from '../core/pvclock-abi.ts';

/** Where this model's guest kernel places the per-CPU steal-time records. */
export const STEAL_TIME_GPA = 0x10_2000n;
import { ClocksourceWatchdog } from './watchdog.ts';
import { SchedClock } from './sched-clock.ts';
import { clocksCalcMultShift, mulU64U32Shr, u64 } from '../core/u64.ts';

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

export interface LogLine {
  /** ns since kernel entry (the dmesg timestamp). */
  t: Ns;
  line: string;
}

export type WallClockSource = 'kvmclock' | 'cmos' | 'none';

export class GuestKernel {
  readonly log: LogLine[] = [];
  readonly core: ClocksourceCore;
  readonly cmdline: ParsedCmdline;
  readonly bootStart: Ns;
  timekeeper!: Timekeeper;
  tick: TickSetup = { device: null, broadcast: null, lines: [] };
  oneshot = false;
  tscKhz = 0;
  cpuKhz = 0;
  tscUnstable = false;
  tscKnownFreq = false;
  /** X86_FEATURE_TSC_RELIABLE forced by the platform (PVM's pvm_get_tsc_khz). */
  tscReliableCap = false;
  /** lapic_timer_period known without calibration (CPUID 0x15 crystal), ticks per jiffy; 0 if not. */
  lapicTimerPeriod = 0;
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
  /** cyc2ns data of the native TSC sched_clock (arch/x86/kernel/tsc.c), once tsc_enable_sched_clock ran. */
  private cyc2ns: { mul: number; shift: number; offset: bigint } | null = null;
  private tscEarly: Clocksource | null = null;
  private tsc: Clocksource | null = null;
  private readonly jiffiesCs: Clocksource;
  private readonly refinedJiffiesCs: Clocksource;
  private updateTimer: Timer | null = null;
  private periodicTimer: Timer | null = null;
  private deliveryTimer: Timer | null = null;
  private ticksHandled = 0n;
  private pendingTicks = 0n;
  private oneshotBase: { ticks: bigint; t: Ns } | null = null;
  /** Periodic-tick interrupts dropped because one was still pending (LAPIC timer coalescing). */
  ticksLost = 0;
  private lastAccountedJiffies = 0n;

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
    const readJiffies = (): bigint => this.jiffies();
    this.jiffiesCs = jiffiesClocksource(k.hz, readJiffies);
    this.refinedJiffiesCs = refinedJiffiesClocksource(k.hz, PIT_TICK_RATE, readJiffies);
    this.watchdog = new ClocksourceWatchdog(
      this.core,
      opts.scheduler,
      k.hz,
      (l) => this.printk(l),
      (cs) => {
        if (cs === this.tsc || cs === this.tscEarly) this.tscCsMarkUnstable();
      },
      () => this.checkOneshot(),
      {
        ...(opts.watchdogFastForward !== undefined ? { fastForward: opts.watchdogFastForward } : {}),
        ...(opts.platform.counterEpoch ? { counterEpoch: () => opts.platform.counterEpoch!() } : {}),
        longIntervalSkip: k.watchdogLongIntervalSkip ?? kernelAtLeast(k.version, 6, 3),
        // read through the platform each time: the VMM's lifecycle installs these after boot
        vcpuRunning: () => !opts.platform.vcpuRunning || opts.platform.vcpuRunning(0),
        nextVcpuRun: () => (opts.platform.nextVcpuRun ? opts.platform.nextVcpuRun(0) : opts.scheduler.now),
      },
    );
    this.schedClock = new SchedClock({
      sched: () => this.schedClockRaw(),
      ktime: () => this.timekeeper.get('monotonic'),
      printk: (l) => this.printk(l),
    });
  }

  /**
   * sched_clock(): kvm_sched_clock_read() once kvmclock is set up (paravirt), else
   * native_sched_clock(): the TSC through cyc2ns once tsc_enable_sched_clock() ran, before that
   * (or without a usable TSC) jiffies since boot times NSEC_PER_SEC/HZ.
   */
  schedClockRaw(): Ns {
    if (this.kvmclock) return this.kvmclock.schedClock();
    const c = this.cyc2ns;
    if (c) return u64(mulU64U32Shr(this.platform.rdtsc(), c.mul, c.shift) + c.offset);
    return this.jiffiesTicks() * (NSEC_PER_SEC / BigInt(this.kernel.hz));
  }

  /** __set_cyc2ns_scale(): new mult/shift for `khz`, offset chosen so sched_clock continues. */
  private setCyc2nsScale(khz: number): void {
    const tsc = this.platform.rdtsc();
    const c = this.cyc2ns;
    const nsNow = c ? u64(mulU64U32Shr(tsc, c.mul, c.shift) + c.offset) : 0n; // zeroed data reads 0
    const { mult, shift } = clocksCalcMultShift(khz, 1_000_000, 0);
    this.cyc2ns = { mul: mult, shift, offset: u64(nsNow - mulU64U32Shr(tsc, mult, shift)) };
  }

  /** using_native_sched_clock(): the paravirt sched_clock was not replaced (no kvmclock). */
  private usingNativeSchedClock(): boolean {
    return this.kvmclock === null;
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

  /**
   * jiffies (32-bit, as the jiffies clocksource reads it): INITIAL_JIFFIES plus ticks handled. With a
   * periodic tick each handled interrupt is one jiffy (tick_periodic → do_timer(1)), so ticks lost
   * while the vCPU was descheduled are lost jiffies; once the tick is one-shot, jiffies follow
   * ktime (tick_do_update_jiffies64).
   */
  jiffies(): bigint {
    const initial = BigInt.asUintN(32, BigInt(-300 * this.kernel.hz));
    let ticks: bigint;
    if (this.oneshotBase) ticks = this.oneshotBase.ticks + (this.uptimeNs() - this.oneshotBase.t) / this.tickNsec;
    else ticks = this.ticksHandled; // no tick device before x86_late_time_init: no timer interrupt, jiffies stay
    return BigInt.asUintN(32, initial + ticks);
  }

  /**
   * Start the periodic tick (tick_handle_periodic) when the first clockevent device registers: on
   * x86 that is x86_late_time_init (hpet_time_init / pit_timer_init, then the local APIC timer);
   * until then no timer interrupt arrives and jiffies do not move.
   */
  startPeriodicTick(): void {
    this.periodicTimer = this.opts.scheduler.timer(() => this.periodicTick());
    this.periodicTimer.armIn(this.tickNsec);
  }

  /**
   * One expiry of the periodic timer. While vCPU 0 is descheduled the interrupt waits: KVM's PIT in
   * reinject mode counts every missed tick and delivers them one per EOI afterwards (i8254.c
   * pit_timer_fn/kvm_pit_ack_irq), while the LAPIC timer drops an expiry that finds one still
   * pending (lapic.c apic_timer_expired): those jiffies are lost.
   */
  private periodicTick(): void {
    if (this.oneshot) return;
    this.periodicTimer!.armIn(this.tickNsec);
    const p = this.platform;
    if (p.vcpuRunning && !p.vcpuRunning(0)) {
      const reinject = this.tick.device?.name === 'pit';
      if (this.pendingTicks === 0n || reinject) this.pendingTicks++;
      else this.ticksLost++;
      if (!this.deliveryTimer)
        this.deliveryTimer = this.opts.scheduler.timer(() => {
          this.deliverPending();
          this.schedClock.tick();
        });
      if (!this.deliveryTimer.pending && p.nextVcpuRun) this.deliveryTimer.armAt(p.nextVcpuRun(0));
      return;
    }
    this.deliverPending();
    this.ticksHandled++;
    // tick_periodic → update_process_times → sched_tick → sched_clock_tick
    this.schedClock.tick();
  }

  private deliverPending(): void {
    this.ticksHandled += this.pendingTicks;
    this.pendingTicks = 0n;
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
    const p = this.platform;
    let wall = 0n;
    if (this.kvmclock) {
      wall = this.kvmclock.wallclock();
      this.wallClockSource = 'kvmclock';
    } else if (p.devices.rtc && p.readCmos) {
      // mach_get_cmos_time → mc146818_get_time: waits out UIP, whole seconds only
      const r = p.readCmos();
      wall = r.seconds * NSEC_PER_SEC;
      this.wallClockSource = 'cmos';
    }
    this.bootWallNs = wall;
    this.core.setDefault(this.jiffiesCs);
    // local_clock() before sched_clock_init() is the raw sched_clock()
    this.timekeeper = new Timekeeper(this.jiffiesCs, this.kernel.hz, wall, this.schedClockRaw());
  }

  tscEarlyInit(): void {
    const p = this.platform;
    const t = this.cmdline.time;
    if (!p.cpuid.tsc) return;
    if (this.kvmclock) {
      // x86_platform.calibrate_tsc/calibrate_cpu = kvm_get_tsc_khz; sets X86_FEATURE_TSC_KNOWN_FREQ
      this.cpuKhz = this.kvmclock.tscKhz();
      this.tscKhz = t.tscEarlyKhz || this.cpuKhz;
      this.tscKnownFreq = true;
    }
    const pvm = this.kernel.kvmGuest ? pvmGetTscKhz(p) : null;
    if (pvm) {
      // the PVM platform init points calibrate_tsc/calibrate_cpu at pvm_get_tsc_khz (src/guest/tsc.ts)
      this.cpuKhz = pvm.khz;
      this.tscKhz = t.tscEarlyKhz || pvm.khz;
      this.tscKnownFreq = true;
      this.tscReliableCap = pvm.reliable;
    } else if (!this.kvmclock) {
      // native_calibrate_cpu_early: CPUID 0x16, else the quick PIT calibration
      let cpu = cpuKhzFromCpuid(p);
      if (!cpu) {
        const q = quickPitCalibrate(p);
        for (const l of q.lines) this.printk(l);
        cpu = q.khz;
      }
      const nt = nativeCalibrateTsc(p, this.kernel.hz);
      this.tscKnownFreq = nt.knownFreq;
      this.lapicTimerPeriod = nt.lapicTimerPeriod;
      this.cpuKhz = cpu;
      this.tscKhz = t.tscEarlyKhz || nt.khz;
    }
    // tsc_early_init(): tsc_enable_sched_clock() once the frequencies are known
    if (this.combineFrequencies()) this.setCyc2nsScale(this.tscKhz);
  }

  /** The tail of determine_cpu_tsc_frequencies(). */
  private combineFrequencies(): boolean {
    if (this.tscKhz === 0) this.tscKhz = this.cpuKhz;
    else if (Math.abs(this.cpuKhz - this.tscKhz) * 10 > this.tscKhz) this.cpuKhz = this.tscKhz;
    if (this.tscKhz === 0) return false;
    this.printk(`tsc: Detected ${mhz(this.cpuKhz)} MHz processor`);
    if (this.cpuKhz !== this.tscKhz) this.printk(`tsc: Detected ${mhz(this.tscKhz)} MHz TSC`);
    return true;
  }

  /** parse_args(): __setup handlers run after setup_arch (tsc=unstable, notsc). */
  parseArgs(): void {
    const t = this.cmdline.time;
    if (t.tscUnstable) this.markTscUnstable('boot parameter');
    if (t.notsc) this.markTscUnstable('boot parameter notsc');
  }

  /** mark_tsc_unstable(reason). */
  markTscUnstable(reason: string): void {
    if (this.tscUnstable) return;
    this.tscUnstable = true;
    if (this.usingNativeSchedClock()) this.schedClock.clear();
    this.printk(`tsc: Marking TSC unstable due to ${reason}`);
    for (const cs of [this.tscEarly, this.tsc]) if (cs && this.core.list.includes(cs)) this.core.markUnstable(cs);
  }

  /** tsc_cs_mark_unstable(): the watchdog's verdict. */
  private tscCsMarkUnstable(): void {
    if (this.tscUnstable) return;
    this.tscUnstable = true;
    if (this.usingNativeSchedClock()) this.schedClock.clear();
    this.printk('tsc: Marking TSC unstable due to clocksource watchdog');
  }

  /** acpi_boot_init(): the FADT's PM timer port and the HPET table (acpi_parse_fadt, acpi_parse_hpet). */
  acpiBoot(): void {
    const p = this.platform;
    const k = this.kernel;
    if (!p.devices.acpi || this.cmdline.time.noacpi) return;
    if (p.devices.acpi.pmTimer && k.acpiPmTimer) this.printk(`ACPI: PM-Timer IO Port: 0x${p.devices.acpi.pmTimerPort.toString(16)}`);
    if (p.devices.hpet && k.hpetTimer) this.printk(`ACPI: HPET id: 0x${p.devices.hpet.id.toString(16)} base: 0xfed00000`);
  }

  /**
   * rtc_hctosys() (late_initcall, CONFIG_RTC_HCTOSYS): rtc_cmos reads the CMOS clock and sets the
   * system time to its whole second — also in guests that started from the kvmclock wall clock.
   */
  rtcHctosys(): void {
    const p = this.platform;
    if (!p.devices.rtc || !this.kernel.rtcHctosys || !p.readCmos) return;
    const sec = p.readCmos().seconds;
    const name = p.devices.acpi && !this.cmdline.time.noacpi && p.devices.rtcPnpName ? p.devices.rtcPnpName : 'rtc_cmos';
    const iso = new Date(Number(sec) * 1000).toISOString().slice(0, 19);
    // drivers/rtc/class.c rtc_hctosys(): tv_nsec = NSEC_PER_SEC >> 1 — the RTC only says which
    // second it is, "the best guess is to add 0.5s".
    const ns = sec * NSEC_PER_SEC + (NSEC_PER_SEC >> 1n);
    this.timekeeper.setTimeOfDay(ns);
    this.hctosysNs = ns;
    this.printk(`rtc_cmos ${name}: setting system clock to ${iso} UTC (${sec})`);
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
    const acpi = p.devices.acpi && !t.noacpi;
    // The HPET is found through the ACPI HPET table (or hpet=force on chipsets that need it)
    if (p.devices.hpet && k.hpetTimer && !t.hpetDisable && acpi && p.readHpet) {
      this.hpetEnabled = true;
      const hz = Math.round(1e15 / p.devices.hpet.periodFs);
      const readHpet = p.readHpet;
      this.register(
        new CS({
          name: 'hpet',
          rating: 250,
          mask: clocksourceMask(32),
          flags: CLOCK_SOURCE_IS_CONTINUOUS,
          read: () => readHpet() & 0xffff_ffffn,
        }),
        1,
        hz,
      );
    }
    this.pmTimerEnabled = !!(acpi && p.devices.acpi?.pmTimer && k.acpiPmTimer && p.readPmTimer);
    // intr_mode_select and timer_init (hpet_time_init → pit_timer_init) run before tsc_init, so
    // apic_needs_pit() sees the frequencies tsc_early_init found
    const freq = { tscKhz: this.tscKhz, cpuKhz: this.cpuKhz, lapicTimerPeriod: this.lapicTimerPeriod };
    this.tick = setupTick(p, k, t, this.hpetEnabled, this.tscKhz !== 0 && p.cpuid.tsc, freq);
    if (this.tick.device) this.startPeriodicTick();
    this.checkTimer();
    this.tscInit();
  }

  /**
   * check_timer() (arch/x86/kernel/apic/io_apic.c), from setup_IO_APIC in intr_mode_init: only with
   * a global clockevent (HPET or PIT) and the IO-APIC in use (not "noapic"); IRQ0's vector is
   * ISA_IRQ_VECTOR(0) = 0x30, its pin the firmware's routing, and no pin is set up as ExtINT.
   */
  private checkTimer(): void {
    const p = this.platform;
    const t = this.cmdline.time;
    const global = this.tick.broadcast ?? (this.tick.device && !this.tick.device.perCpu ? this.tick.device : null);
    const pin = p.devices.ioapicIrq0Pin;
    if (!global || pin === undefined || t.noapic || t.nolapic || !p.devices.lapic || !this.kernel.localApic) return;
    this.printk(`..TIMER: vector=0x30 apic1=0 pin1=${pin} apic2=-1 pin2=-1`);
  }

  /** tsc_init(). */
  private tscInit(): void {
    const p = this.platform;
    const t = this.cmdline.time;
    if (!p.cpuid.tsc) return;
    if (!this.tscKhz) {
      const r = pitHpetPtimerCalibrateCpu(p, this.hpetEnabled, this.pmTimerEnabled);
      for (const l of r.lines) this.printk(l);
      this.cpuKhz = r.khz;
      if (!this.combineFrequencies()) {
        this.markTscUnstable('could not calculate TSC khz');
        return;
      }
      this.setCyc2nsScale(this.tscKhz); // tsc_enable_sched_clock()
    }
    const constant = p.cpuid.invariantTsc;
    let disableWatchdog = t.tscReliable || this.tscReliableCap || t.tscNoWatchdog;
    // check_system_tsc_reliable(): constant + nonstop + TSC_ADJUST (+ ≤ 4 packages)
    if (constant && p.cpuid.tscAdjust) disableWatchdog = true;
    // unsynchronized_tsc()
    let unsync = this.tscUnstable;
    if (!unsync && !constant && !(t.tscReliable || this.tscReliableCap) && p.cpuid.vendor !== 'intel' && p.vcpus > 1) unsync = true;
    if (unsync) {
      this.markTscUnstable('TSCs unsynchronized');
      return;
    }
    const read = (): bigint => p.rdtsc();
    this.tscEarly = tscEarlyClocksource(read);
    this.tsc = tscClocksource(read);
    if (disableWatchdog) {
      // tsc_disable_clocksource_watchdog()
      this.tscEarly.flags &= ~CLOCK_SOURCE_MUST_VERIFY;
      this.tsc.flags &= ~CLOCK_SOURCE_MUST_VERIFY;
    }
    this.register(this.tscEarly, 1000, this.tscKhz);
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

  /** sched_clock_init_late() (late_initcall). */
  schedClockInitLate(): void {
    this.schedClock.initLate();
  }

  /** clocksource_done_booting() and, in the same initcall level, the acpi_pm driver. */
  doneBooting(): void {
    this.registerJiffies();
    if (this.hpetEnabled && this.kernel.hpetCharDev) {
      // hpet_late_init → hpet_reserve_platform_timers → drivers/char/hpet.c hpet_alloc
      const h = this.platform.devices.hpet!;
      const hz = Math.round(1e15 / h.periodFs);
      this.printk(`hpet: ${h.comparators} channels of 0 reserved for per-cpu timers`);
      this.printk(`hpet0: at MMIO 0xfed00000, IRQs ${h.irqs.join(', ')}`);
      this.printk(
        `hpet0: ${h.comparators} comparators, ${h.counter64 ? 64 : 32}-bit ${Math.floor(hz / 1e6)}.${String(hz % 1e6).padStart(6, '0')} MHz counter`,
      );
    }
    this.core.doneBooting();
    this.checkOneshot();
    if (this.pmTimerEnabled) {
      const read = this.platform.readPmTimer!;
      this.register(
        new CS({
          name: 'acpi_pm',
          rating: 200,
          mask: clocksourceMask(24),
          flags: CLOCK_SOURCE_IS_CONTINUOUS,
          read: () => read() & 0xff_ffffn,
        }),
        1,
        PMTMR_TICKS_PER_SEC,
      );
    }
  }

  /** init_tsc_clocksource() (device_initcall). */
  initTscClocksource(): void {
    if (!this.platform.cpuid.tsc || !this.tscKhz || !this.tscEarly || !this.tsc) return;
    if (this.tscUnstable) {
      this.core.unregister(this.tscEarly);
      return;
    }
    if (this.tscKnownFreq && !this.cmdline.time.tscRecalibrate) {
      this.register(this.tsc, 1000, this.tscKhz);
      this.core.unregister(this.tscEarly);
      return;
    }
    const timer = this.opts.scheduler.timer(() => this.refine());
    timer.armIn(this.phases.refineDelay);
  }

  /** tsc_refine_calibration_work(). */
  private refine(): void {
    if (!this.tsc || !this.tscEarly) return;
    if (!this.tscUnstable) {
      const freq = refineCalibration(this.platform, this.hpetEnabled, this.pmTimerEnabled);
      if (freq !== null && Math.abs(this.tscKhz - freq) <= this.tscKhz / 100) {
        this.tscKhz = freq;
        this.printk(`tsc: Refined TSC clocksource calibration: ${mhz(freq)} MHz`);
        this.setCyc2nsScale(freq); // set_cyc2ns_scale(tsc_khz, cpu, tsc_stop)
      }
      this.register(this.tsc, 1000, this.tscKhz);
    }
    this.core.unregister(this.tscEarly);
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
      this.oneshotBase = { ticks: this.jiffiesTicks(), t: this.uptimeNs() };
      this.oneshot = true;
      this.periodicTimer?.cancel();
      if (this.schedClock.running === 1) this.startOneshotSchedTick();
    }
  }

  private jiffiesTicks(): bigint {
    return this.ticksHandled + this.pendingTicks;
  }

  /** Start steal accounting and periodic timekeeping updates after boot. */
  startRuntime(): void {
    const p = this.platform;
    const kvm = p.cpuid.kvm;
    // kvm_guest_init(): steal time when KVM_FEATURE_STEAL_TIME and not no-steal-acc (CONFIG_PARAVIRT)
    const stealOn =
      this.kernel.kvmGuest &&
      !!kvm &&
      ((kvm.features >>> KVM_FEATURE_STEAL_TIME) & 1) === 1 &&
      !this.cmdline.time.noSteal &&
      !!p.memory &&
      !!p.wrmsr;
    let stealClock: ((cpu: number) => Ns) | null = null;
    if (stealOn) {
      // kvm_register_steal_time(): per-CPU 64-byte record, GPA | KVM_MSR_ENABLED
      for (let c = 0; c < p.vcpus; c++) p.wrmsr!(c, MSR_KVM_STEAL_TIME, (STEAL_TIME_GPA + BigInt(c * 64)) | 1n);
      const mem = p.memory!;
      stealClock = (cpu) => kvmStealClock(() => decodeStealTime(mem.read(STEAL_TIME_GPA + BigInt(cpu * 64), KVM_STEAL_TIME_SIZE)));
    }
    this.steal = new StealAccounting(p.vcpus, this.tickNsec, stealClock);
    this.lastAccountedJiffies = this.uptimeNs() / this.tickNsec;
    const interval = this.opts.updateIntervalNs ?? this.tickNsec;
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
      this.updateTimer!.armIn(interval);
    });
    this.updateTimer.armIn(interval);
  }

  /** update_wall_time() and process accounting for the ticks since the last update. */
  update(): void {
    this.timekeeper.advance();
    const now = this.uptimeNs() / this.tickNsec;
    const n = Number(now - this.lastAccountedJiffies);
    this.lastAccountedJiffies = now;
    if (this.steal && n > 0) {
      const mode = this.opts.cpuMode;
      for (let c = 0; c < this.platform.vcpus; c++) this.steal.ticks(c, mode ? mode(c) : 'idle', n);
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
    return this.log.map((l) => {
      const us = l.t / 1000n;
      return `[${String(us / 1_000_000n).padStart(5)}.${String(us % 1_000_000n).padStart(6, '0')}] ${l.line}`;
    });
  }

  availableClocksource(): string {
    return this.core.availableText();
  }

  currentClocksource(): string {
    return this.core.currentText();
  }

  /** /sys/devices/system/clockevents/clockevent0/current_device. */
  clockeventDevice(): string {
    return `${this.tick.device?.name ?? ''}\n`;
  }

  /** echo NAME > current_clocksource. */
  writeCurrentClocksource(name: string): void {
    this.core.writeCurrent(name);
  }

  clockGettime(id: ClockId): Ns {
    return this.timekeeper.get(id);
  }

  adjtimex(txc: Timex): TimexResult {
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
