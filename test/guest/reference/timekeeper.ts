// The timekeeper as it was before it moved onto 64-bit typed-array slots: plain BigInts in object
// fields, unbounded. Kept unchanged as the reference src/guest/timekeeper.ts is compared with
// (test/guest/timekeeper-reference.test.ts); not used by the product.
// The timekeeper (kernel/time/timekeeping.c): CLOCK_REALTIME/MONOTONIC/BOOTTIME/MONOTONIC_RAW kept
// as a shifted-nanosecond base plus (cycles since cycle_last) * mult >> shift; accumulation in
// cycle_interval chunks (logarithmic_accumulation), the NTP error feedback that nudges mult by ±1
// (timekeeping_adjust), clocksource changes, settimeofday and ADJ_SETOFFSET steps.
import type { Cycles, Ns } from '../../../src/core/index.ts';
import { NSEC_PER_SEC } from '../../../src/core/index.ts';
import { CLOCK_SOURCE_IS_CONTINUOUS, Clocksource, clocksourceUpdateFreqScale } from '../../../src/guest/clocksource.ts';
import { U64_MAX } from '../../../src/core/index.ts';
import { ADJ_FREQUENCY, ADJ_SETOFFSET, ADJ_TICK, NTP_SCALE_SHIFT, NtpState, type Timex, type TimexResult } from './ntp.ts';

interface TkReadBase {
  cycleLast: Cycles;
  mult: bigint;
  shift: bigint;
  xtimeNsec: bigint; // shifted ns, may go transiently negative in timekeeping_adjust
}

/** ilog2(): the index of the highest set bit, −1 for 0 (exact; below 2^53 without a string). */
export function ilog2(x: bigint): number {
  if (x <= 0n) return -1;
  if (x < 0x20_0000_0000_0000n) {
    const n = Number(x);
    const hi = Math.floor(n / 0x1_0000_0000);
    return hi > 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(n);
  }
  return x.toString(2).length - 1;
}

export type ClockId = 'realtime' | 'monotonic' | 'boottime' | 'monotonic_raw';

export class Timekeeper {
  cs: Clocksource;
  readonly mono: TkReadBase = { cycleLast: 0n, mult: 0n, shift: 0n, xtimeNsec: 0n };
  readonly raw: TkReadBase = { cycleLast: 0n, mult: 0n, shift: 0n, xtimeNsec: 0n };
  xtimeSec = 0n;
  rawSec = 0n;
  /** wall_to_monotonic as signed ns. */
  wallToMonotonic: Ns = 0n;
  /** offs_boot: time spent suspended. */
  offsBoot: Ns = 0n;
  cycleInterval = 0n;
  xtimeInterval = 0n;
  xtimeRemainder = 0n;
  rawInterval = 0n;
  ntpError = 0n;
  ntpErrorShift = 0n;
  ntpTick = 0n;
  ntpErrMult = 0n;
  skipSecondOverflow = false;
  readonly ntp: NtpState;
  /** Accumulation passes (for benchmarks and tests). */
  advances = 0;

  /** timekeeping_init(): start on `cs` (jiffies at boot) with the persistent clock's wall time. */
  constructor(cs: Clocksource, hz: number, wallNs: Ns, bootOffsetNs: Ns) {
    this.ntp = new NtpState(hz);
    this.cs = cs;
    this.setupInternals(cs, null);
    this.setXtime(wallNs);
    this.rawSec = 0n;
    this.wallToMonotonic = bootOffsetNs - wallNs;
  }

  private nsecShiftedFor = -1n;
  private nsecShiftedValue = 0n;

  /** NSEC_PER_SEC << shift (kept: the shift changes only with the clocksource). */
  private nsecShifted(shift: bigint): bigint {
    if (shift !== this.nsecShiftedFor) {
      this.nsecShiftedFor = shift;
      this.nsecShiftedValue = NSEC_PER_SEC << shift;
    }
    return this.nsecShiftedValue;
  }

  private errorPerIntervalKey: [bigint, bigint, bigint, bigint] = [-1n, -1n, -1n, -1n];
  private errorPerIntervalValue = 0n;

  /** What one cycle_interval adds to ntp_error: ntp_tick − (xtime_interval + xtime_remainder) << ntp_error_shift. */
  private errorPerInterval(): bigint {
    const k = this.errorPerIntervalKey;
    if (k[0] !== this.ntpTick || k[1] !== this.xtimeInterval || k[2] !== this.xtimeRemainder || k[3] !== this.ntpErrorShift) {
      this.errorPerIntervalKey = [this.ntpTick, this.xtimeInterval, this.xtimeRemainder, this.ntpErrorShift];
      this.errorPerIntervalValue = this.ntpTick - ((this.xtimeInterval + this.xtimeRemainder) << this.ntpErrorShift);
    }
    return this.errorPerIntervalValue;
  }

  private read(): Cycles {
    return this.cs.read();
  }

  /** clocksource_delta() with the 6.x max_raw_delta guard: a counter that went backwards reads 0. */
  private delta(now: Cycles, last: Cycles): Cycles {
    const mask = this.cs.mask;
    // asUintN: the same bits as & U64_MAX without a 65-bit operand
    const d = mask === U64_MAX ? BigInt.asUintN(64, now - last) : (now - last) & mask;
    return d > this.cs.maxRawDelta ? 0n : d;
  }

  private setXtime(ns: Ns): void {
    this.xtimeSec = ns / NSEC_PER_SEC;
    let rem = ns % NSEC_PER_SEC;
    if (rem < 0n) {
      rem += NSEC_PER_SEC;
      this.xtimeSec -= 1n;
    }
    this.mono.xtimeNsec = rem << this.mono.shift;
  }

  /** tk_setup_internals(). */
  private setupInternals(clock: Clocksource, old: Clocksource | null): void {
    const now = clock.read();
    this.mono.cycleLast = now;
    this.raw.cycleLast = now;
    const mult = BigInt(clock.mult);
    const shift = BigInt(clock.shift);
    let tmp = this.ntp.intervalLength << shift;
    const ntpinterval = tmp;
    tmp += mult / 2n;
    tmp /= mult;
    if (tmp === 0n) tmp = 1n;
    this.cycleInterval = tmp;
    this.xtimeInterval = tmp * mult;
    this.xtimeRemainder = ntpinterval - this.xtimeInterval;
    this.rawInterval = tmp * mult;
    if (old) {
      const change = shift - BigInt(old.shift);
      if (change < 0n) {
        this.mono.xtimeNsec >>= -change;
        this.raw.xtimeNsec >>= -change;
      } else {
        this.mono.xtimeNsec <<= change;
        this.raw.xtimeNsec <<= change;
      }
    }
    this.mono.shift = shift;
    this.raw.shift = shift;
    this.ntpError = 0n;
    this.ntpErrorShift = NTP_SCALE_SHIFT - shift;
    this.ntpTick = ntpinterval << this.ntpErrorShift;
    this.mono.mult = mult;
    this.raw.mult = mult;
    this.ntpErrMult = 0n;
    this.skipSecondOverflow = false;
  }

  private normalizeXtime(): void {
    const nsecps = this.nsecShifted(this.mono.shift);
    while (this.mono.xtimeNsec >= nsecps) {
      this.mono.xtimeNsec -= nsecps;
      this.xtimeSec++;
    }
    const rawps = this.nsecShifted(this.raw.shift);
    while (this.raw.xtimeNsec >= rawps) {
      this.raw.xtimeNsec -= rawps;
      this.rawSec++;
    }
  }

  /** timekeeping_forward_now(). */
  forwardNow(): void {
    const now = this.read();
    let delta = this.delta(now, this.mono.cycleLast);
    this.mono.cycleLast = now;
    this.raw.cycleLast = now;
    while (delta > 0n) {
      const incr = delta < this.cs.maxCycles ? delta : this.cs.maxCycles;
      this.mono.xtimeNsec += incr * this.mono.mult;
      this.raw.xtimeNsec += incr * this.raw.mult;
      this.normalizeXtime();
      delta -= incr;
    }
  }

  /** change_clocksource(): the timekeeper moves to `cs` without a jump. */
  changeClocksource(cs: Clocksource): void {
    this.forwardNow();
    const old = this.cs;
    this.cs = cs;
    this.setupInternals(cs, old);
  }

  /** accumulate_nsecs_to_secs(). */
  private accumulateNsecsToSecs(): void {
    const nsecps = this.nsecShifted(this.mono.shift);
    while (this.mono.xtimeNsec >= nsecps) {
      this.mono.xtimeNsec -= nsecps;
      this.xtimeSec++;
      if (this.skipSecondOverflow) {
        this.skipSecondOverflow = false;
        continue;
      }
      this.ntp.secondOverflow();
    }
  }

  /** logarithmic_accumulation(). */
  private logarithmicAccumulation(offset: Cycles, shift: number): Cycles {
    const s = BigInt(shift);
    const interval = this.cycleInterval << s;
    if (offset < interval) return offset;
    offset -= interval;
    this.mono.cycleLast += interval;
    this.raw.cycleLast += interval;
    this.mono.xtimeNsec += this.xtimeInterval << s;
    this.accumulateNsecsToSecs();
    this.raw.xtimeNsec += this.rawInterval << s;
    const snsecPerSec = this.nsecShifted(this.raw.shift);
    while (this.raw.xtimeNsec >= snsecPerSec) {
      this.raw.xtimeNsec -= snsecPerSec;
      this.rawSec++;
    }
    this.ntpError += this.ntpTick << s;
    this.ntpError -= (this.xtimeInterval + this.xtimeRemainder) << (this.ntpErrorShift + s);
    return offset;
  }

  /** timekeeping_apply_adjustment(). */
  private applyAdjustment(offset: bigint, multAdj: bigint): void {
    if (multAdj === 0n) return;
    if (multAdj > 0n && this.mono.mult + multAdj > 0xffff_ffffn) return;
    this.mono.mult += multAdj;
    this.xtimeInterval += this.cycleInterval * multAdj;
    this.mono.xtimeNsec -= offset * multAdj;
  }

  /** timekeeping_adjust(): steer mult so that accumulated time follows NTP's tick length. */
  private adjust(offset: bigint): void {
    const ntpTl = this.ntp.ntpTickLength();
    let mult: bigint;
    if (this.ntpTick === ntpTl) {
      mult = this.mono.mult - this.ntpErrMult;
    } else {
      this.ntpTick = ntpTl;
      mult = ((this.ntpTick >> this.ntpErrorShift) - this.xtimeRemainder) / this.cycleInterval;
    }
    this.ntpErrMult = this.ntpError > 0n ? 1n : 0n;
    mult += this.ntpErrMult;
    this.applyAdjustment(offset, mult - this.mono.mult);
    if (this.mono.xtimeNsec < 0n) {
      this.mono.xtimeNsec += this.nsecShifted(this.mono.shift);
      this.xtimeSec--;
      this.skipSecondOverflow = true;
    }
  }

  /** timekeeping_advance(TK_ADV_TICK): what update_wall_time() does at a tick. */
  advance(freqChange = false): void {
    let offset = this.delta(this.read(), this.mono.cycleLast);
    if (offset < this.cycleInterval && !freqChange) return;
    this.advances++;
    if (this.chunked || this.ntpErrorShift < 0n) offset = this.accumulateByChunks(offset);
    else offset = this.accumulateAtOnce(offset);
    this.adjust(offset);
    this.accumulateNsecsToSecs();
  }

  /**
   * Accumulate chunk by chunk as logarithmic_accumulation() does (the reference accumulateAtOnce is
   * tested against; set `chunked` to use it everywhere).
   */
  chunked = false;

  private accumulateByChunks(offset: Cycles): Cycles {
    let shift = Math.max(0, ilog2(offset) - ilog2(this.cycleInterval));
    const maxshift = 64 - (ilog2(this.ntp.ntpTickLength()) + 1) - 1;
    shift = Math.min(shift, maxshift);
    while (offset >= this.cycleInterval) {
      offset = this.logarithmicAccumulation(offset, shift);
      if (offset < this.cycleInterval << BigInt(shift)) shift--;
    }
    return offset;
  }

  /**
   * What timekeeping_advance()'s loop of logarithmic_accumulation() calls (kernel/time/timekeeping.c)
   * adds up to, in one step. The loop takes chunks of cycle_interval << shift until less than one
   * cycle_interval is left: n = offset / cycle_interval intervals in all, whatever the chunks. Every
   * chunk adds the same multiples of one interval — xtime_interval, raw_interval, and to ntp_error
   * ntp_tick − (xtime_interval + xtime_remainder) << ntp_error_shift (a left shift: ntp_error_shift ≥ 0)
   * — and mult does not change inside the loop, so the sums are n times those.
   * accumulate_nsecs_to_secs() after each chunk crosses the same seconds in the same order as once
   * after all of them: second_overflow() reads nothing the chunks change, so it sees the same calls.
   */
  private accumulateAtOnce(offset: Cycles): Cycles {
    const n = offset / this.cycleInterval;
    if (n === 0n) return offset;
    const cycles = n * this.cycleInterval;
    this.mono.cycleLast += cycles;
    this.raw.cycleLast += cycles;
    this.mono.xtimeNsec += n * this.xtimeInterval;
    this.accumulateNsecsToSecs();
    this.raw.xtimeNsec += n * this.rawInterval;
    const snsecPerSec = this.nsecShifted(this.raw.shift);
    while (this.raw.xtimeNsec >= snsecPerSec) {
      this.raw.xtimeNsec -= snsecPerSec;
      this.rawSec++;
    }
    this.ntpError += n * this.errorPerInterval();
    return offset - cycles;
  }

  private getNs(base: TkReadBase, cpu?: number): bigint {
    const now = cpu !== undefined && this.cs.readOn ? this.cs.readOn(cpu) : this.read();
    const delta = this.delta(now, base.cycleLast);
    return (delta * base.mult + base.xtimeNsec) >> base.shift;
  }

  /** clock_gettime(id) in ns, on CPU `cpu` (its clocksource read) when given. */
  get(id: ClockId, cpu?: number): Ns {
    if (id === 'monotonic_raw') return this.rawSec * NSEC_PER_SEC + this.getNs(this.raw, cpu);
    const real = this.xtimeSec * NSEC_PER_SEC + this.getNs(this.mono, cpu);
    if (id === 'realtime') return real;
    const mono = real + this.wallToMonotonic;
    return id === 'monotonic' ? mono : mono + this.offsBoot;
  }

  /** do_settimeofday64(). */
  setTimeOfDay(ns: Ns): void {
    this.forwardNow();
    const cur = this.xtimeSec * NSEC_PER_SEC + (this.mono.xtimeNsec >> this.mono.shift);
    this.wallToMonotonic -= ns - cur;
    this.setXtime(ns);
  }

  /** timekeeping_inject_offset(): ADJ_SETOFFSET. */
  injectOffset(deltaNs: Ns): void {
    this.forwardNow();
    const cur = this.xtimeSec * NSEC_PER_SEC + (this.mono.xtimeNsec >> this.mono.shift);
    const frac = this.mono.xtimeNsec & ((1n << this.mono.shift) - 1n);
    this.setXtime(cur + deltaNs);
    this.mono.xtimeNsec |= frac;
    this.wallToMonotonic -= deltaNs;
  }

  /** do_adjtimex(). */
  adjtimex(txc: Timex): TimexResult {
    if ((txc.modes ?? 0) & ADJ_SETOFFSET && (txc.modes ?? 0) !== 0x8001) {
      this.injectOffset(txc.setOffsetNs ?? 0n);
    }
    const r = this.ntp.adjtimex(txc, this.xtimeSec);
    // 6.x do_adjtimex: a new frequency or tick takes effect at once (timekeeping_advance(TK_ADV_FREQ))
    if ((txc.modes ?? 0) & (ADJ_FREQUENCY | ADJ_TICK)) this.advance(true);
    return r;
  }

  /** Add time spent suspended to BOOTTIME (timekeeping_inject_sleeptime64). */
  injectSleep(ns: Ns): void {
    this.offsBoot += ns;
  }
}

export interface StandaloneTimekeeperOptions {
  /** Clocksource name, for messages ("tsc", "kvm-clock"). */
  name: string;
  /** Reads the counter now. */
  read: () => Cycles;
  /** Counter frequency as registered: `scale` × `freq` Hz (scale 1000 = clocksource_register_khz). */
  freq: number;
  scale?: number;
  /** Counter width mask (default 64 bits). */
  mask?: bigint;
  /** CONFIG_HZ (NTP interval length); default 250. */
  hz?: number;
  /** CLOCK_REALTIME at start, ns since the epoch. */
  wallNs: Ns;
  /** CLOCK_MONOTONIC at start (default 0). */
  monotonicNs?: Ns;
}

/**
 * A timekeeper on one clocksource without booting a kernel: the clocksource is registered with the
 * kernel's arithmetic (mult/shift/max_cycles) and the timekeeper starts on it. For simulations with
 * many guests that need Linux's clock arithmetic and NTP discipline but not its boot.
 */
export function standaloneTimekeeper(o: StandaloneTimekeeperOptions): Timekeeper {
  const cs = new Clocksource({ name: o.name, rating: 300, mask: o.mask ?? U64_MAX, flags: CLOCK_SOURCE_IS_CONTINUOUS, read: o.read });
  clocksourceUpdateFreqScale(cs, o.scale ?? 1, o.freq);
  return new Timekeeper(cs, o.hz ?? 250, o.wallNs, o.monotonicNs ?? 0n);
}
