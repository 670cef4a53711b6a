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

  /** Oscillator phase (its own elapsed ns) at true time t ≥ the last rate change. */
  phaseAt(t: Ns): Ns {
    const d = t - this.segStart;
    // rounded to the nearest ns (>> on a BigInt floors, also for negative products)
    const adj = (d * this.rateFrac + HALF) >> FRAC_BITS;
    return this.segPhase + d + adj;
  }

  /** Change the rate at true time t (phase stays continuous). */
  setPpmAt(t: Ns, ppm: number): void {
    this.segPhase = this.phaseAt(t);
    this.segStart = t;
    this.ppmNow = ppm;
    this.rateFrac = Oscillator.toFrac(ppm);
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
