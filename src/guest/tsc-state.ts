// arch/x86/kernel/tsc.c as a state machine over boot: tsc_early_init (frequencies, cyc2ns for the native
// sched_clock), the __setup handlers (tsc=unstable, notsc), tsc_init (late calibration, the unsynchronized
// check, tsc-early registration), init_tsc_clocksource (device_initcall) and tsc_refine_calibration_work
// a second later, and the two ways the TSC is marked unstable. The calibrations themselves are in tsc.ts;
// GuestKernel (boot.ts) drives this from its boot steps.
import type { Scheduler } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { clocksCalcMultShift, mulU64U32Shr, u64 } from '../core/index.ts';
import { CLOCK_SOURCE_MUST_VERIFY, type Clocksource } from './clocksource.ts';
import type { ClocksourceCore } from './clocksources.ts';
import type { TimeParams } from './cmdline.ts';
import type { KernelConfig } from './kernel.ts';
import type { KvmclockSetup } from './kvmclock.ts';
import type { GuestPlatform } from './platform.ts';
import { lpjFromKhz } from './calibrate-delay.ts';
import type { SchedClock } from './sched-clock.ts';
import {
  cpuKhzFromCpuid,
  mhz,
  nativeCalibrateTsc,
  pitHpetPtimerCalibrateCpu,
  pvmGetTscKhz,
  quickPitCalibrate,
  refineCalibration,
  tscClocksource,
  tscEarlyClocksource,
} from './tsc.ts';

/** What the TSC code needs from the rest of the kernel. */
export interface TscDeps {
  platform: GuestPlatform;
  kernel: KernelConfig;
  time: TimeParams;
  scheduler: Scheduler;
  core: ClocksourceCore;
  schedClock: SchedClock;
  printk(line: string): void;
  /** clocksource_register_khz/hz plus the watchdog's start. */
  register(cs: Clocksource, scale: number, freq: number): void;
  /** kvmclock once kvmclock_init ran (its kHz, and whether sched_clock is still the native one). */
  kvmclock(): KvmclockSetup | null;
  /** tsc_refine_calibration_work's delay after init_tsc_clocksource. */
  refineDelay(): Ns;
}

export class TscState {
  tscKhz = 0;
  cpuKhz = 0;
  unstable = false;
  knownFreq = false;
  /** X86_FEATURE_TSC_RELIABLE forced by the platform (PVM's pvm_get_tsc_khz). */
  reliableCap = false;
  /** lapic_timer_period known without calibration (CPUID 0x15 crystal), ticks per jiffy; 0 if not. */
  lapicTimerPeriod = 0;
  /** lpj_fine: loops per jiffy from tsc_khz, set by tsc_init once the frequency is known; 0 if not. */
  lpjFine = 0;
  /** cyc2ns data of the native TSC sched_clock, once tsc_enable_sched_clock ran. */
  private cyc2ns: { mul: number; shift: number; offset: bigint } | null = null;
  private tscEarly: Clocksource | null = null;
  private tsc: Clocksource | null = null;

  constructor(private readonly d: TscDeps) {}

  /** Whether `cs` is one of the TSC's clocksources (the watchdog's verdict then marks the TSC unstable). */
  owns(cs: Clocksource): boolean {
    return cs === this.tsc || cs === this.tscEarly;
  }

  /** native_sched_clock() through cyc2ns, or null before tsc_enable_sched_clock(). */
  nativeSchedClock(): Ns | null {
    const c = this.cyc2ns;
    return c ? u64(mulU64U32Shr(this.d.platform.rdtsc(), c.mul, c.shift) + c.offset) : null;
  }

  /** __set_cyc2ns_scale(): new mult/shift for `khz`, offset chosen so sched_clock continues. */
  private setCyc2nsScale(khz: number): void {
    const tsc = this.d.platform.rdtsc();
    const c = this.cyc2ns;
    const nsNow = c ? u64(mulU64U32Shr(tsc, c.mul, c.shift) + c.offset) : 0n; // zeroed data reads 0
    const { mult, shift } = clocksCalcMultShift(khz, 1_000_000, 0);
    this.cyc2ns = { mul: mult, shift, offset: u64(nsNow - mulU64U32Shr(tsc, mult, shift)) };
  }

  /** using_native_sched_clock(): the paravirt sched_clock was not replaced (no kvmclock). */
  private usingNativeSchedClock(): boolean {
    return this.d.kvmclock() === null;
  }

  /** tsc_early_init(). */
  earlyInit(): void {
    const { platform: p, time: t } = this.d;
    if (!p.cpuid.tsc) return;
    const kvmclock = this.d.kvmclock();
    if (kvmclock) {
      // x86_platform.calibrate_tsc/calibrate_cpu = kvm_get_tsc_khz; sets X86_FEATURE_TSC_KNOWN_FREQ
      this.cpuKhz = kvmclock.tscKhz();
      this.tscKhz = t.tscEarlyKhz || this.cpuKhz;
      this.knownFreq = true;
    }
    const pvm = this.d.kernel.kvmGuest ? pvmGetTscKhz(p) : null;
    if (pvm) {
      // the PVM platform init points calibrate_tsc/calibrate_cpu at pvm_get_tsc_khz (src/guest/tsc.ts)
      this.cpuKhz = pvm.khz;
      this.tscKhz = t.tscEarlyKhz || pvm.khz;
      this.knownFreq = true;
      this.reliableCap = pvm.reliable;
    } else if (!kvmclock) {
      // native_calibrate_cpu_early: CPUID 0x16, else the quick PIT calibration
      let cpu = cpuKhzFromCpuid(p);
      if (!cpu) {
        const q = quickPitCalibrate(p);
        for (const l of q.lines) this.d.printk(l);
        cpu = q.khz;
      }
      const nt = nativeCalibrateTsc(p, this.d.kernel.hz);
      this.knownFreq = nt.knownFreq;
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
    this.d.printk(`tsc: Detected ${mhz(this.cpuKhz)} MHz processor`);
    if (this.cpuKhz !== this.tscKhz) this.d.printk(`tsc: Detected ${mhz(this.tscKhz)} MHz TSC`);
    return true;
  }

  /** The __setup handlers run by parse_args() after setup_arch (tsc=unstable, notsc). */
  parseArgs(): void {
    const t = this.d.time;
    if (t.tscUnstable) this.markUnstable('boot parameter');
    if (t.notsc) this.markUnstable('boot parameter notsc');
  }

  /** mark_tsc_unstable(reason). */
  markUnstable(reason: string): void {
    if (this.unstable) return;
    this.unstable = true;
    if (this.usingNativeSchedClock()) this.d.schedClock.clear();
    this.d.printk(`tsc: Marking TSC unstable due to ${reason}`);
    for (const cs of [this.tscEarly, this.tsc]) if (cs && this.d.core.list.includes(cs)) this.d.core.markUnstable(cs);
  }

  /** tsc_cs_mark_unstable(): the watchdog's verdict. */
  csMarkUnstable(): void {
    if (this.unstable) return;
    this.unstable = true;
    if (this.usingNativeSchedClock()) this.d.schedClock.clear();
    this.d.printk('tsc: Marking TSC unstable due to clocksource watchdog');
  }

  /** tsc_init(), from x86_late_time_init after the timer and APIC setup. */
  init(hpetEnabled: boolean, pmTimerEnabled: boolean): void {
    const { platform: p, time: t } = this.d;
    if (!p.cpuid.tsc) return;
    if (!this.tscKhz) {
      const r = pitHpetPtimerCalibrateCpu(p, hpetEnabled, pmTimerEnabled);
      for (const l of r.lines) this.d.printk(l);
      this.cpuKhz = r.khz;
      if (!this.combineFrequencies()) {
        this.markUnstable('could not calculate TSC khz');
        return;
      }
      this.setCyc2nsScale(this.tscKhz); // tsc_enable_sched_clock()
    }
    this.lpjFine = lpjFromKhz(this.tscKhz, this.d.kernel.hz); // get_loops_per_jiffy()
    const constant = p.cpuid.invariantTsc;
    let disableWatchdog = t.tscReliable || this.reliableCap || t.tscNoWatchdog;
    // check_system_tsc_reliable(): constant + nonstop + TSC_ADJUST (+ ≤ 4 packages)
    if (constant && p.cpuid.tscAdjust) disableWatchdog = true;
    // unsynchronized_tsc()
    let unsync = this.unstable;
    if (!unsync && !constant && !(t.tscReliable || this.reliableCap) && p.cpuid.vendor !== 'intel' && p.vcpus > 1) unsync = true;
    if (unsync) {
      this.markUnstable('TSCs unsynchronized');
      return;
    }
    const read = (): bigint => p.rdtsc();
    this.tscEarly = tscEarlyClocksource(read);
    this.tsc = tscClocksource(read, () => p.rdtscPlan?.() ?? null);
    // rdtsc on the CPU the read runs on: the TSCs of a VM's vCPUs can differ
    this.tscEarly.readOn = this.tsc.readOn = (cpu: number): bigint => p.rdtsc(cpu);
    if (disableWatchdog) {
      // tsc_disable_clocksource_watchdog()
      this.tscEarly.flags &= ~CLOCK_SOURCE_MUST_VERIFY;
      this.tsc.flags &= ~CLOCK_SOURCE_MUST_VERIFY;
    }
    this.d.register(this.tscEarly, 1000, this.tscKhz);
  }

  /** init_tsc_clocksource() (device_initcall). */
  initClocksource(hpetEnabled: boolean, pmTimerEnabled: boolean): void {
    if (!this.d.platform.cpuid.tsc || !this.tscKhz || !this.tscEarly || !this.tsc) return;
    if (this.unstable) {
      this.d.core.unregister(this.tscEarly);
      return;
    }
    if (this.knownFreq && !this.d.time.tscRecalibrate) {
      this.d.register(this.tsc, 1000, this.tscKhz);
      this.d.core.unregister(this.tscEarly);
      return;
    }
    const timer = this.d.scheduler.timer(() => this.refine(hpetEnabled, pmTimerEnabled));
    timer.armIn(this.d.refineDelay());
  }

  /** tsc_refine_calibration_work(). */
  private refine(hpetEnabled: boolean, pmTimerEnabled: boolean): void {
    if (!this.tsc || !this.tscEarly) return;
    if (!this.unstable) {
      const freq = refineCalibration(this.d.platform, hpetEnabled, pmTimerEnabled);
      if (freq !== null && Math.abs(this.tscKhz - freq) <= this.tscKhz / 100) {
        this.tscKhz = freq;
        this.d.printk(`tsc: Refined TSC clocksource calibration: ${mhz(freq)} MHz`);
        this.setCyc2nsScale(freq); // set_cyc2ns_scale(tsc_khz, cpu, tsc_stop)
      }
      this.d.register(this.tsc, 1000, this.tscKhz);
    }
    this.d.core.unregister(this.tscEarly);
  }
}
