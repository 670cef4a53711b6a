// A host's crystal oscillator (hardware below every host clock, so in core: the world's hosts and a VM
// built without a world share it): the physical frequency every host counter (TSC, clocks) ticks from.
//
// Its rate error is a fixed frequency offset in ppm plus an optional random walk ("wander"): every
// `wanderIntervalNs` the error takes a normal step of `wanderSigmaPpm`. Phase (the oscillator's own
// idea of elapsed ns) is kept exactly: the error is held as a 2^-64 fixed-point fraction and each
// piece of the piecewise-linear phase is integrated in BigInt, so a year of phase has no rounding drift.
import type { Prng } from './prng.ts';
import type { Cycles, Ns } from './time.ts';

const FRAC_BITS = 64n;
const ONE = 1n << FRAC_BITS;
const HALF = 1n << (FRAC_BITS - 1n);
/** Below this, a time, a phase and their difference fit the int64 fast path of phaseAt. */
const INT64_FAST_BELOW = 1n << 62n;

export interface OscillatorConfig {
  /** Frequency error in parts per million (positive: runs fast). */
  ppm: number;
  /** Random-walk step size (standard deviation, ppm) per interval; 0 disables wander. */
  wanderSigmaPpm?: number;
  /** Interval between random-walk steps, ns. */
  wanderIntervalNs?: Ns;
}

export class Oscillator {
  private segStart: Ns = 0n; // true time where the current rate began
  private segPhase: Ns = 0n; // oscillator phase at segStart
  private rateFrac: bigint; // rate error in units of 2^-64
  // rateFrac = rateHi·2^32 + rateLo (rateHi floored, rateLo in [0, 2^32)), for phaseAt's int64 path
  private rateHi = 0n;
  private rateLo = 0n;
  /** The segment (start, phase, rate) lets phaseAt take the int64 path for t < INT64_FAST_BELOW. */
  private segInt64 = false;
  private ppmNow: number;
  readonly wanderSigmaPpm: number;
  readonly wanderIntervalNs: Ns;

  constructor(
    cfg: OscillatorConfig,
    /** Where wander steps come from; none for a crystal that does not wander. */
    private readonly prng: Prng | null = null,
  ) {
    this.ppmNow = cfg.ppm;
    this.rateFrac = Oscillator.toFrac(cfg.ppm);
    this.splitSegment();
    this.wanderSigmaPpm = cfg.wanderSigmaPpm ?? 0;
    this.wanderIntervalNs = cfg.wanderIntervalNs ?? 1_000_000_000n;
  }

  private static toFrac(ppm: number): bigint {
    return BigInt(Math.round(ppm * 1e-6 * Number(ONE)));
  }

  /** Current frequency error, ppm (as represented: quantized to 2^-64). */
  get ppm(): number {
    return (Number(this.rateFrac) / Number(ONE)) * 1e6;
  }

  /**
   * A TscPlan of `counter` over the current segment, plus `add`: phaseAt(t) for t in [segStart, 2^62) on
   * its int64 path (or, at a zero rate error, segPhase + d below 2^63); null when the segment allows none.
   */
  tscPlan(counter: TscCounter, add: bigint): TscPlan | null {
    const rateZero = this.rateFrac === 0n;
    if (rateZero ? this.segStart < 0n || this.segPhase < 0n || this.segPhase >= INT64_FAST_BELOW : !this.segInt64) return null;
    const below = counter.int64Below < 1n << 63n ? counter.int64Below : (1n << 63n) - 1n;
    return new TscPlan(this.segStart, this.segPhase, this.rateHi, this.rateLo, rateZero, counter.khz, below, BigInt.asIntN(64, add));
  }

  /** Oscillator phase (its own elapsed ns) at true time t ≥ the last rate change. */
  phaseAt(t: Ns): Ns {
    // a crystal without error: d·0 rounds to 0 (small BigInts: faster than the guards of the int64 path)
    if (this.rateFrac === 0n) return this.segPhase + (t - this.segStart);
    if (this.segInt64 && t >= this.segStart && t < INT64_FAST_BELOW) return this.phaseAtInt64(t);
    const d = t - this.segStart;
    // rounded to the nearest ns (>> on a BigInt floors, also for negative products)
    const adj = (d * this.rateFrac + HALF) >> FRAC_BITS;
    return this.segPhase + d + adj;
  }

  /**
   * phaseAt's value with every intermediate in int64 (BigInt.asIntN/asUintN(64, …), which V8 computes
   * without allocating): the 2^-64 rounding of d·rateFrac taken through 32-bit halves of both factors.
   * With d = dh·2^32 + dl and rateFrac = rh·2^32 + rl, d·rateFrac + 2^63 = dh·rh·2^64 + m·2^32 + (dl·rl mod 2^32)
   * where m = dh·rl + dl·rh + ⌊dl·rl / 2^32⌋ + 2^31, so the rounded quotient is dh·rh + ⌊m / 2^32⌋.
   * Needs 0 ≤ d < 2^62, |rateFrac| < 2^62 and 0 ≤ segPhase < 2^62 (segInt64): then |m| < 2^63 and the sum fits.
   */
  private phaseAtInt64(t: Ns): Ns {
    const d = BigInt.asIntN(64, t - this.segStart);
    const dl = BigInt.asUintN(32, d);
    const dh = d >> 32n;
    const lowHi = BigInt.asUintN(64, dl * this.rateLo) >> 32n;
    const m = BigInt.asIntN(64, dh * this.rateLo + dl * this.rateHi + lowHi + 0x8000_0000n);
    return BigInt.asIntN(64, this.segPhase + d + BigInt.asIntN(64, dh * this.rateHi) + (m >> 32n));
  }

  /** rateHi/rateLo and whether the segment admits the int64 path. */
  private splitSegment(): void {
    const r = this.rateFrac;
    this.rateHi = r >> 32n;
    this.rateLo = BigInt.asUintN(32, r);
    this.segInt64 =
      r > -INT64_FAST_BELOW && r < INT64_FAST_BELOW && this.segStart >= 0n && this.segPhase >= 0n && this.segPhase < INT64_FAST_BELOW;
  }

  /** Change the rate at true time t (phase stays continuous). */
  setPpmAt(t: Ns, ppm: number): void {
    this.segPhase = this.phaseAt(t);
    this.segStart = t;
    this.ppmNow = ppm;
    this.rateFrac = Oscillator.toFrac(ppm);
    this.splitSegment();
  }

  /** One random-walk step at true time t. */
  wanderStep(t: Ns): void {
    if (!this.prng) throw new RangeError('this oscillator has no PRNG to wander with');
    this.setPpmAt(t, this.ppmNow + this.prng.normal(0, this.wanderSigmaPpm));
  }
}

/**
 * A TSC counting at its nominal kHz in the crystal's time: cycles = phase · kHz / 10^6, truncated. The one
 * host TSC model: the world's hosts (src/world/host.ts) and a VM built without a world (src/vmm/machine.ts).
 */
export function tscCyclesAt(phaseNs: Ns, khz: bigint): Cycles {
  // the same quotient as (phaseNs · khz) / 10^6, through the whole ms of phase first: no product
  // beyond 64 bits (a slow BigInt) for a century of phase at 100 GHz
  const ms = phaseNs / 1_000_000n;
  return ms * khz + ((phaseNs - ms * 1_000_000n) * khz) / 1_000_000n;
}

/**
 * tscCyclesAt() at one rate, in int64 (BigInt.asIntN(64, …): no allocation in V8's optimized code) for
 * phases in [0, int64Below), where ms·kHz and the sum stay below 2^63; exactly tscCyclesAt elsewhere.
 */
export class TscCounter {
  /** ⌊(2^63 − 1) / kHz⌋ whole ms (ms·kHz + the sub-ms part's cycles < kHz ≤ 2^63 − 1), and the phase itself an s64. */
  readonly int64Below: bigint;

  constructor(readonly khz: bigint) {
    if (khz <= 0n) throw new RangeError(`TSC rate must be positive, got ${khz} kHz`);
    const below = (((1n << 63n) - 1n) / khz) * 1_000_000n;
    this.int64Below = below < 1n << 63n ? below : 1n << 63n;
  }

  cyclesAt(phaseNs: Ns): Cycles {
    if (phaseNs < 0n || phaseNs >= this.int64Below) return tscCyclesAt(phaseNs, this.khz);
    const p = BigInt.asIntN(64, phaseNs);
    const khz = this.khz;
    const ms = p / 1_000_000n;
    return BigInt.asIntN(64, BigInt.asIntN(64, ms * khz) + BigInt.asIntN(64, (p - ms * 1_000_000n) * khz) / 1_000_000n);
  }
}

/**
 * A TSC read as a formula of true time, for a quiet span in which nothing but time moves: the value is
 * (add + cyclesAt(phaseAt(t))) mod 2^64, with phaseAt an Oscillator's current segment and cyclesAt a
 * TscCounter at `khz` on their int64 paths (t in [segStart, 2^62), phase in [0, int64Below)); `add` (an
 * s64 bit pattern) is what the readers above the counter add: a host's initial TSC, a vCPU's TSC offset.
 * Each layer that reads the TSC through another states its own `add` (withTscAdd) or none (null: its
 * read is not of this form). The timekeeper's WebAssembly loop (src/guest/quiet-wasm.ts) reads by it.
 */
export class TscPlan {
  constructor(
    readonly segStart: Ns,
    readonly segPhase: Ns,
    readonly rateHi: bigint,
    readonly rateLo: bigint,
    readonly rateZero: boolean,
    readonly khz: bigint,
    /** TscCounter.int64Below, at most 2^63 − 1. */
    readonly int64Below: bigint,
    readonly add: bigint,
  ) {}
}

/** `plan` read through a layer that adds `add` (mod 2^64). */
export function withTscAdd(plan: TscPlan | null, add: bigint): TscPlan | null {
  if (!plan) return null;
  const { segStart, segPhase, rateHi, rateLo, rateZero, khz, int64Below } = plan;
  return new TscPlan(segStart, segPhase, rateHi, rateLo, rateZero, khz, int64Below, BigInt.asIntN(64, plan.add + add));
}

/** The plan's value at true time t, in BigInts (what the WebAssembly loop computes; tests). */
export function tscPlanRead(plan: TscPlan, t: Ns): Cycles | null {
  if (t < plan.segStart || t >= INT64_FAST_BELOW) return null;
  const d = t - plan.segStart;
  const rateFrac = plan.rateHi * (1n << 32n) + plan.rateLo;
  const phase = plan.segPhase + d + (plan.rateZero ? 0n : (d * rateFrac + HALF) >> FRAC_BITS);
  if (phase < 0n || phase >= plan.int64Below) return null;
  return BigInt.asUintN(64, plan.add + tscCyclesAt(phase, plan.khz));
}
