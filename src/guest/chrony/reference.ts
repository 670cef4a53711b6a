// chrony's reference.c: what chronyd does with the selected (combined) source's estimate — the
// makestep decision, the weighted update of frequency and skew (get_clock_estimates), the correction
// rate handed to the slew, the moving average of squared offsets (RMS offset) and the `tracking` report.
import type { Ns } from '../../core/index.ts';
import type { LocalClock } from './local.ts';

export interface ReferenceOptions {
  /** `makestep threshold limit`: step when |offset| > threshold during the first `limit` updates (−1: always). */
  makestep?: { threshold: number; limit: number } | null;
  /** `maxupdateskew`, ppm (default 1000). */
  maxUpdateSkewPpm?: number;
  /** `corrtimeratio` (default 3). */
  correctionTimeRatio?: number;
  /** `maxclockerror`, ppm (default 1). */
  maxClockErrorPpm?: number;
}

/** One clock adjustment chronyd made: a step (ADJ_SETOFFSET) or the start of a slew. */
export interface ChronyAdjustment {
  /** Local (guest REALTIME) time of the update, ns. */
  at: Ns;
  /** Seconds since chronyd started (its monotonic clock). */
  sinceStart: number;
  kind: 'step' | 'slew';
  /** Offset corrected, seconds (positive = the clock was fast and goes back). */
  offset: number;
  /** Absolute frequency after the update, ppm. */
  freqPpm: number;
}

export interface TrackingReport {
  referenceId: string;
  stratum: number;
  /** Local time of the last update, ns (0 before the first). */
  refTime: Ns;
  /** Local clock minus NTP time now, seconds: chronyc's "System time … fast/slow of NTP time". */
  systemTime: number;
  lastOffset: number;
  rmsOffset: number;
  /** chronyc "Frequency … ppm slow/fast": the rate error chronyd compensates (positive = clock fast). */
  frequencyPpm: number;
  residualFreqPpm: number;
  skewPpm: number;
  rootDelay: number;
  rootDispersion: number;
  updateInterval: number;
  leapStatus: 'Normal' | 'Not synchronised';
}

const secs = (a: Ns, b: Ns): number => Number(a - b) / 1e9;

export class Reference {
  private makeStepLimit: number;
  private readonly makeStepThreshold: number;
  private readonly maxUpdateSkew: number;
  private readonly correctionTimeRatio: number;
  private readonly maxClockError: number;
  synchronised = false;
  stratum = 0;
  refId = '';
  refTime: Ns = 0n;
  skew = 1.0; // "i.e. rather bad" until the first update (no drift file)
  residualFreq = 0;
  rootDelay = 0;
  rootDispersion = 0;
  offsetSd = 0;
  frequencySd = 0;
  lastRefUpdate: number | null = null;
  lastRefUpdateInterval = 0;
  lastOffset = 0;
  private avg2Offset = 0;
  private avg2Moving = false;
  updates = 0;
  readonly adjustments: ChronyAdjustment[] = [];
  /** Called after each clock update. */
  onUpdate: (() => void) | null = null;

  constructor(
    private readonly local: LocalClock,
    /** Monotonic seconds (SCH_GetLastEventMonoTime). */
    private readonly mono: () => number,
    o: ReferenceOptions = {},
  ) {
    this.makeStepLimit = o.makestep?.limit ?? 0;
    this.makeStepThreshold = o.makestep?.threshold ?? 0;
    this.maxUpdateSkew = Math.abs(o.maxUpdateSkewPpm ?? 1000) * 1.0e-6;
    this.correctionTimeRatio = o.correctionTimeRatio ?? 3.0;
    this.maxClockError = (o.maxClockErrorPpm ?? 1.0) * 1.0e-6;
  }

  /** is_step_limit_reached: counts down the update limit and compares the offset left after slewing. */
  private isStepLimitReached(offset: number, offsetCorrection: number): boolean {
    if (this.makeStepLimit === 0) return false;
    if (this.makeStepLimit > 0) this.makeStepLimit--;
    return Math.abs(offset - offsetCorrection) > this.makeStepThreshold;
  }

  /** get_clock_estimates: weight the measured frequency by how its skew compares with ours. */
  private clockEstimates(measuredFreq: number, measuredSkew: number): { freq: number; skew: number; residual: number } {
    const expectedFreq = 0.0;
    const expectedSkew = this.skew;
    let gain: number;
    if (Math.abs(measuredSkew) > this.maxUpdateSkew) gain = 0.0;
    else gain = (3.0 * expectedSkew ** 2) / (3.0 * expectedSkew ** 2 + measuredSkew ** 2);
    gain = Math.min(1, Math.max(0, gain));
    const freq = expectedFreq + gain * (measuredFreq - expectedFreq);
    const residual = measuredFreq - freq;
    const extraSkew = Math.sqrt((expectedFreq - freq) ** 2 * (1.0 - gain) + (measuredFreq - freq) ** 2 * gain);
    return { freq, skew: expectedSkew + gain * (measuredSkew - expectedSkew) + extraSkew, residual };
  }

  /** get_correction_rate: correct an offset of one stddev in corrtimeratio × the update interval. */
  private correctionRate(offsetSd: number, updateInterval: number): number {
    return this.correctionTimeRatio * 0.5 * offsetSd * updateInterval;
  }

  /** get_root_dispersion. */
  rootDispersionAt(now: Ns): number {
    if (this.refTime === 0n) return 1.0;
    return this.rootDispersion + Math.abs(secs(now, this.refTime)) * (this.skew + Math.abs(this.residualFreq) + this.maxClockError);
  }

  /** REF_SetReference (normal mode). `offset` is local-fast positive, at `refTime`. */
  setReference(
    stratum: number,
    refId: string,
    refTime: Ns,
    offsetIn: number,
    offsetSd: number,
    frequencyIn: number,
    frequencySd: number,
    skewIn: number,
    rootDelay: number,
    rootDispersion: number,
  ): void {
    const monoNow = this.mono();
    const rawNow = this.local.readRaw();
    const uncorrectedOffset = this.local.offsetCorrection(rawNow);
    const now = rawNow + BigInt(Math.round(uncorrectedOffset * 1e9));
    const elapsed = secs(now, refTime);
    const offset = offsetIn + elapsed * frequencyIn;
    const updateInterval = this.lastRefUpdate !== null ? monoNow - this.lastRefUpdate : 0.0;
    const est = this.clockEstimates(frequencyIn, skewIn);
    this.synchronised = true;
    this.stratum = stratum + 1;
    this.refId = refId;
    this.refTime = refTime;
    this.skew = est.skew;
    this.residualFreq = est.residual;
    this.rootDelay = rootDelay;
    this.rootDispersion = rootDispersion;
    this.frequencySd = frequencySd;
    this.offsetSd = offsetSd;
    this.lastRefUpdate = monoNow;
    this.lastRefUpdateInterval = updateInterval;
    this.lastOffset = offset;
    let accumulate = offset;
    let step = 0.0;
    if (this.isStepLimitReached(offset, uncorrectedOffset)) {
      accumulate = uncorrectedOffset;
      step = offset - uncorrectedOffset;
    }
    this.local.accumulateFrequencyAndOffset(est.freq, accumulate, this.correctionRate(offsetSd, updateInterval));
    this.adjustments.push({ at: rawNow, sinceStart: monoNow, kind: 'slew', offset: accumulate, freqPpm: this.local.currentFreqPpm });
    if (step !== 0.0) {
      this.local.applyStepOffset(step); // "System clock was stepped by %.6f seconds"
      this.adjustments.push({ at: rawNow, sinceStart: monoNow, kind: 'step', offset: step, freqPpm: this.local.currentFreqPpm });
    }
    // update_sync_status
    const el = Math.abs(secs(now, this.refTime));
    this.local.setSyncStatus(true, this.offsetSd + el * this.frequencySd, this.rootDelay / 2.0 + this.rootDispersionAt(now));
    // the moving average of squared offsets, quickly on start
    if (this.avg2Moving) this.avg2Offset += 0.1 * (offset * offset - this.avg2Offset);
    else {
      if (this.avg2Offset > 0.0 && this.avg2Offset < offset * offset) this.avg2Moving = true;
      this.avg2Offset = offset * offset;
    }
    this.updates++;
    this.onUpdate?.();
  }

  /** REF_GetTrackingReport, with chronyc's signs. */
  tracking(): TrackingReport {
    const raw = this.local.readRaw();
    const correction = this.local.offsetCorrection(raw);
    const now = raw + BigInt(Math.round(correction * 1e9));
    const synced = this.synchronised;
    return {
      referenceId: synced ? this.refId : '00000000', // chronyc: "Reference ID : 00000000 ()" before the first update
      stratum: synced ? this.stratum : 0,
      refTime: this.refTime,
      systemTime: -correction,
      lastOffset: this.lastOffset,
      rmsOffset: Math.sqrt(this.avg2Offset),
      frequencyPpm: this.local.currentFreqPpm,
      residualFreqPpm: this.residualFreq * 1.0e6,
      skewPpm: this.skew * 1.0e6,
      rootDelay: this.rootDelay,
      rootDispersion: this.rootDispersionAt(now),
      updateInterval: this.lastRefUpdateInterval,
      leapStatus: synced ? 'Normal' : 'Not synchronised',
    };
  }
}
