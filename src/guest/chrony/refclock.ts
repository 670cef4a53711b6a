// chronyd's `refclock PHC` source: refclock.c (the driver poll every 2^dpoll s, RCL_AddSample, the
// filtered sample handed to the source every 2^poll s), samplefilt.c (the median filter that combines
// the 60 % of a poll's samples closest to the median) and refclock_phc.c + sys_linux.c (the PHC read
// with PTP_SYS_OFFSET_PRECISE, else _EXTENDED, else PTP_SYS_OFFSET, the first that works kept).
// Defaults are conf.c parse_refclock's: poll 4, dpoll 0, filter 64, offset 0, delay 1e-9, precision 0
// (so the system's), stratum 0; reference ID "PHC" + index ("PHC0").
// HCL_ProcessReadings (hwclock.c) combines the readings whose delay lies in its delay-quantile window;
// the quantile estimates start at the first delays (quantiles.c insert_initial_value) and the model's
// readings all have the same delay, so every reading is combined (quality 2), as chronyd would.
// Not modelled: the slew-error dispersion of LCL_GetOffsetCorrection, maxunreach, the extpps, pps, lock,
// tai and local options.
import type { Scheduler, Timer } from '../../core/index.ts';
import type { Ns } from '../../core/index.ts';
import type { LocalClock } from './local.ts';
import type { NtpSample } from './sourcestats.ts';
import { SourceStats } from './sourcestats.ts';

/** refclock_phc.c PHC_READINGS. */
export const PHC_READINGS = 25;
/** samplefilt.c MIN_SAMPLES / MAX_SAMPLES. */
const SPF_MIN_SAMPLES = 1;
const SPF_MAX_SAMPLES = 256;

export type PhcError = 'ENODEV' | 'EOPNOTSUPP';
/** [system time before, PHC time, system time after], ns. */
export type PhcReadingNs = [Ns, Ns, Ns];

/** The PHC's reading ioctls (src/guest/ptp-kvm.ts's PtpKvm has them). */
export interface PhcDevice {
  sysOffsetPrecise(): PhcReadingNs | PhcError;
  sysOffsetExtended(): PhcReadingNs[] | PhcError;
  sysOffset(n: number): PhcReadingNs[] | PhcError;
}

/** `refclock PHC <device> [poll N] [dpoll N] [offset S] [delay S] [precision S] [filter N] [stratum N] [nocrossts]`. */
export interface RefclockPhcOptions {
  device: string;
  poll?: number;
  dpoll?: number;
  offset?: number;
  delay?: number;
  precision?: number;
  filter?: number;
  stratum?: number;
  nocrossts?: boolean;
}

/** A refclock's reference ID: refclock.c takes "%3.3s" of the driver name and the index's last digit. */
export function refclockRefId(driver: string, index: number): string {
  const r = driver.slice(0, 3).padEnd(3, '\0').split('');
  r.push(String(index % 10));
  if (index >= 10) r[2] = String(Math.floor(index / 10) % 10);
  return r.join('').replace(/\0/g, '');
}

const secs = (a: Ns, b: Ns): number => Number(a - b) / 1e9;

// regress.c RGR_GetChi2Coef: the 90 % quantile of chi-square for 1..64 degrees of freedom (float in C).
const CHI2_COEFS = [
  2.706, 4.605, 6.251, 7.779, 9.236, 10.645, 12.017, 13.362, 14.684, 15.987, 17.275, 18.549, 19.812, 21.064, 22.307, 23.542, 24.769, 25.989,
  27.204, 28.412, 29.615, 30.813, 32.007, 33.196, 34.382, 35.563, 36.741, 37.916, 39.087, 40.256, 41.422, 42.585, 43.745, 44.903, 46.059,
  47.212, 48.363, 49.513, 50.66, 51.805, 52.949, 54.09, 55.23, 56.369, 57.505, 58.641, 59.774, 60.907, 62.038, 63.167, 64.295, 65.422,
  66.548, 67.673, 68.796, 69.919, 71.04, 72.16, 73.279, 74.397, 75.514, 76.63, 77.745, 78.86,
];
export function chi2Coef(dof: number): number {
  return dof <= 64 ? Math.fround(CHI2_COEFS[dof - 1]!) : 1.2 * dof;
}

/** regress.c RGR_WeightedRegression (n ≥ 3; w large = less reliable). */
export function weightedRegression(
  x: readonly number[],
  y: readonly number[],
  w: readonly number[],
): { b0: number; b1: number; s2: number; sb0: number; sb1: number } {
  const n = x.length;
  let W = 0;
  let U = 0;
  for (let i = 0; i < n; i++) {
    U += x[i]! / w[i]!;
    W += 1.0 / w[i]!;
  }
  const u = U / W;
  let P = 0;
  let Q = 0;
  let V = 0;
  for (let i = 0; i < n; i++) {
    const ui = x[i]! - u;
    P += y[i]! / w[i]!;
    Q += (y[i]! * ui) / w[i]!;
    V += (ui * ui) / w[i]!;
  }
  const b1 = Q / V;
  const b0 = P / W - b1 * u;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const diff = y[i]! - b0 - b1 * x[i]!;
    s2 += (diff * diff) / w[i]!;
  }
  s2 /= n - 2;
  const sb1 = Math.sqrt(s2 / V);
  const aa = u * sb1;
  const sb0 = Math.sqrt(s2 / W + aa * aa);
  return { b0, b1, s2: s2 * (n / W), sb0, sb1 };
}

/** samplefilt.c: the samples of one poll, oldest first. */
export class SampleFilter {
  private samples: NtpSample[] = [];
  private readonly minSamples: number;
  private readonly maxSamples: number;
  private readonly maxVar: number;
  private readonly combineRatio: number;
  avgVar: number;
  private avgVarN = 0;

  constructor(minSamples: number, maxSamples: number, maxDispersion: number, combineRatio: number, sysPrecision: number) {
    this.minSamples = Math.min(SPF_MAX_SAMPLES, Math.max(SPF_MIN_SAMPLES, minSamples));
    this.maxSamples = Math.max(this.minSamples, Math.min(SPF_MAX_SAMPLES, Math.max(SPF_MIN_SAMPLES, maxSamples)));
    this.maxVar = maxDispersion * maxDispersion;
    this.combineRatio = Math.min(1, Math.max(0, combineRatio));
    this.avgVar = sysPrecision * sysPrecision; // the first estimate: the system precision
  }

  get used(): number {
    return this.samples.length;
  }

  /** SPF_AccumulateSample: sample times must increase strictly. */
  accumulate(s: NtpSample): boolean {
    const last = this.samples[this.samples.length - 1];
    if (last && last.time >= s.time) return false; // "filter non-increasing sample time"
    if (this.samples.length >= this.maxSamples) this.samples.shift();
    this.samples.push({ ...s });
    return true;
  }

  /** select_samples: indices (oldest first) of the samples closest to the median offset. */
  private select(): NtpSample[] {
    const all = this.samples;
    let picked: number[] = [];
    if (all.length > 4) {
      const minDisp = Math.min(...all.map((s) => s.peerDispersion));
      all.forEach((s, i) => {
        if (s.peerDispersion <= 1.5 * minDisp) picked.push(i);
      });
    }
    if (picked.length < 4) picked = all.map((_, i) => i);
    const j = picked.length;
    const byOffset = [...picked].sort((a, b) => all[a]!.offset - all[b]!.offset); // qsort by offset
    let from = 0;
    if (j > 2) from = Math.min(Math.max(1, Math.trunc((j * (1.0 - this.combineRatio)) / 2.0)), Math.trunc((j - 1) / 2));
    const keep = byOffset.slice(from, j - from).sort((a, b) => a - b); // back in time order
    return keep.map((i) => all[i]!);
  }

  /** SPF_GetFilteredSample: the combined sample of this poll (null: too few, or too dispersed). */
  filtered(): NtpSample | null {
    if (this.samples.length < this.minSamples) return null;
    const sel = this.select();
    const r = this.combine(sel);
    if (!r) return null;
    this.samples = []; // drop_samples(filter, 1)
    return r;
  }

  /** combine_selected_samples. */
  private combine(sel: NtpSample[]): NtpSample | null {
    const n = sel.length;
    const last = sel[n - 1]!;
    const x = sel.map((s) => secs(s.time, last.time));
    const y = sel.map((s) => s.offset);
    const w = sel.map((s) => s.peerDispersion);
    let meanX = 0;
    let meanY = 0;
    for (let i = 0; i < n; i++) {
      meanX += x[i]!;
      meanY += y[i]!;
    }
    meanX /= n;
    meanY /= n;
    let variance: number;
    let disp: number;
    let dof: number;
    if (n >= 4) {
      const r = weightedRegression(
        x.map((v) => v - meanX),
        y,
        w,
      );
      variance = r.s2;
      disp = r.sb0;
      dof = n - 2;
    } else if (n >= 2) {
      disp = 0;
      for (const v of y) disp += (v - meanY) * (v - meanY);
      variance = disp / (n - 1);
      disp = Math.sqrt(variance);
      dof = n - 1;
    } else {
      variance = this.avgVar;
      disp = Math.sqrt(variance);
      dof = 1;
    }
    if (variance < 1e-20) {
      variance = 1e-20;
      disp = Math.sqrt(variance);
    }
    if (this.maxVar > 0.0 && variance > this.maxVar) return null;
    let prevAvgVar = this.avgVar;
    if (this.avgVarN > 50) this.avgVar += (dof / (dof + 50.0)) * (variance - this.avgVar);
    else {
      this.avgVar = (this.avgVar * this.avgVarN + variance * dof) / (dof + this.avgVarN);
      if (this.avgVarN === 0) prevAvgVar = this.avgVar;
      this.avgVarN += dof;
    }
    if ((variance * dof) / chi2Coef(dof) < prevAvgVar) disp = (Math.sqrt(this.avgVar) * disp) / Math.sqrt(variance);
    let peerDisp = 0;
    let rootDisp = 0;
    let peerDelay = 0;
    let rootDelay = 0;
    for (const s of sel) {
      peerDisp += s.peerDispersion;
      rootDisp += s.rootDispersion;
      peerDelay += s.peerDelay;
      rootDelay += s.rootDelay;
    }
    return {
      time: last.time + BigInt(Math.round(meanX * 1e9)),
      offset: meanY,
      peerDispersion: Math.max(disp, peerDisp / n),
      rootDispersion: Math.max(disp, rootDisp / n),
      peerDelay: peerDelay / n,
      rootDelay: rootDelay / n,
    };
  }

  /** SPF_SlewSamples (UTI_AdjustTimespec; the NTP-sign offset moves against the time). */
  slew(when: Ns, dfreq: number, doffset: number): void {
    for (const s of this.samples) {
      const delta = secs(when, s.time) * dfreq - doffset;
      s.time += BigInt(Math.round(delta * 1e9));
      s.offset -= delta;
    }
  }
}

export interface RefclockHooks {
  scheduler: Scheduler;
  local: LocalClock;
  /** LCL_GetSysPrecisionAsQuantum, seconds. */
  precision: number;
  /** SRC_SelectSource after SRC_AccumulateSample. */
  onSample: (src: RefclockSource) => void;
}

/** How the PHC was read (sys_linux.c reading_mode): 2 precise, 3 extended, 1 plain; 0 not decided. */
export type PhcReadingMode = 0 | 1 | 2 | 3;

export class RefclockSource {
  readonly poll: number;
  readonly dpoll: number;
  readonly offset: number;
  readonly delay: number;
  readonly precision: number;
  readonly stratum: number;
  readonly refId: string;
  /** What selection and `chronyc tracking` show for it. */
  readonly link: { name: string };
  readonly stats: SourceStats;
  readonly filter: SampleFilter;
  readonly nocrossts: boolean;
  mode: PhcReadingMode = 0;
  reachability = 0;
  private reached = 0;
  private driverPolled = 0;
  private readonly timer: Timer;
  private stoppedDue: { left: Ns; local: Ns } | null = null;
  /** Driver polls made (scheduler ns), and the samples handed to the source, for tests and reports. */
  readonly driverPolls: Ns[] = [];
  samples = 0;

  constructor(
    readonly phc: PhcDevice,
    index: number,
    o: RefclockPhcOptions,
    private readonly h: RefclockHooks,
  ) {
    this.poll = o.poll ?? 4;
    this.dpoll = Math.min(o.dpoll ?? 0, this.poll); // RCL_AddRefclock: driver_poll ≤ poll
    this.offset = o.offset ?? 0.0;
    this.delay = o.delay ?? 1e-9;
    this.precision = Math.max(h.precision, o.precision ?? 0.0);
    this.stratum = o.stratum ?? 0;
    this.nocrossts = o.nocrossts ?? false;
    this.refId = refclockRefId('PHC', index);
    this.link = { name: this.refId };
    // "Don't require more than one sample per poll and combine 60% of the samples closest to the median"
    this.filter = new SampleFilter(1, o.filter ?? 64, 0.0, 0.6, h.precision);
    this.stats = new SourceStats(h.precision);
    this.timer = h.scheduler.timer(() => this.pollTimeout());
  }

  get reachable(): boolean {
    return this.reachability !== 0;
  }

  /** RCL_StartRefclocks: the first poll right away. */
  start(): void {
    this.timer.armIn(0n);
  }

  /** chronyd stopped (the VM paused): the pending timeout is remembered, with chronyd's clock then. */
  stop(): void {
    const due = this.timer.expires;
    if (due !== null) this.stoppedDue = { left: due - this.h.scheduler.now, local: this.h.local.readCooked() };
    this.timer.cancel();
  }

  /**
   * chronyd runs again: its timeout is due on its own clock, so what that clock saw of the stop counts
   * (a kvm-clock guest saw none of a QEMU pause, a tsc guest all of it: then the poll comes at once).
   */
  resume(): void {
    const st = this.stoppedDue;
    const left = st ? st.left - (this.h.local.readCooked() - st.local) : 0n;
    this.timer.armIn(left > 0n ? left : 0n);
    this.stoppedDue = null;
  }

  /** poll_timeout. */
  private pollTimeout(): void {
    this.phcPoll();
    this.driverPolled++;
    if (this.driverPolled >= 2 ** (this.poll - this.dpoll)) {
      this.driverPolled = 0;
      this.reachability = ((this.reachability << 1) | (this.reached > 0 ? 1 : 0)) & 0xff; // SRC_UpdateReachability
      this.reached = 0;
      const sample = this.filter.filtered();
      if (sample) {
        this.samples++;
        this.stats.accumulate(sample); // SRC_AccumulateSample
        this.stats.doNewRegression();
        this.h.onSample(this); // SRC_SelectSource
      }
    }
    this.timer.armIn(BigInt(Math.round(2 ** this.dpoll * 1e9)));
  }

  /** sys_linux.c SYS_Linux_GetPHCReadings: the first method that works, then only that one. */
  private readings(): PhcReadingNs[] {
    const m = this.mode;
    if ((m === 2 || m === 0) && !this.nocrossts) {
      const r = this.phc.sysOffsetPrecise();
      if (typeof r !== 'string') {
        this.mode = 2;
        return [r];
      }
    }
    if (m === 3 || m === 0) {
      const r = this.phc.sysOffsetExtended();
      if (typeof r !== 'string' && r.length > 0) {
        this.mode = 3;
        return r;
      }
    }
    if (m === 1 || m === 0) {
      const r = this.phc.sysOffset(PHC_READINGS);
      if (typeof r !== 'string' && r.length > 0) {
        this.mode = 1;
        return r;
      }
    }
    return [];
  }

  /** phc_poll → HCL_ProcessReadings (combined readings) → RCL_AddSample. */
  private phcPoll(): void {
    this.driverPolls.push(this.h.scheduler.now);
    const tss = this.readings();
    const n = tss.length;
    if (n < 1) return;
    // hw_ts and local_ts: the means over the readings (each local time the middle of its reading)
    let hwSum = 0n;
    let localSum = 0n;
    for (const [before, phc, after] of tss) {
      if (after < before) return; // "Bad reading delay": a step in the middle of a reading
      hwSum += phc - tss[0]![1];
      localSum += before - tss[0]![0] + (after - before) / 2n;
    }
    const phcTs = tss[0]![1] + hwSum / BigInt(n);
    const sysTs = tss[0]![0] + localSum / BigInt(n);
    this.addSample(sysTs, phcTs);
  }

  /** RCL_AddSample (quality 2). */
  private addSample(sampleTime: Ns, refTime: Ns): void {
    const local = this.h.local;
    const correction = local.offsetCorrection(sampleTime);
    const cooked = sampleTime + BigInt(Math.round(correction * 1e9));
    const dispersion = this.precision;
    // valid_sample_time: not from the future, not older than 2^(poll+1) s
    const age = secs(local.readCooked(), cooked);
    if (age < 0.0 || age > 2 ** (this.poll + 1)) return;
    const offset = secs(refTime, sampleTime) - correction + this.offset;
    this.reached++;
    this.filter.accumulate({
      time: cooked,
      offset,
      peerDelay: this.delay,
      rootDelay: this.delay,
      peerDispersion: dispersion,
      rootDispersion: dispersion,
    });
  }

  /** slew_samples (refclock.c): the filter's samples follow a clock change. */
  slewTimes(when: Ns, dfreq: number, doffset: number): void {
    this.filter.slew(when, dfreq, doffset);
  }
}
