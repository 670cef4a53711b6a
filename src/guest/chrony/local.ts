// chronyd's local clock on Linux: local.c (absolute frequency, parameter-change handlers, steps),
// sys_generic.c (slewing an offset by running the clock at a corrected frequency for a while) and
// sys_linux.c/sys_timex.c (setting a frequency through adjtimex as tick + freq, stepping with
// ADJ_SETOFFSET, the sync status and maxerror/esterror the kernel keeps). chrony's frequency sign:
// positive = the clock would run fast without correction, so chronyd slows it down.
import type { Scheduler, Timer } from '../../core/index.ts';
import type { Ns } from '../../core/index.ts';
import {
  ADJ_ESTERROR,
  ADJ_FREQUENCY,
  ADJ_MAXERROR,
  ADJ_NANO,
  ADJ_OFFSET,
  ADJ_SETOFFSET,
  ADJ_STATUS,
  ADJ_TICK,
  STA_PLL,
  STA_UNSYNC,
} from '../ntp.ts';
import type { Timex, TimexResult } from '../ntp.ts';

/** conf.c max_slew_rate default (1e6 / 12 ppm): `maxslewrate`. */
export const DEFAULT_MAX_SLEW_RATE_PPM = 1e6 / 12.0;
/** conf.c max_drift default: `maxdrift`, the clamp on the absolute frequency (local.c clamp_freq). */
export const DEFAULT_MAX_DRIFT_PPM = 100000.0;
// sys_generic.c
const MIN_OFFSET_CORRECTION = 1.0e-9;
export const MIN_SLEW_DURATION = 1.0;
export const MAX_SLEW_DURATION = 1.0e4;
const MAX_SLEW_EXCESS_DURATION = 100.0;
const MIN_SLEW_DURATION_EXCESS_RATIO = 5.0;
const SLEW_EXCESS_DURATION_DECAY = 0.9;
// sys_linux.c: freq is ppm << 16 in struct timex
const FREQ_SCALE = 2 ** 16;
// sys_timex.c MAX_SYNC_ERROR: the kernel sets STA_UNSYNC above 16 s maxerror
const MAX_SYNC_ERROR = 16.0;

export type ChangeKind = 'adjust' | 'step';
export type ChangeHandler = (cooked: Ns, dfreq: number, doffset: number, kind: ChangeKind) => void;

export interface LocalClockOptions {
  scheduler: Scheduler;
  adjtimex: (txc: Timex) => TimexResult;
  /** The guest's CLOCK_REALTIME now (chronyd's raw time on Linux). */
  readRaw: () => Ns;
  maxSlewRatePpm?: number;
  /** sysconf(_SC_CLK_TCK): USER_HZ, 100 on x86 Linux. */
  userHz?: number;
  rtcsync?: boolean;
}

const secs = (a: Ns, b: Ns): number => Number(a - b) / 1e9;
/** C round(): half away from zero. */
const cRound = (x: number): number => (x < 0 ? -Math.round(-x) : Math.round(x));

export class LocalClock {
  private readonly sysHz: number;
  private readonly nominalTick: number;
  /** sys_linux.c: ±10 % of the nominal tick, as ppm (100,000 ppm at USER_HZ 100). */
  readonly maxSetFreqPpm: number;
  private readonly maxFreqChangeDelay: number;
  private readonly maxCorrFreq: number;
  private readonly handlers: ChangeHandler[] = [];
  private readonly slewTimer: Timer;
  private currentDeltaTick = 0;
  /** local.c current_freq_ppm (and sys_generic.c base_freq). */
  currentFreqPpm = 0;
  private baseFreq = 0;
  slewFreq = 0;
  offsetRegister = 0;
  private slewStart: Ns;
  private slewDuration = 0;
  private slewExcessDuration = 0;
  private correctionRate = 0;
  /** sys_generic.c slew_error: the dispersion a frequency change adds (handed to higher levels in chronyd). */
  slewError = 0;
  /** The total frequency set in the kernel last (ppm, chrony's sign), for reports and tests. */
  lastTotalFreqPpm = 0;
  lastTick = 0;
  lastTimexFreq = 0;
  private syncStatus = STA_UNSYNC;
  private frozenSlewTimeout: { left: Ns; raw: Ns } | null = null;

  constructor(private readonly o: LocalClockOptions) {
    this.sysHz = o.userHz ?? 100;
    this.nominalTick = Math.trunc((1000000 + Math.trunc(this.sysHz / 2)) / this.sysHz);
    const maxTickBias = Math.trunc(this.nominalTick / 10);
    this.maxSetFreqPpm = (1.0e6 * maxTickBias) / this.nominalTick;
    // sys_linux.c: tick_update_hz 100000 on kernels ≥ 4.19 → max_set_freq_delay 1e-5 s
    this.maxFreqChangeDelay = (1.0 / 100000) * (1.0 + this.maxSetFreqPpm / 1.0e6);
    this.maxCorrFreq = (o.maxSlewRatePpm ?? DEFAULT_MAX_SLEW_RATE_PPM) / 1.0e6;
    this.slewTimer = o.scheduler.timer(() => this.updateSlew());
    this.initialiseTimex();
    this.baseFreq = this.readKernelFrequency();
    this.currentFreqPpm = this.baseFreq;
    // sys_generic.c: slew_start is a zeroed static until the first update_slew (without a drift file
    // nothing sets the frequency at start), so the first slew's "excess duration" is out of range and ignored
    this.slewStart = 0n;
  }

  /** LCL_ReadRawTime. */
  readRaw(): Ns {
    return this.o.readRaw();
  }

  addHandler(h: ChangeHandler): void {
    this.handlers.push(h);
  }

  /** sys_timex.c initialise_timex: reset the kernel PLL offset, then turn the PLL off. */
  private initialiseTimex(): void {
    this.o.adjtimex({ modes: ADJ_OFFSET | ADJ_STATUS, status: STA_PLL | STA_UNSYNC, offset: 0 });
    this.o.adjtimex({ modes: ADJ_STATUS, status: STA_UNSYNC });
  }

  /** sys_linux.c read_frequency. */
  private readKernelFrequency(): number {
    const r = this.o.adjtimex({ modes: 0 });
    this.currentDeltaTick = this.nominalTick - Number(r.tick);
    return this.sysHz * this.currentDeltaTick - Number(r.freq) / FREQ_SCALE;
  }

  /** sys_linux.c set_frequency: whole ticks of USER_HZ ppm plus the remainder in timex.freq. */
  private setKernelFrequency(freqPpm: number): number {
    const deltaTick = cRound(freqPpm / this.sysHz);
    const requiredFreq = -(freqPpm - this.sysHz * deltaTick);
    const tick = this.nominalTick - deltaTick;
    const freq = Math.trunc(requiredFreq * FREQ_SCALE); // assigned to a long
    this.o.adjtimex({ modes: ADJ_TICK | ADJ_FREQUENCY, tick, freq });
    this.currentDeltaTick = deltaTick;
    this.lastTick = tick;
    this.lastTimexFreq = freq;
    return this.sysHz * this.currentDeltaTick - freq / FREQ_SCALE;
  }

  private clampSetFreq(f: number): number {
    return Math.min(this.maxSetFreqPpm, Math.max(-this.maxSetFreqPpm, f));
  }

  /** sys_generic.c update_slew: end the running slew and start one for the remaining offset. */
  private updateSlew(): void {
    this.slewTimer.cancel();
    const now = this.o.readRaw();
    let duration = secs(now, this.slewStart);
    this.offsetRegister -= this.slewFreq * duration;
    this.slewExcessDuration = (this.slewExcessDuration + 1.0e-9) * SLEW_EXCESS_DURATION_DECAY;
    const excess = duration - this.slewDuration;
    if (this.slewExcessDuration < excess && excess <= MAX_SLEW_EXCESS_DURATION) this.slewExcessDuration = excess;
    if (Math.abs(this.offsetRegister) < MIN_OFFSET_CORRECTION) duration = MAX_SLEW_DURATION;
    else {
      duration = this.correctionRate / Math.abs(this.offsetRegister);
      if (duration < MIN_SLEW_DURATION) duration = MIN_SLEW_DURATION;
      if (duration < MIN_SLEW_DURATION_EXCESS_RATIO * this.slewExcessDuration)
        duration = MIN_SLEW_DURATION_EXCESS_RATIO * this.slewExcessDuration;
    }
    let corrFreq = this.offsetRegister / duration;
    if (corrFreq < -this.maxCorrFreq) corrFreq = -this.maxCorrFreq;
    else if (corrFreq > this.maxCorrFreq) corrFreq = this.maxCorrFreq;
    let totalFreq = this.clampSetFreq(this.baseFreq + corrFreq * (1.0e6 - this.baseFreq));
    totalFreq = this.setKernelFrequency(totalFreq);
    this.lastTotalFreqPpm = totalFreq;
    const oldSlewFreq = this.slewFreq;
    this.slewFreq = (totalFreq - this.baseFreq) / (1.0e6 - totalFreq);
    this.slewError = Math.abs((oldSlewFreq - this.slewFreq) * this.maxFreqChangeDelay);
    if (Math.abs(this.offsetRegister) < MIN_OFFSET_CORRECTION || this.offsetRegister * this.slewFreq <= 0.0) duration = MAX_SLEW_DURATION;
    else {
      duration = this.offsetRegister / this.slewFreq;
      if (duration < MIN_SLEW_DURATION) duration = MIN_SLEW_DURATION;
      else if (duration > MAX_SLEW_DURATION) duration = MAX_SLEW_DURATION;
    }
    // The timeout is in local (raw) time; the scheduler runs on true time: the clock now runs at
    // (1 − total_freq) of nominal (the host crystal's ppm is unknown to the guest and left out).
    this.slewTimer.armIn(BigInt(Math.round((duration * 1e9) / (1 - totalFreq / 1e6))));
    this.slewStart = now;
    this.slewDuration = duration;
  }

  /** sys_generic.c offset_convert: raw → cooked correction, seconds (cooked = raw + corr). */
  offsetCorrection(raw: Ns): number {
    return this.slewFreq * secs(raw, this.slewStart) - this.offsetRegister;
  }

  /** LCL_ReadCookedTime. */
  readCooked(): Ns {
    const raw = this.o.readRaw();
    return raw + BigInt(Math.round(this.offsetCorrection(raw) * 1e9));
  }

  /** LCL_AccumulateFrequencyAndOffset (dfreq: relative; doffset: seconds, positive = clock fast). */
  accumulateFrequencyAndOffset(dfreq: number, doffset: number, corrRate: number): void {
    const cooked = this.readCooked();
    const oldFreq = this.currentFreqPpm;
    let f = this.currentFreqPpm + dfreq * (1.0e6 - this.currentFreqPpm);
    f = Math.min(DEFAULT_MAX_DRIFT_PPM, Math.max(-DEFAULT_MAX_DRIFT_PPM, f));
    // sys_generic.c set_frequency: base_freq changes, then the slew is redone
    // sys_generic.c set_frequency then accrue_offset: each ends the running slew and starts another
    this.baseFreq = f;
    this.updateSlew();
    this.offsetRegister += doffset;
    this.correctionRate = corrRate;
    this.updateSlew();
    this.currentFreqPpm = f;
    const realDfreq = (this.currentFreqPpm - oldFreq) / (1.0e6 - oldFreq);
    for (const h of this.handlers) h(cooked, realDfreq, doffset, 'adjust');
  }

  /** LCL_AccumulateOffset. */
  accumulateOffset(doffset: number, corrRate: number): void {
    this.accumulateFrequencyAndOffset(0, doffset, corrRate);
  }

  /** LCL_ApplyStepOffset: sys_timex.c apply_step_offset is ADJ_SETOFFSET by −offset. */
  applyStepOffset(offset: number): void {
    this.o.adjtimex({ modes: ADJ_SETOFFSET | ADJ_NANO, setOffsetNs: -BigInt(Math.round(offset * 1e9)) });
    // sys_generic.c handle_step: the slew's start moves with the clock
    this.slewStart -= BigInt(Math.round(offset * 1e9));
    const cooked = this.readCooked();
    for (const h of this.handlers) h(cooked, 0, offset, 'step');
  }

  /** sys_timex.c set_sync_status: on Linux STA_UNSYNC is cleared only with rtcsync. */
  setSyncStatus(synchronised: boolean, estError: number, maxError: number): void {
    let sync = synchronised;
    let est = estError;
    let max = maxError;
    if (sync) {
      if (est > MAX_SYNC_ERROR) est = MAX_SYNC_ERROR;
      if (max >= MAX_SYNC_ERROR) {
        max = MAX_SYNC_ERROR;
        sync = false;
      }
    } else est = max = MAX_SYNC_ERROR;
    if (!this.o.rtcsync) sync = false;
    this.syncStatus = sync ? 0 : STA_UNSYNC;
    this.o.adjtimex({
      modes: ADJ_STATUS | ADJ_ESTERROR | ADJ_MAXERROR,
      status: this.syncStatus,
      esterror: Math.trunc(est * 1.0e6),
      maxerror: Math.trunc(max * 1.0e6),
    });
  }

  /** Whether the kernel's 11-minute mode may copy the system time to the RTC (STA_UNSYNC clear). */
  get kernelSynced(): boolean {
    return this.syncStatus === 0;
  }

  /** chronyd stops running (the VM paused): no slew timeout fires. */
  stop(): void {
    const due = this.slewTimer.expires;
    this.frozenSlewTimeout = due === null ? null : { left: due - this.o.scheduler.now, raw: this.o.readRaw() };
    this.slewTimer.cancel();
  }

  /** chronyd runs again: the slew timeout is due on the guest's clock, so what that clock saw of the stop counts. */
  resume(): void {
    const f = this.frozenSlewTimeout;
    this.frozenSlewTimeout = null;
    if (f === null) return;
    const left = f.left - (this.o.readRaw() - f.raw);
    this.slewTimer.armIn(left > 0n ? left : 0n);
  }
}
