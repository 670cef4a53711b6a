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
  /** rdtsc() on the host, now. */
  rdtsc(): Cycles;
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
   * Used by KVM_HC_CLOCK_PAIRING (walltimeAndClockread); kvmclock never uses it (its master clock stays
   * on the raw/boot clock, baseNsAt), and KVM_GET/SET_CLOCK's realtime keeps the free-running model.
   */
  realtimeAt?: (tsc: Cycles) => Ns;
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
  readonly rdtsc: () => Cycles;

  constructor(cfg: LinuxHostTimekeeperConfig) {
    this.tscKhz = cfg.tscKhz;
    this.rdtsc = cfg.rdtsc;
    this.constantTsc = cfg.constantTsc ?? true;
    this.clocksourceIsTsc = cfg.clocksourceIsTsc ?? true;
    this.tscUnstable = cfg.tscUnstable ?? false;
    const { mult, shift } = clocksCalcMultShift(cfg.tscKhz, 1_000_000, 600 * 1000);
    this.rawMult = mult;
    this.rawShift = shift;
    this.monoMult = BigInt(mult + (cfg.monoMultAdjust ?? 0));
    this.tsc0 = cfg.tscAtBoot ?? 0n;
    this.real0 = cfg.realtimeAtBootNs ?? 0n;
    this.steps = cfg.realtimeSteps ?? null;
    this.ownerRealtime = cfg.realtimeAt ?? null;
  }

  baseNsAt(tsc: Cycles): Ns {
    return ((tsc - this.tsc0) * BigInt(this.rawMult)) >> BigInt(this.rawShift);
  }

  walltimeAndClockread(): { realtime: Ns; tsc: Cycles } | null {
    if (!this.clocksourceIsTsc) return null;
    const tsc = this.rdtsc();
    return { realtime: this.ownerRealtime ? this.ownerRealtime(tsc) : this.realtimeNsAt(tsc), tsc };
  }

  realtimeNsAt(tsc: Cycles): Ns {
    const real = this.real0 + (((tsc - this.tsc0) * this.monoMult) >> BigInt(this.rawShift));
    return this.steps ? real + this.steps() : real;
  }
}
