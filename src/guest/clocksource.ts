// struct clocksource and the arithmetic Linux does when one is registered: mult/shift from the
// frequency, maxadj, max_idle_ns and max_cycles (kernel/time/clocksource.c
// __clocksource_update_freq_scale, clocks_calc_max_nsecs, clocksource_max_adjustment), and the
// line clocksource_register prints. Numbers are computed with the kernel's integer types.
import type { Cycles, Ns, TscPlan } from '../core/index.ts';
import { NSEC_PER_SEC, NSEC_PER_USEC } from '../core/index.ts';
import { U32_MAX, U64_MAX, clocksCalcMultShift, cyc2ns, hex } from '../core/index.ts';

// include/linux/clocksource.h
export const CLOCK_SOURCE_IS_CONTINUOUS = 0x01;
export const CLOCK_SOURCE_MUST_VERIFY = 0x02;
export const CLOCK_SOURCE_WATCHDOG = 0x10;
export const CLOCK_SOURCE_VALID_FOR_HRES = 0x20;
export const CLOCK_SOURCE_UNSTABLE = 0x40;
export const CLOCK_SOURCE_SUSPEND_NONSTOP = 0x80;
export const CLOCK_SOURCE_RESELECT = 0x100;
export const CLOCK_SOURCE_VERIFY_PERCPU = 0x200;

/** WATCHDOG_THRESHOLD in kernel/time/clocksource.c: NSEC_PER_SEC >> 5 (31.25 ms). */
export const WATCHDOG_THRESHOLD: Ns = NSEC_PER_SEC >> 5n;
/** WATCHDOG_MAX_SKEW: CONFIG_CLOCKSOURCE_WATCHDOG_MAX_SKEW_US (default 125) µs. */
export const WATCHDOG_MAX_SKEW: Ns = 125n * NSEC_PER_USEC;

/** vDSO clock modes (include/vdso/clocksource.h, arch/x86/include/asm/vdso/clocksource.h). */
export type VdsoClockMode = 'none' | 'tsc' | 'pvclock' | 'hvclock';

export interface ClocksourceSpec {
  name: string;
  rating: number;
  /** CLOCKSOURCE_MASK(bits) value. */
  mask: bigint;
  flags: number;
  /** A fixed mult/shift (jiffies); otherwise computed from the frequency at registration. */
  mult?: number;
  shift?: number;
  uncertaintyMarginNs?: Ns;
  vdsoClockMode?: VdsoClockMode;
  /** Reads the counter (what cs->read returns). */
  read: () => Cycles;
  /** Reads the counter on CPU `cpu`, for counters that are per CPU (the TSC, kvm-clock's per-CPU record). */
  readOn?: (cpu: number) => Cycles;
  /** What read() returns as a formula of true time while nothing but time moves (null: it is not one). */
  plan?: () => TscPlan | null;
}

/** A registered clocksource with everything the kernel derives at registration. */
export class Clocksource {
  readonly name: string;
  rating: number;
  readonly mask: bigint;
  flags: number;
  mult = 0;
  shift = 0;
  maxadj = 0;
  maxIdleNs: Ns = 0n;
  maxCycles: Cycles = 0n;
  maxRawDelta: Cycles = 0n;
  uncertaintyMarginNs: Ns = 0n;
  vdsoClockMode: VdsoClockMode;
  read: () => Cycles;
  /** ClocksourceSpec.readOn: the read on a given CPU (absent: the counter is global). */
  readOn: ((cpu: number) => Cycles) | undefined;
  /** ClocksourceSpec.plan. */
  plan: (() => TscPlan | null) | undefined;
  /** Frequency it was registered with, Hz (0 for the jiffies clocksources). */
  freqHz = 0n;

  constructor(spec: ClocksourceSpec) {
    this.name = spec.name;
    this.rating = spec.rating;
    this.mask = spec.mask;
    this.flags = spec.flags;
    this.read = spec.read;
    this.readOn = spec.readOn;
    this.plan = spec.plan;
    this.vdsoClockMode = spec.vdsoClockMode ?? 'none';
    if (spec.mult !== undefined) this.mult = spec.mult;
    if (spec.shift !== undefined) this.shift = spec.shift;
    if (spec.uncertaintyMarginNs !== undefined) this.uncertaintyMarginNs = spec.uncertaintyMarginNs;
  }

  has(flag: number): boolean {
    return (this.flags & flag) !== 0;
  }

  /** clocksource_cyc2ns with this clocksource's mult/shift. */
  cyc2ns(cycles: Cycles): Ns {
    return cyc2ns(cycles, this.mult, this.shift);
  }

  /** The line __clocksource_register_scale prints (pr_info, "clocksource: " prefix). */
  registerLine(): string {
    return `clocksource: ${this.name}: mask: ${hex(this.mask)} max_cycles: ${hex(this.maxCycles)}, max_idle_ns: ${this.maxIdleNs} ns`;
  }
}

/** clocksource_max_adjustment(): 11% of mult, the most NTP may ever steer it. */
export function clocksourceMaxAdjustment(mult: number): number {
  return Number((BigInt(mult) * 11n) / 100n);
}

/**
 * clocks_calc_max_nsecs(): the longest time the counter can be left unread without the
 * (mult+maxadj) product overflowing 64 bits or the counter wrapping, halved as a safety margin.
 */
export function clocksCalcMaxNsecs(mult: number, shift: number, maxadj: number, mask: bigint): { maxNsecs: Ns; maxCycles: Cycles } {
  let maxCycles = U64_MAX / BigInt(mult + maxadj);
  if (maxCycles > mask) maxCycles = mask;
  const maxNsecs = cyc2ns(maxCycles, mult - maxadj, shift) >> 1n;
  return { maxNsecs, maxCycles };
}

/** clocksource_update_max_deferment() incl. max_raw_delta (mask minus a 12.5 % margin, 6.x). */
function updateMaxDeferment(cs: Clocksource): void {
  const r = clocksCalcMaxNsecs(cs.mult, cs.shift, cs.maxadj, cs.mask);
  cs.maxIdleNs = r.maxNsecs;
  cs.maxCycles = r.maxCycles;
  cs.maxRawDelta = (cs.mask >> 1n) + (cs.mask >> 2n) + (cs.mask >> 3n);
}

/**
 * __clocksource_update_freq_scale(cs, scale, freq): freq in units of `scale` Hz (scale 1 for
 * clocksource_register_hz, 1000 for clocksource_register_khz). freq 0 keeps a preset mult/shift.
 */
export function clocksourceUpdateFreqScale(cs: Clocksource, scale: number, freq: number): void {
  if (freq) {
    // Longest conversion range without 64-bit overflow: mask/freq seconds, capped at 10 minutes
    // for 64-bit counters so that the resolution stays good.
    let sec = cs.mask / BigInt(freq) / BigInt(scale);
    if (sec === 0n) sec = 1n;
    else if (sec > 600n && cs.mask > U32_MAX) sec = 600n;
    const ms = clocksCalcMultShift(freq, Number(NSEC_PER_SEC / BigInt(scale)), Number(sec) * scale);
    cs.mult = ms.mult;
    cs.shift = ms.shift;
    cs.freqHz = BigInt(freq) * BigInt(scale);
  }
  // Uncertainty margin: one counter tick or 2 * WATCHDOG_MAX_SKEW, whichever is larger.
  if (scale && freq && !cs.uncertaintyMarginNs) {
    cs.uncertaintyMarginNs = NSEC_PER_SEC / (BigInt(scale) * BigInt(freq));
    if (cs.uncertaintyMarginNs < 2n * WATCHDOG_MAX_SKEW) cs.uncertaintyMarginNs = 2n * WATCHDOG_MAX_SKEW;
  } else if (!cs.uncertaintyMarginNs) {
    cs.uncertaintyMarginNs = WATCHDOG_THRESHOLD;
  }
  cs.maxadj = clocksourceMaxAdjustment(cs.mult);
  // Keep mult +/- maxadj inside u32: halve mult and shift until it fits.
  while (freq && (cs.mult + cs.maxadj > 0xffff_ffff || cs.mult - cs.maxadj < 0)) {
    cs.mult >>>= 1;
    cs.shift--;
    cs.maxadj = clocksourceMaxAdjustment(cs.mult);
  }
  updateMaxDeferment(cs);
}
