// chrony's sourcestats.c: a source's sample history (offset, delay, dispersion per sample), the weighted
// regression that estimates its offset, frequency and skew, the sample with the smallest root distance,
// and the slewing of all samples when the local clock is adjusted. Times are local (cooked) ns; offsets
// are seconds with sourcestats' sign: positive = local clock fast of the source. As chrony 4.3 (Debian 12,
// the lab's guest) has it. Not modelled: the jitter-asymmetry correction (off for `server` by default).
import type { Ns } from '../../core/index.ts';
import { findBestRegression, median, MIN_SAMPLES_FOR_REGRESS, REGRESS_RUNS_RATIO, tCoef } from './regress.ts';

export const MAX_SAMPLES = 64;
export const WORST_CASE_FREQ_BOUND = 2000.0 / 1.0e6;
export const MIN_SKEW = 1.0e-12;
/** sourcestats.c MAX_SKEW in 4.3 (1.0e+02; chrony's git changed it to 1.0 after 4.8). */
export const MAX_SKEW = 100.0;
export const MIN_STDDEV = 1.0e-9;
export const WORST_CASE_STDDEV_BOUND = 4.0;
const SD_TO_DIST_RATIO = 0.7;

/** An NTP measurement as ntp_core.c hands it on (NTP sign: positive offset = local clock slow). */
export interface NtpSample {
  time: Ns;
  offset: number;
  peerDelay: number;
  peerDispersion: number;
  rootDelay: number;
  rootDispersion: number;
}

interface Stored {
  time: Ns;
  offset: number; // local fast positive
  peerDelay: number;
  peerDispersion: number;
  rootDelay: number;
  rootDispersion: number;
}

const secs = (a: Ns, b: Ns): number => Number(a - b) / 1e9;
const clamp = (lo: number, x: number, hi: number): number => Math.min(hi, Math.max(lo, x));

export class SourceStats {
  private samples: Stored[] = [];
  /** Samples pruned from the register but kept to extend the runs test (runs_samples): time, offset, delay. */
  private runs: { time: Ns; offset: number; peerDelay: number }[] = [];
  regressionOk = false;
  bestSingleSample = 0;
  estimatedFrequency = 0;
  estimatedFrequencySd = WORST_CASE_FREQ_BOUND;
  skew = WORST_CASE_FREQ_BOUND;
  estimatedOffset = 0;
  estimatedOffsetSd = WORST_CASE_STDDEV_BOUND;
  offsetTime: Ns = 0n;
  stdDev = WORST_CASE_STDDEV_BOUND;
  nruns = 0;

  constructor(
    /** LCL_GetSysPrecisionAsQuantum(), seconds. */
    private readonly precision: number,
    private readonly minSamples = 1,
    private readonly maxSamples = MAX_SAMPLES,
  ) {}

  get nSamples(): number {
    return this.samples.length;
  }

  /** SST_ResetInstance. */
  reset(): void {
    this.samples = [];
    this.runs = [];
    this.regressionOk = false;
    this.bestSingleSample = 0;
    this.estimatedFrequency = 0;
    this.estimatedFrequencySd = WORST_CASE_FREQ_BOUND;
    this.skew = WORST_CASE_FREQ_BOUND;
    this.estimatedOffset = 0;
    this.estimatedOffsetSd = WORST_CASE_STDDEV_BOUND;
    this.offsetTime = 0n;
    this.stdDev = WORST_CASE_STDDEV_BOUND;
    this.nruns = 0;
  }

  /** prune_register: the oldest samples become runs samples, at most n × (REGRESS_RUNS_RATIO − 1) of them. */
  private prune(newOldest: number): void {
    if (newOldest === 0) return;
    for (const d of this.samples.splice(0, newOldest)) this.runs.push({ time: d.time, offset: d.offset, peerDelay: d.peerDelay });
    const keep = this.samples.length * (REGRESS_RUNS_RATIO - 1);
    if (this.runs.length > keep) this.runs.splice(0, this.runs.length - keep);
  }

  /** SST_MinRoundTripDelay: the smallest peer delay among the samples and runs samples. */
  minRoundTripDelay(): number {
    let min = Number.MAX_VALUE;
    for (const d of this.runs) if (d.peerDelay < min) min = d.peerDelay;
    for (const d of this.samples) if (d.peerDelay < min) min = d.peerDelay;
    return min;
  }

  /** SST_AccumulateSample: the offset's sign flips here (sourcestats keeps local-fast positive). */
  accumulate(s: NtpSample): void {
    if (this.samples.length > 0 && (this.samples.length === MAX_SAMPLES || this.samples.length === this.maxSamples)) this.prune(1);
    const last = this.samples[this.samples.length - 1];
    if (last && last.time >= s.time) this.reset(); // "Out of order sample detected"
    this.samples.push({ ...s, offset: -s.offset });
  }

  /** SST_DoNewRegression. */
  doNewRegression(): void {
    const n = this.samples.length;
    const m = this.runs.length;
    const last = this.samples[n - 1];
    const timesBack = this.samples.map((s) => (last ? secs(s.time, last.time) : 0));
    const offsets = this.samples.map((s) => s.offset);
    const runsBack = this.runs.map((s) => (last ? secs(s.time, last.time) : 0));
    const runsOffsets = this.runs.map((s) => s.offset);
    const weights: number[] = [];
    if (n > 0) {
      const dist = this.samples.map((s) => 0.5 * s.peerDelay + s.peerDispersion);
      let minDistance = Math.min(...dist);
      const medianDistance = median(dist);
      const sd = clamp(this.precision, (medianDistance - minDistance) / SD_TO_DIST_RATIO, minDistance);
      minDistance += this.precision;
      for (const d of dist) {
        let w = 1.0;
        if (d > minDistance) w += (d - minDistance) / sd;
        weights.push(w * w);
      }
    }
    const r = findBestRegression([...runsBack, ...timesBack], [...runsOffsets, ...offsets], weights, this.minSamples, m);
    this.regressionOk = r !== null;
    let start = 0;
    if (r) {
      this.estimatedFrequency = r.b1;
      this.estimatedFrequencySd = clamp(MIN_SKEW, r.sb1, MAX_SKEW);
      this.skew = clamp(MIN_SKEW, r.sb1 * tCoef(r.dof), MAX_SKEW);
      this.estimatedOffset = r.b0;
      this.offsetTime = last!.time;
      this.estimatedOffsetSd = r.sb0;
      this.stdDev = Math.max(MIN_STDDEV, Math.sqrt(r.s2));
      this.nruns = r.nruns;
      start = r.start;
      this.prune(r.start);
    } else {
      this.estimatedFrequencySd = WORST_CASE_FREQ_BOUND;
      this.skew = WORST_CASE_FREQ_BOUND;
      this.estimatedOffsetSd = WORST_CASE_STDDEV_BOUND;
      this.stdDev = WORST_CASE_STDDEV_BOUND;
      this.nruns = 0;
      if (last) {
        this.estimatedOffset = last.offset;
        this.offsetTime = last.time;
      } else this.estimatedOffset = 0;
    }
    this.findBestSampleIndex(timesBack.slice(start));
  }

  /** find_best_sample_index: the sample with the tightest root distance bound now. */
  private findBestSampleIndex(timesBack: readonly number[]): void {
    let best = -1;
    let bestDistance = Number.MAX_VALUE;
    this.samples.forEach((s, i) => {
      const d = s.rootDispersion + -timesBack[i]! * this.skew + 0.5 * s.rootDelay;
      if (d < bestDistance) {
        bestDistance = d;
        best = i;
      }
    });
    if (best >= 0) this.bestSingleSample = best;
  }

  /** SST_GetFrequencyRange → the skew ntp_core.c uses for the peer dispersion. */
  frequencyRangeSkew(): number {
    return this.skew > WORST_CASE_FREQ_BOUND ? WORST_CASE_FREQ_BOUND : this.skew;
  }

  /** SST_PredictOffset (local-fast positive). */
  predictOffset(when: Ns): number {
    if (this.samples.length < MIN_SAMPLES_FOR_REGRESS) return this.samples.length > 0 ? this.samples[this.samples.length - 1]!.offset : 0;
    return this.estimatedOffset + secs(when, this.offsetTime) * this.estimatedFrequency;
  }

  /** SST_GetSelectionData; null when the source cannot be selected yet. */
  selectionData(now: Ns): { offset: number; lo: number; hi: number; rootDistance: number; stdDev: number } | null {
    const s = this.samples[this.bestSingleSample];
    if (!s || !this.regressionOk) return null;
    const elapsed = Math.abs(secs(now, s.time));
    const offset = s.offset + elapsed * this.estimatedFrequency;
    const rootDistance = 0.5 * s.rootDelay + s.rootDispersion + elapsed * this.skew;
    return { offset, lo: offset - rootDistance, hi: offset + rootDistance, rootDistance, stdDev: this.stdDev };
  }

  /** SST_GetTrackingData. */
  trackingData(): {
    refTime: Ns;
    offset: number;
    offsetSd: number;
    frequency: number;
    frequencySd: number;
    skew: number;
    rootDelay: number;
    rootDispersion: number;
  } {
    const s = this.samples[this.bestSingleSample]!;
    return {
      refTime: this.offsetTime,
      offset: this.estimatedOffset,
      offsetSd: this.estimatedOffsetSd,
      frequency: this.estimatedFrequency,
      frequencySd: this.estimatedFrequencySd,
      skew: this.skew,
      rootDelay: s.rootDelay,
      rootDispersion: s.rootDispersion + this.skew * secs(this.offsetTime, s.time) + this.estimatedOffsetSd,
    };
  }

  /** SST_SlewSamples: the local clock changed frequency by dfreq and offset by doffset at `when`. */
  slewSamples(when: Ns, dfreq: number, doffset: number): void {
    if (this.samples.length === 0) return;
    for (const s of [...this.runs, ...this.samples]) {
      const delta = secs(when, s.time) * dfreq - doffset;
      s.time += BigInt(Math.round(delta * 1e9));
      s.offset += delta;
    }
    const delta = secs(when, this.offsetTime) * dfreq - doffset;
    this.offsetTime += BigInt(Math.round(delta * 1e9));
    this.estimatedOffset += delta;
    this.estimatedFrequency = (this.estimatedFrequency - dfreq) / (1.0 - dfreq);
  }
}
