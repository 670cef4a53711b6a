// What KVM reads from the host kernel's timekeeping: rdtsc, tsc_khz, and the clocks behind
// get_kvmclock_base_ns() (CLOCK_MONOTONIC_RAW + boot offset) and ktime_get_real_ns(), together with
// whether the host clocksource is the TSC (gtod_is_based_on_tsc in arch/x86/kvm/x86.c).
//
// The host's raw clock is the TSC clocksource's own mult/shift: kernel/time/timekeeping.c accumulates
// cycles * mult in shifted nanoseconds, so CLOCK_MONOTONIC_RAW at a TSC reading is exactly
// ((tsc - tsc_at_boot) * mult) >> shift. That mult is far coarser than kvmclock's 32.32 multiplier,
// and the two disagree by a few ns per second: this is why two master-clock snapshots give guest
// clocks that differ (see KvmVm.getClock).
import type { Cycles, Ns } from '../core/index.ts';
import { clocksCalcMultShift } from '../core/index.ts';

export interface HostTimekeeper {
  /** tsc_khz of the host kernel. */
  readonly tscKhz: number;
  /** X86_FEATURE_CONSTANT_TSC. */
  readonly constantTsc: boolean;
  /** Host clocksource is the TSC (required for KVM's master clock). */
  readonly clocksourceIsTsc: boolean;
  /** check_tsc_unstable(). */
  readonly tscUnstable: boolean;
  /** rdtsc() on the host, now (on host CPU 0, the reference for the host's clocks). */
  rdtsc(): Cycles;
  /**
   * rdtsc() on host CPU `cpu` now: CPU 0's TSC plus that CPU's skew (hosts whose TSCs are not
   * synchronised across CPUs). Absent: every CPU reads rdtsc().
   */
  rdtscOn?(cpu: number): Cycles;
  /** get_kvmclock_base_ns() computed from this host TSC reading. */
  baseNsAt(tsc: Cycles): Ns;
  /** CLOCK_REALTIME (ns since the epoch) computed from this host TSC reading. */
  realtimeNsAt(tsc: Cycles): Ns;
  /**
   * kvm_get_walltime_and_clockread() (arch/x86/kvm/x86.c): CLOCK_REALTIME and the host TSC it was read
   * at, from one rdtsc; null when the host clocksource is not the TSC (gtod_is_based_on_tsc fails).
   */
  walltimeAndClockread?(): { realtime: Ns; tsc: Cycles } | null;
}

export interface LinuxHostTimekeeperConfig {
  tscKhz: number;
  /** Host TSC now (in a simulation: the host's TSC at the engine's current time). */
  rdtsc: () => Cycles;
  /** Host TSC value at which CLOCK_MONOTONIC_RAW (and boot time) read 0. */
  tscAtBoot?: Cycles;
  /** CLOCK_REALTIME at boot, ns since the epoch. */
  realtimeAtBootNs?: Ns;
  /**
   * NTP frequency correction of CLOCK_MONOTONIC/REALTIME relative to RAW, in units of mult
   * (timekeeping_apply_adjustment changes tkr_mono.mult by small integers). 0 = unadjusted.
   */
  monoMultAdjust?: number;
  /** Steps made to CLOCK_REALTIME so far (settimeofday / clock_settime on the host): they move REALTIME, not RAW. */
  realtimeSteps?: () => Ns;
  constantTsc?: boolean;
  clocksourceIsTsc?: boolean;
  tscUnstable?: boolean;
  /**
   * The host's CLOCK_REALTIME at a host TSC reading as the host's owner defines it (a world host whose
   * REALTIME is NTP-disciplined). KVM reads REALTIME from the host timekeeper's pvclock_gtod_data copy
   * at one TSC value (x86.c do_realtime), so it is whatever the host's NTP made of it; without this the
   * model free-runs REALTIME from realtimeAtBootNs at the TSC's mult (plus monoMultAdjust and steps).
   * Used by KVM_HC_CLOCK_PAIRING (walltimeAndClockread) and every REALTIME KVM reads (KVM_GET/SET_CLOCK's
   * realtime, the wall clock); kvmclock itself never uses it (its master clock stays on the raw/boot clock).
   */
  realtimeAt?: (tsc: Cycles) => Ns;
  /** Each host CPU's TSC minus CPU 0's, cycles (index = CPU; missing CPUs read CPU 0's TSC). */
  cpuTscSkew?: readonly Cycles[];
  /**
   * The host's clocksource is the HPET (what Linux falls back to once it marks the TSC unstable):
   * CLOCK_MONOTONIC_RAW counts HPET ticks of `periodFs` femtoseconds, scaled by the HPET clocksource's
   * mult/shift. The HPET is modelled on the TSC's crystal: ticks = floor(tsc · 10^15 / (periodFs · tsc Hz)).
   * Sets clocksourceIsTsc to false.
   */
  hpet?: { periodFs: number };
}

/** The HPET period of PC chipsets (HPET_PERIOD register, fs): 14.318180 MHz nominal. */
export const HOST_HPET_PERIOD_FS = 69_841_279;

/**
 * mult/shift of a clocksource with a 32-bit mask registered with clocksource_register_hz(cs, hz), as
 * __clocksource_update_freq_scale() computes them (kernel/time/clocksource.c): sec = mask / hz (at
 * least 1), then clocks_calc_mult_shift(hz, NSEC_PER_SEC, sec).
 */
export function hz32MultShift(hz: number): { mult: number; shift: number } {
  let sec = Math.floor(0xffff_ffff / hz);
  if (sec === 0) sec = 1;
  return clocksCalcMultShift(hz, 1_000_000_000, sec);
}

/**
 * A Linux host whose clocksource is the TSC, registered with clocksource_register_khz(): mult/shift
 * from __clocksource_update_freq_scale(cs, 1000, khz) → clocks_calc_mult_shift(khz, NSEC_PER_SEC/1000,
 * 600 * 1000) (kernel/time/clocksource.c; 600 s is the cap for >32-bit masks).
 */
export class LinuxHostTimekeeper implements HostTimekeeper {
  readonly tscKhz: number;
  readonly constantTsc: boolean;
  readonly clocksourceIsTsc: boolean;
  readonly tscUnstable: boolean;
  /** tkr_raw.mult and shift. */
  readonly rawMult: number;
  readonly rawShift: number;
  private readonly monoMult: bigint;
  private readonly tsc0: Cycles;
  private readonly real0: Ns;
  private readonly steps: (() => Ns) | null;
  private readonly ownerRealtime: ((tsc: Cycles) => Ns) | null;
  private readonly skew: readonly Cycles[];
  /** The HPET clocksource when the host runs on it: its rate (Hz·periodFs = 10^15) and mult/shift. */
  private readonly hpet: { periodFs: bigint; mult: bigint; shift: bigint } | null;
  readonly rdtsc: () => Cycles;

  constructor(cfg: LinuxHostTimekeeperConfig) {
    this.tscKhz = cfg.tscKhz;
    this.rdtsc = cfg.rdtsc;
    this.constantTsc = cfg.constantTsc ?? true;
    this.clocksourceIsTsc = cfg.hpet ? false : (cfg.clocksourceIsTsc ?? true);
    this.tscUnstable = cfg.tscUnstable ?? false;
    this.skew = cfg.cpuTscSkew ?? [];
    let { mult, shift } = clocksCalcMultShift(cfg.tscKhz, 1_000_000, 600 * 1000);
    if (cfg.hpet) {
      // arch/x86/kernel/hpet.c: hpet_freq = FSEC_PER_SEC / hpet_period; clocksource_register_hz(&clocksource_hpet, hpet_freq)
      const hz = Math.floor(1e15 / cfg.hpet.periodFs);
      ({ mult, shift } = hz32MultShift(hz));
      this.hpet = { periodFs: BigInt(cfg.hpet.periodFs), mult: BigInt(mult), shift: BigInt(shift) };
    } else this.hpet = null;
    this.rawMult = mult;
    this.rawShift = shift;
    this.monoMult = BigInt(mult + (cfg.monoMultAdjust ?? 0));
    this.tsc0 = cfg.tscAtBoot ?? 0n;
    this.real0 = cfg.realtimeAtBootNs ?? 0n;
    this.steps = cfg.realtimeSteps ?? null;
    this.ownerRealtime = cfg.realtimeAt ?? null;
  }

  rdtscOn(cpu: number): Cycles {
    const tsc = this.rdtsc();
    const s = cpu >= 0 ? this.skew[cpu] : undefined;
    return s === undefined ? tsc : tsc + s;
  }

  /** Counts of the host clocksource since boot at this (CPU 0) TSC reading: TSC cycles, or HPET ticks. */
  private clocksourceCycles(tsc: Cycles): bigint {
    const d = tsc - this.tsc0;
    if (!this.hpet) return d;
    // ticks = d / tscHz · 10^15 / periodFs
    return (d * 1_000_000_000_000n) / (BigInt(this.tscKhz) * this.hpet.periodFs);
  }

  baseNsAt(tsc: Cycles): Ns {
    return (this.clocksourceCycles(tsc) * BigInt(this.rawMult)) >> BigInt(this.rawShift);
  }

  walltimeAndClockread(): { realtime: Ns; tsc: Cycles } | null {
    if (!this.clocksourceIsTsc) return null;
    const tsc = this.rdtsc();
    return { realtime: this.ownerRealtime ? this.ownerRealtime(tsc) : this.realtimeNsAt(tsc), tsc };
  }

  realtimeNsAt(tsc: Cycles): Ns {
    if (this.ownerRealtime) return this.ownerRealtime(tsc);
    const real = this.real0 + ((this.clocksourceCycles(tsc) * this.monoMult) >> BigInt(this.rawShift));
    return this.steps ? real + this.steps() : real;
  }
}
