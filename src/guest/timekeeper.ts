// The timekeeper (kernel/time/timekeeping.c): CLOCK_REALTIME/MONOTONIC/BOOTTIME/MONOTONIC_RAW kept
// as a shifted-nanosecond base plus (cycles since cycle_last) * mult >> shift; accumulation in
// cycle_interval chunks (logarithmic_accumulation), the NTP error feedback that nudges mult by ±1
// (timekeeping_adjust), clocksource changes, settimeofday and ADJ_SETOFFSET steps.
//
// Speed: a guest runs timekeeping_advance() once per update (86,400 times per VM-day at 1-s updates).
// Its state lives in one BigInt64Array, the kernel's fields being 64-bit too (struct timekeeper /
// struct tk_read_base: cycle_last, xtime_nsec, cycle_interval, xtime_interval, raw_interval, ntp_tick
// u64; xtime_remainder, ntp_error s64; mult u32), and advance() computes on its slots with
// BigInt.asIntN(64, …), which TurboFan compiles to native 64-bit instructions without a heap BigInt
// per operation. Where an update could leave the range in which that wrapping arithmetic equals
// unbounded BigInts (the guards in accumulateFits/adjustFast), the exact path (accumulateExact,
// adjustExact) runs instead: both give the integers of the plain-BigInt implementation kept in
// test/guest/reference/, which test/guest/timekeeper-reference.test.ts compares them with. Stored
// values are s64: a u64 field only ever holds values below 2^63 here (xtime_nsec < NSEC_PER_SEC << shift,
// shift ≤ 33), except cycle_last, kept as its u64 bit pattern.
import type { Cycles, Ns, TscPlan } from '../core/index.ts';
import { NSEC_PER_SEC } from '../core/index.ts';
import { CLOCK_SOURCE_IS_CONTINUOUS, Clocksource, clocksourceUpdateFreqScale } from './clocksource.ts';
import { U64_MAX } from '../core/index.ts';
import { ADJ_FREQUENCY, ADJ_SETOFFSET, ADJ_TICK, NTP_SCALE_SHIFT, NtpState, STA_UNSYNC, type Timex, type TimexResult } from './ntp.ts';
import {
  FLAG_ADVANCES,
  FLAG_ERR_HIGH,
  FLAG_SKIP,
  FLAG_STATUS,
  FLAG_UNSYNC,
  IO_MASK64,
  IO_MAX_RAW_DELTA,
  type QuietLoop,
  TK_SLOTS,
  quietLoop,
  setPlan,
} from './quiet-wasm.ts';

// Slots of Timekeeper.st.
const MONO_CYCLE_LAST = 0; // u64 bit pattern (a counter may read ≥ 2^63)
const MONO_MULT = 1;
const MONO_SHIFT = 2;
const MONO_XTIME_NSEC = 3;
const RAW_CYCLE_LAST = 4;
const RAW_MULT = 5;
const RAW_SHIFT = 6;
const RAW_XTIME_NSEC = 7;
const XTIME_SEC = 8;
const RAW_SEC = 9;
const CYCLE_INTERVAL = 10;
const XTIME_INTERVAL = 11;
const XTIME_REMAINDER = 12;
const RAW_INTERVAL = 13;
const NTP_ERROR = 14; // low 64 bits (two's complement) of ntp_error; Timekeeper.ntpErrorHigh holds the rest
const NTP_ERROR_SHIFT = 15;
const NTP_TICK = 16;
const NTP_ERR_MULT = 17;
const MONO_NSECPS = 18; // NSEC_PER_SEC << tkr_mono.shift
const RAW_NSECPS = 19; // NSEC_PER_SEC << tkr_raw.shift
const ERR_SCALE = 20; // 1 << ntp_error_shift (0 when the shift is negative: the exact path only)
const SHIFTED_LIMIT = 21; // 2^62 >> ntp_error_shift: (xtime_interval + xtime_remainder) below it shifts below 2^62
// advance()'s intermediate values: TurboFan boxes a BigInt local that lives across a branch (a heap
// allocation), not a typed-array element, so the fast path keeps them here.
const OFFSET = 22; // cycles not yet accumulated
const INTERVALS = 23; // n: whole cycle_intervals in OFFSET
const SHIFTED = 24; // xtime_interval + xtime_remainder
const PER_INTERVAL = 25; // what one cycle_interval adds to ntp_error
const LARGEST = 26;
const CYCLES = 27;
const ERROR_ADD = 28;
const ERROR_SUM = 29;
const TICK_LENGTH = 30; // ntp_tick_length() at this update
const MULT = 31;
const ERR_MULT = 32;
const MULT_ADJ = 33;
const TMP = 34;
const MASK = 35; // the clocksource's mask as s64 (−1: 64 bits)
const MINUS_2_32 = 36; // −2^32 (a negative literal in a comparison is a heap BigInt made each time)
const SLOTS = TK_SLOTS; // the WebAssembly loop's memory holds them too

// Slots of Timekeeper.rd: clockNs()'s intermediate values, and 1 << shift per tk_read_base with the
// shift it was made for (a shift changes only with the clocksource).
const RD_DELTA = 0;
const RD_TMP = 1;
const RD_MONO_DIV = 2; // and RD_MONO_DIV + 1: its shift
const RD_RAW_DIV = 4; // and RD_RAW_DIV + 1: its shift
const RD_SLOTS = 6;

const S64_MIN = -(1n << 63n);
const S64_MAX = (1n << 63n) - 1n;
const TWO_62 = 1n << 62n;
const TWO_64 = 1n << 64n;
/** Largest cycle_interval the fast path takes: |offset·mult_adj| and |cycle_interval·mult_adj| < 2^61. */
const FAST_MAX_CYCLE_INTERVAL = 1n << 29n;

/** A value for one of the kernel's 64-bit fields; one that does not fit is a model error, not a wrap. */
function s64(v: bigint, what: string): bigint {
  if (v < S64_MIN || v > S64_MAX) throw new RangeError(`timekeeper: ${what} ${v} does not fit the kernel's 64-bit field`);
  return v;
}

/** struct tk_read_base's fields over the timekeeper's store. */
export class TkReadBase {
  constructor(
    private readonly st: BigInt64Array,
    private readonly base: number,
  ) {}
  /** cycle_last, u64. */
  get cycleLast(): Cycles {
    return BigInt.asUintN(64, this.st[this.base]!);
  }
  set cycleLast(v: Cycles) {
    this.st[this.base] = BigInt.asIntN(64, v); // u64 in the kernel: only its low 64 bits count (clocksource_delta masks)
  }
  get mult(): bigint {
    return this.st[this.base + 1]!;
  }
  set mult(v: bigint) {
    this.st[this.base + 1] = s64(v, 'mult');
  }
  get shift(): bigint {
    return this.st[this.base + 2]!;
  }
  /** Shifted ns; (s64)-negative only inside timekeeping_adjust. */
  get xtimeNsec(): bigint {
    return this.st[this.base + 3]!;
  }
  set xtimeNsec(v: bigint) {
    this.st[this.base + 3] = s64(v, 'xtime_nsec');
  }
  toJSON(): Record<string, bigint> {
    return { cycleLast: this.cycleLast, mult: this.mult, shift: this.shift, xtimeNsec: this.xtimeNsec };
  }
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
  /** The timekeeper's integers (slot constants above). */
  readonly st = new BigInt64Array(SLOTS);
  /** clockNs()'s scratch (RD_* slots). */
  private readonly rd = new BigInt64Array(RD_SLOTS);
  readonly mono = new TkReadBase(this.st, MONO_CYCLE_LAST);
  readonly raw = new TkReadBase(this.st, RAW_CYCLE_LAST);
  /**
   * ntp_error beyond 64 bits, in units of 2^64: 0 unless a gap of months or a mult pinned at u32 piles
   * up error (see accumulateExact); the model keeps it exact where the kernel's s64 would wrap.
   */
  private ntpErrorHigh = 0;
  /** wall_to_monotonic as signed ns. */
  wallToMonotonic: Ns = 0n;
  /** offs_boot: time spent suspended. */
  offsBoot: Ns = 0n;
  skipSecondOverflow = false;
  readonly ntp: NtpState;
  /** Accumulation passes (for benchmarks and tests). */
  advances = 0;
  /** Passes that took the exact path for accumulation or adjustment (tests). */
  exactPasses = 0;
  /** cycle_interval and ntp_error_shift allow the fast path (set per clocksource). */
  private fastClocksource = false;
  /** The clocksource's mask is 64 bits (set per clocksource: Clocksource.mask is read-only). */
  private mask64 = true;

  /** timekeeping_init(): start on `cs` (jiffies at boot) with the persistent clock's wall time. */
  constructor(cs: Clocksource, hz: number, wallNs: Ns, bootOffsetNs: Ns) {
    this.ntp = new NtpState(hz);
    this.cs = cs;
    this.st[MINUS_2_32] = -(1n << 32n);
    this.rd[RD_MONO_DIV + 1] = -1n; // no shift seen yet
    this.rd[RD_RAW_DIV + 1] = -1n;
    this.setupInternals(cs, null);
    this.setXtime(wallNs);
    this.rawSec = 0n;
    this.wallToMonotonic = bootOffsetNs - wallNs;
  }

  get xtimeSec(): bigint {
    return this.st[XTIME_SEC]!;
  }
  set xtimeSec(v: bigint) {
    this.st[XTIME_SEC] = s64(v, 'xtime_sec');
  }
  get rawSec(): bigint {
    return this.st[RAW_SEC]!;
  }
  set rawSec(v: bigint) {
    this.st[RAW_SEC] = s64(v, 'raw_sec');
  }
  get cycleInterval(): bigint {
    return this.st[CYCLE_INTERVAL]!;
  }
  get xtimeInterval(): bigint {
    return this.st[XTIME_INTERVAL]!;
  }
  get xtimeRemainder(): bigint {
    return this.st[XTIME_REMAINDER]!;
  }
  get rawInterval(): bigint {
    return this.st[RAW_INTERVAL]!;
  }
  /** ntp_error, exact. */
  get ntpError(): bigint {
    const lo = this.st[NTP_ERROR]!;
    return this.ntpErrorHigh === 0 ? lo : BigInt(this.ntpErrorHigh) * TWO_64 + lo;
  }
  private setNtpError(v: bigint): void {
    const lo = BigInt.asIntN(64, v);
    this.st[NTP_ERROR] = lo;
    this.ntpErrorHigh = Number((v - lo) / TWO_64);
  }
  get ntpErrorShift(): bigint {
    return this.st[NTP_ERROR_SHIFT]!;
  }
  get ntpTick(): bigint {
    return this.st[NTP_TICK]!;
  }
  get ntpErrMult(): bigint {
    return this.st[NTP_ERR_MULT]!;
  }

  /**
   * Accumulate chunk by chunk as logarithmic_accumulation() does (the reference the one-step
   * accumulation is tested against; set `chunked` to use it everywhere).
   */
  chunked = false;

  private read(): Cycles {
    return this.cs.read();
  }

  /** clocksource_delta() with the 6.x max_raw_delta guard: a counter that went backwards reads 0. */
  private delta(now: Cycles, last: bigint): Cycles {
    const mask = this.cs.mask;
    // asUintN: the same bits as & U64_MAX without a 65-bit operand
    const d = mask === U64_MAX ? BigInt.asUintN(64, now - last) : BigInt.asUintN(64, now - last) & mask;
    return d > this.cs.maxRawDelta ? 0n : d;
  }

  private setXtime(ns: Ns): void {
    let sec = ns / NSEC_PER_SEC;
    let rem = ns % NSEC_PER_SEC;
    if (rem < 0n) {
      rem += NSEC_PER_SEC;
      sec -= 1n;
    }
    this.xtimeSec = sec;
    this.mono.xtimeNsec = rem << this.st[MONO_SHIFT]!;
  }

  /** tk_setup_internals(). */
  private setupInternals(clock: Clocksource, old: Clocksource | null): void {
    const st = this.st;
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
    st[CYCLE_INTERVAL] = s64(tmp, 'cycle_interval');
    st[XTIME_INTERVAL] = s64(tmp * mult, 'xtime_interval');
    st[XTIME_REMAINDER] = s64(ntpinterval - tmp * mult, 'xtime_remainder');
    st[RAW_INTERVAL] = s64(tmp * mult, 'raw_interval');
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
    st[MONO_SHIFT] = shift;
    st[RAW_SHIFT] = shift;
    st[MONO_NSECPS] = s64(NSEC_PER_SEC << shift, 'NSEC_PER_SEC << shift');
    st[RAW_NSECPS] = st[MONO_NSECPS]!;
    this.setNtpError(0n);
    const errorShift = NTP_SCALE_SHIFT - shift;
    st[NTP_ERROR_SHIFT] = errorShift;
    st[ERR_SCALE] = errorShift >= 0n ? 1n << errorShift : 0n;
    st[SHIFTED_LIMIT] = errorShift >= 0n ? TWO_62 >> errorShift : 0n;
    st[NTP_TICK] = s64(ntpinterval << errorShift, 'ntp_tick');
    this.mono.mult = mult;
    this.raw.mult = mult;
    st[NTP_ERR_MULT] = 0n;
    this.skipSecondOverflow = false;
    this.fastClocksource = errorShift >= 0n && tmp < FAST_MAX_CYCLE_INTERVAL;
    this.mask64 = clock.mask === U64_MAX;
    st[MASK] = BigInt.asIntN(64, clock.mask);
  }

  /** timekeeping_forward_now(). */
  forwardNow(): void {
    const now = this.read();
    let delta = this.delta(now, this.st[MONO_CYCLE_LAST]!);
    this.mono.cycleLast = now;
    this.raw.cycleLast = now;
    while (delta > 0n) {
      const incr = delta < this.cs.maxCycles ? delta : this.cs.maxCycles;
      // incr·mult < 2^64 (max_cycles) plus a normalized xtime_nsec: exact in locals, normalized before it is stored
      const st = this.st;
      let x = st[MONO_XTIME_NSEC]! + incr * st[MONO_MULT]!;
      let rx = st[RAW_XTIME_NSEC]! + incr * st[RAW_MULT]!;
      const nsecps = st[MONO_NSECPS]!;
      const rawps = st[RAW_NSECPS]!;
      if (x >= nsecps) {
        const q = x / nsecps;
        x -= q * nsecps;
        this.xtimeSec += q;
      }
      if (rx >= rawps) {
        const q = rx / rawps;
        rx -= q * rawps;
        this.rawSec += q;
      }
      this.mono.xtimeNsec = x;
      this.raw.xtimeNsec = rx;
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

  /**
   * accumulate_nsecs_to_secs() on an exact xtime_nsec: each whole second moves xtime_sec and calls
   * second_overflow() unless the previous adjust asked to skip one. Returns the remaining shifted ns.
   */
  private nsecsToSecsExact(xtimeNsec: bigint): bigint {
    const nsecps = this.st[MONO_NSECPS]!;
    let x = xtimeNsec;
    while (x >= nsecps) {
      x -= nsecps;
      this.st[XTIME_SEC] = BigInt.asIntN(64, this.st[XTIME_SEC]! + 1n);
      if (this.skipSecondOverflow) {
        this.skipSecondOverflow = false;
        continue;
      }
      this.ntp.secondOverflow();
    }
    return x;
  }

  /** raw xtime_nsec's whole seconds into raw_sec (the logarithmic_accumulation loop, as one division). */
  private rawNsecsToSecsExact(rawNsec: bigint): void {
    const rawps = this.st[RAW_NSECPS]!;
    if (rawNsec >= rawps) {
      const q = rawNsec / rawps;
      this.rawSec += q;
      rawNsec -= q * rawps;
    }
    this.raw.xtimeNsec = rawNsec;
  }

  /**
   * timekeeping_advance(TK_ADV_TICK): what update_wall_time() does at a tick. The fast path works in
   * slots of `st` (literal constants: a module-level BigInt would be a heap value to compare with).
   */
  advance(freqChange = false): void {
    const st = this.st;
    const cs = this.cs;
    const now = cs.read();
    // clocksource_delta(); the fast path takes deltas in [0, 2^62) as s64, the exact path all others
    st[OFFSET] = BigInt.asIntN(64, now - st[MONO_CYCLE_LAST]!);
    if (!this.mask64) st[OFFSET] = BigInt.asIntN(64, st[OFFSET]! & st[MASK]!);
    if (st[OFFSET]! < 0n || st[OFFSET]! >= 0x4000_0000_0000_0000n || !this.fastClocksource || this.chunked) {
      this.advanceExact(now, freqChange);
      return;
    }
    st[TMP] = BigInt.asIntN(64, cs.maxRawDelta); // negative: ≥ 2^63, above any offset here
    if (st[TMP]! >= 0n && st[OFFSET]! > st[TMP]!) st[OFFSET] = 0n;
    if (st[OFFSET]! < st[CYCLE_INTERVAL]! && !freqChange) return;
    this.advances++;
    st[INTERVALS] = BigInt.asIntN(64, st[OFFSET]! / st[CYCLE_INTERVAL]!);
    if (st[INTERVALS] !== 0n) {
      if (this.accumulateFits()) this.accumulateFast();
      else {
        this.exactPasses++;
        st[OFFSET] = this.accumulateExact(st[OFFSET]!);
      }
    }
    if (!this.adjustFast()) {
      this.exactPasses++;
      this.adjustExact(st[OFFSET]!);
    }
    this.finishAdvance();
  }

  /**
   * The clocksource's read as a TscPlan (ClocksourceSpec.plan) while nothing but time moves, when the
   * WebAssembly loop can take this timekeeper's updates (advanceEvery); null otherwise.
   */
  quietPlan(): TscPlan | null {
    if (!this.fastClocksource || this.chunked || !quietLoop()) return null;
    return this.cs.plan?.() ?? null;
  }

  /**
   * `n` advance()s at true times t, t + interval, …, t + (n − 1)·interval, the clocksource read by
   * `plan` (quietPlan(), while it holds) in the WebAssembly loop (quiet-wasm.ts): the same integers as n
   * calls of advance() with the caller's time at each. An update the loop's guards leave out runs here,
   * after `moveTo(its time)`; at the end the caller's time is moved to the last update's. False (nothing
   * done): the loop cannot take them — the caller runs the updates itself.
   */
  advanceEvery(plan: TscPlan, t: Ns, interval: Ns, n: number, moveTo: (t: Ns) => void): boolean {
    if (n < 1 || !this.fastClocksource || this.chunked) return false;
    const loop = quietLoop();
    if (!loop) return false;
    const m = loop.mem;
    setPlan(loop, plan);
    m[IO_MAX_RAW_DELTA] = BigInt.asIntN(64, this.cs.maxRawDelta);
    m[IO_MASK64] = this.mask64 ? 1n : 0n;
    this.toLoop(loop);
    let at = t;
    for (let left = n; ; ) {
      const done = loop.run(left, at, interval);
      left -= done;
      this.fromLoop(loop);
      if (left === 0) break;
      // the update at `at`, which the loop left to the exact paths: before it started, or after accumulating
      at += BigInt(done) * interval;
      moveTo(at);
      if (loop.flags[FLAG_STATUS] === 1) this.advance();
      else {
        this.exactPasses++;
        this.adjustExact(this.st[OFFSET]!);
        this.finishAdvance();
      }
      left--;
      if (left === 0) break;
      at += interval;
      this.toLoop(loop);
    }
    moveTo(t + BigInt(n - 1) * interval);
    return true;
  }

  /** The fields the loop reads and writes, into its memory. */
  private toLoop(loop: QuietLoop): void {
    loop.tk.set(this.st);
    loop.ntp.set(this.ntp.st);
    const f = loop.flags;
    f[FLAG_ERR_HIGH] = Math.max(-0x4000_0000, Math.min(0x4000_0000, this.ntpErrorHigh));
    f[FLAG_SKIP] = this.skipSecondOverflow ? 1 : 0;
    f[FLAG_ADVANCES] = 0;
    f[FLAG_UNSYNC] = 0;
  }

  /** The loop's results back into the fields. */
  private fromLoop(loop: QuietLoop): void {
    this.st.set(loop.tk);
    this.ntp.st.set(loop.ntp);
    const f = loop.flags;
    // the loop carried into the high part (clamped on the way in: only the change counts)
    this.ntpErrorHigh += f[FLAG_ERR_HIGH]! - Math.max(-0x4000_0000, Math.min(0x4000_0000, this.ntpErrorHigh));
    this.skipSecondOverflow = f[FLAG_SKIP] !== 0;
    this.advances += f[FLAG_ADVANCES]!;
    if (f[FLAG_UNSYNC] !== 0) this.ntp.timeStatus |= STA_UNSYNC;
  }

  /**
   * Whether accumulateFast() stays exact: xtime_nsec normalized, every product n·xtime_interval,
   * n·raw_interval, n·|per-interval error| at most 2^62, ntp_error inside s64. Sets SHIFTED, PER_INTERVAL.
   */
  private accumulateFits(): boolean {
    const st = this.st;
    if (this.ntpErrorHigh !== 0) return false;
    if (st[NTP_TICK]! < 0n || st[NTP_TICK]! >= 0x4000_0000_0000_0000n) return false;
    if (st[MONO_XTIME_NSEC]! < 0n || st[MONO_XTIME_NSEC]! >= 0x4000_0000_0000_0000n) return false;
    if (st[RAW_XTIME_NSEC]! < 0n || st[RAW_XTIME_NSEC]! >= 0x4000_0000_0000_0000n) return false;
    st[SHIFTED] = BigInt.asIntN(64, st[XTIME_INTERVAL]! + st[XTIME_REMAINDER]!);
    if (st[SHIFTED]! < 0n || st[SHIFTED]! >= st[SHIFTED_LIMIT]!) return false;
    // ntp_tick − (xtime_interval + xtime_remainder) << ntp_error_shift, both terms in [0, 2^62)
    st[PER_INTERVAL] = BigInt.asIntN(64, st[NTP_TICK]! - BigInt.asIntN(64, st[SHIFTED]! * st[ERR_SCALE]!));
    st[LARGEST] = st[RAW_INTERVAL]!; // ≥ cycle_interval > 0 (raw mult ≥ 1)
    if (st[XTIME_INTERVAL]! > st[LARGEST]!) st[LARGEST] = st[XTIME_INTERVAL]!;
    if (st[PER_INTERVAL]! > st[LARGEST]!) st[LARGEST] = st[PER_INTERVAL]!;
    if (BigInt.asIntN(64, -st[PER_INTERVAL]!) > st[LARGEST]!) st[LARGEST] = BigInt.asIntN(64, -st[PER_INTERVAL]!);
    // n < 2^14 and every factor < 2^48 (an update of seconds): the product is below 2^62 without a division
    if (st[INTERVALS]! < 0x4000n && st[LARGEST]! < 0x1_0000_0000_0000n) return true;
    return st[LARGEST]! > 0n && st[INTERVALS]! <= BigInt.asIntN(64, 0x4000_0000_0000_0000n / st[LARGEST]!);
  }

  /** accumulateExact()'s one step on s64 slots, under accumulateFits(). */
  private accumulateFast(): void {
    const st = this.st;
    st[CYCLES] = BigInt.asIntN(64, st[INTERVALS]! * st[CYCLE_INTERVAL]!); // ≤ n·raw_interval ≤ 2^62
    st[MONO_CYCLE_LAST] = BigInt.asIntN(64, st[MONO_CYCLE_LAST]! + st[CYCLES]!);
    st[RAW_CYCLE_LAST] = BigInt.asIntN(64, st[RAW_CYCLE_LAST]! + st[CYCLES]!);
    st[OFFSET] = BigInt.asIntN(64, st[OFFSET]! - st[CYCLES]!);
    st[MONO_XTIME_NSEC] = BigInt.asIntN(64, st[MONO_XTIME_NSEC]! + BigInt.asIntN(64, st[INTERVALS]! * st[XTIME_INTERVAL]!));
    this.accumulateNsecsToSecs();
    // the raw clock's seconds (as many as the loop above took: a subtraction is cheaper than a division)
    st[RAW_XTIME_NSEC] = BigInt.asIntN(64, st[RAW_XTIME_NSEC]! + BigInt.asIntN(64, st[INTERVALS]! * st[RAW_INTERVAL]!));
    while (st[RAW_XTIME_NSEC]! >= st[RAW_NSECPS]!) {
      st[RAW_XTIME_NSEC] = BigInt.asIntN(64, st[RAW_XTIME_NSEC]! - st[RAW_NSECPS]!);
      st[RAW_SEC] = BigInt.asIntN(64, st[RAW_SEC]! + 1n);
    }
    // ntp_error += n·per_interval; a sum past s64 carries into ntpErrorHigh
    st[ERROR_ADD] = BigInt.asIntN(64, st[INTERVALS]! * st[PER_INTERVAL]!);
    st[ERROR_SUM] = BigInt.asIntN(64, st[NTP_ERROR]! + st[ERROR_ADD]!);
    if (st[ERROR_ADD]! > 0n && st[ERROR_SUM]! < st[NTP_ERROR]!) this.ntpErrorHigh++;
    else if (st[ERROR_ADD]! < 0n && st[ERROR_SUM]! > st[NTP_ERROR]!) this.ntpErrorHigh--;
    st[NTP_ERROR] = st[ERROR_SUM]!;
  }

  /**
   * timekeeping_adjust() on s64 slots; false (nothing changed) where it might not be exact: a tick
   * length outside [0, 2^62) or a mult step beyond ±2^32 (|offset·mult_adj| < 2^29·2^32 then).
   */
  private adjustFast(): boolean {
    const st = this.st;
    st[TICK_LENGTH] = this.ntp.st[0]!; // ntp_tick_length()
    if (st[NTP_TICK] === st[TICK_LENGTH]) st[MULT] = BigInt.asIntN(64, st[MONO_MULT]! - st[NTP_ERR_MULT]!);
    else if (st[TICK_LENGTH]! >= 0n && st[TICK_LENGTH]! < 0x4000_0000_0000_0000n) {
      // div64_u64((ntp_tick >> ntp_error_shift) − xtime_remainder, cycle_interval): >> of a non-negative value is a division
      st[MULT] = BigInt.asIntN(64, st[TICK_LENGTH]! / st[ERR_SCALE]!);
      st[MULT] = BigInt.asIntN(64, BigInt.asIntN(64, st[MULT]! - st[XTIME_REMAINDER]!) / st[CYCLE_INTERVAL]!);
    } else return false;
    // ntp_err_mult = ntp_error > 0
    if (this.ntpErrorHigh > 0 || (this.ntpErrorHigh === 0 && st[NTP_ERROR]! > 0n)) st[ERR_MULT] = 1n;
    else st[ERR_MULT] = 0n;
    st[MULT_ADJ] = BigInt.asIntN(64, BigInt.asIntN(64, st[MULT]! + st[ERR_MULT]!) - st[MONO_MULT]!);
    if (st[MULT_ADJ]! > 0x1_0000_0000n || st[MULT_ADJ]! < st[MINUS_2_32]!) return false;
    st[NTP_TICK] = st[TICK_LENGTH]!;
    st[NTP_ERR_MULT] = st[ERR_MULT]!;
    // timekeeping_apply_adjustment(): refused if mult would leave u32
    if (st[MULT_ADJ] !== 0n && !(st[MULT_ADJ]! > 0n && BigInt.asIntN(64, st[MONO_MULT]! + st[MULT_ADJ]!) > 0xffff_ffffn)) {
      st[MONO_MULT] = BigInt.asIntN(64, st[MONO_MULT]! + st[MULT_ADJ]!);
      st[XTIME_INTERVAL] = BigInt.asIntN(64, st[XTIME_INTERVAL]! + BigInt.asIntN(64, st[CYCLE_INTERVAL]! * st[MULT_ADJ]!));
      st[MONO_XTIME_NSEC] = BigInt.asIntN(64, st[MONO_XTIME_NSEC]! - BigInt.asIntN(64, st[OFFSET]! * st[MULT_ADJ]!));
    }
    // (s64)tkr_mono.xtime_nsec < 0: borrow a second, and skip its second_overflow()
    if (st[MONO_XTIME_NSEC]! < 0n) {
      st[MONO_XTIME_NSEC] = BigInt.asIntN(64, st[MONO_XTIME_NSEC]! + st[MONO_NSECPS]!);
      st[XTIME_SEC] = BigInt.asIntN(64, st[XTIME_SEC]! - 1n);
      this.skipSecondOverflow = true;
    }
    return true;
  }

  /** advance() with unbounded BigInts throughout. */
  private advanceExact(now: Cycles, freqChange: boolean): void {
    const offset = this.delta(now, this.st[MONO_CYCLE_LAST]!);
    if (offset < this.st[CYCLE_INTERVAL]! && !freqChange) return;
    this.advances++;
    this.exactPasses++;
    this.adjustExact(this.accumulateExact(offset));
    this.finishAdvance();
  }

  /** The accumulate_nsecs_to_secs() that ends timekeeping_advance(). */
  private finishAdvance(): void {
    this.accumulateNsecsToSecs();
  }

  /**
   * accumulate_nsecs_to_secs() on the stored (normalized-below-2^63) xtime_nsec: each whole second
   * moves xtime_sec and calls second_overflow() unless the last adjust asked to skip one.
   */
  private accumulateNsecsToSecs(): void {
    const st = this.st;
    while (st[MONO_XTIME_NSEC]! >= st[MONO_NSECPS]!) {
      st[MONO_XTIME_NSEC] = BigInt.asIntN(64, st[MONO_XTIME_NSEC]! - st[MONO_NSECPS]!);
      st[XTIME_SEC] = BigInt.asIntN(64, st[XTIME_SEC]! + 1n);
      if (this.skipSecondOverflow) this.skipSecondOverflow = false;
      else this.ntp.secondOverflow();
    }
  }

  /**
   * Accumulation with unbounded BigInts, for what the fast path's guards leave out (a negative
   * ntp_error_shift, a gap so long that n·xtime_interval passes 2^62, `chunked`).
   *
   * In one step: what timekeeping_advance()'s loop of logarithmic_accumulation() calls
   * (kernel/time/timekeeping.c) adds up to. The loop takes chunks of cycle_interval << shift until less
   * than one cycle_interval is left: n = offset / cycle_interval intervals in all, whatever the chunks.
   * Every chunk adds the same multiples of one interval — xtime_interval, raw_interval, and to ntp_error
   * ntp_tick − (xtime_interval + xtime_remainder) << ntp_error_shift (a left shift: ntp_error_shift ≥ 0)
   * — and mult does not change inside the loop, so the sums are n times those.
   * accumulate_nsecs_to_secs() after each chunk crosses the same seconds in the same order as once
   * after all of them: second_overflow() reads nothing the chunks change, so it sees the same calls.
   * n·xtime_interval may pass 2^64 here (the kernel's chunks never do: it normalizes after each); the
   * sum is exact and normalized before it is stored. ntp_error is kept exact past 2^63 (ntpErrorHigh),
   * where the kernel's s64 would wrap: after a gap of weeks with the counter still running.
   */
  private accumulateExact(offsetIn: Cycles): Cycles {
    const st = this.st;
    const cycleInterval = st[CYCLE_INTERVAL]!;
    const xtimeInterval = st[XTIME_INTERVAL]!;
    const rawInterval = st[RAW_INTERVAL]!;
    const remainder = st[XTIME_REMAINDER]!;
    const errorShift = st[NTP_ERROR_SHIFT]!;
    let offset = offsetIn;
    if (this.chunked || errorShift < 0n) {
      // logarithmic_accumulation() chunk by chunk
      let shift = Math.max(0, ilog2(offset) - ilog2(cycleInterval));
      const maxshift = 64 - (ilog2(this.ntp.ntpTickLength()) + 1) - 1;
      shift = Math.min(shift, maxshift);
      let err = this.ntpError;
      while (offset >= cycleInterval) {
        const s = BigInt(shift);
        const interval = cycleInterval << s;
        if (offset >= interval) {
          offset -= interval;
          this.mono.cycleLast = BigInt.asUintN(64, this.mono.cycleLast + interval);
          this.raw.cycleLast = BigInt.asUintN(64, this.raw.cycleLast + interval);
          this.mono.xtimeNsec = this.nsecsToSecsExact(st[MONO_XTIME_NSEC]! + (xtimeInterval << s));
          this.rawNsecsToSecsExact(st[RAW_XTIME_NSEC]! + (rawInterval << s));
          err += st[NTP_TICK]! << s;
          err -= (xtimeInterval + remainder) << (errorShift + s);
        }
        if (offset < cycleInterval << s) shift--;
      }
      this.setNtpError(err);
      return offset;
    }
    const n = offset / cycleInterval;
    if (n === 0n) return offset;
    const cycles = n * cycleInterval;
    this.mono.cycleLast = BigInt.asUintN(64, this.mono.cycleLast + cycles);
    this.raw.cycleLast = BigInt.asUintN(64, this.raw.cycleLast + cycles);
    this.mono.xtimeNsec = this.nsecsToSecsExact(st[MONO_XTIME_NSEC]! + n * xtimeInterval);
    this.rawNsecsToSecsExact(st[RAW_XTIME_NSEC]! + n * rawInterval);
    this.setNtpError(this.ntpError + n * (st[NTP_TICK]! - ((xtimeInterval + remainder) << errorShift)));
    return offset - cycles;
  }

  /** timekeeping_adjust() with unbounded BigInts: steer mult so that accumulated time follows NTP's tick length. */
  private adjustExact(offset: bigint): void {
    const st = this.st;
    const ntpTl = this.ntp.ntpTickLength();
    let mult: bigint;
    if (st[NTP_TICK] === ntpTl) {
      mult = st[MONO_MULT]! - st[NTP_ERR_MULT]!;
    } else {
      st[NTP_TICK] = ntpTl;
      mult = ((ntpTl >> st[NTP_ERROR_SHIFT]!) - st[XTIME_REMAINDER]!) / st[CYCLE_INTERVAL]!;
    }
    st[NTP_ERR_MULT] = this.ntpError > 0n ? 1n : 0n;
    mult += st[NTP_ERR_MULT]!;
    // timekeeping_apply_adjustment()
    const multAdj = mult - st[MONO_MULT]!;
    let xtimeNsec = st[MONO_XTIME_NSEC]!;
    if (multAdj !== 0n && !(multAdj > 0n && st[MONO_MULT]! + multAdj > 0xffff_ffffn)) {
      this.mono.mult = st[MONO_MULT]! + multAdj;
      st[XTIME_INTERVAL] = s64(st[XTIME_INTERVAL]! + st[CYCLE_INTERVAL]! * multAdj, 'xtime_interval');
      xtimeNsec -= offset * multAdj;
    }
    if (xtimeNsec < 0n) {
      xtimeNsec += st[MONO_NSECPS]!;
      this.xtimeSec -= 1n;
      this.skipSecondOverflow = true;
    }
    // above NSEC_PER_SEC << shift it fits once finishAdvance() has taken the seconds out
    this.mono.xtimeNsec = xtimeNsec < st[MONO_NSECPS]! ? xtimeNsec : this.nsecsToSecsExact(xtimeNsec);
  }

  /**
   * ktime_get_real() / ktime_get_raw() in ns: the seconds at `sec` (xtime_sec, raw_sec) plus
   * timekeeping_get_ns() of the tk_read_base at `base`, read now (on CPU `cpu` when given). On s64
   * slots of `rd` (no heap BigInt but the result) while every term is inside the bounds below; the
   * same sum with unbounded BigInts otherwise.
   */
  private clockNs(base: number, sec: number, cpu?: number): Ns {
    const st = this.st;
    const rd = this.rd;
    const cs = this.cs;
    const now = cpu !== undefined && cs.readOn ? cs.readOn(cpu) : cs.read();
    // clocksource_delta() as s64 (the u64 difference's bits)
    rd[RD_DELTA] = BigInt.asIntN(64, now - st[base]!);
    if (!this.mask64) rd[RD_DELTA] = BigInt.asIntN(64, rd[RD_DELTA]! & st[MASK]!);
    // delta < 2^32, mult < 2^29: delta·mult < 2^61, plus xtime_nsec in [0, 2^62) stays below 2^63;
    // sec in [0, 2^32): sec·NSEC_PER_SEC < 2^62, plus the ns (below 2^62) too; shift < 62: 1 << shift is s64
    if (
      rd[RD_DELTA]! >= 0n &&
      rd[RD_DELTA]! < 0x1_0000_0000n &&
      st[base + 1]! >= 0n &&
      st[base + 1]! < 0x2000_0000n &&
      st[base + 3]! >= 0n &&
      st[base + 3]! < 0x4000_0000_0000_0000n &&
      st[sec]! >= 0n &&
      st[sec]! < 0x1_0000_0000n &&
      st[base + 2]! < 62n &&
      cs.maxRawDelta >= 0n
    ) {
      // the 6.x max_raw_delta guard (a maxRawDelta ≥ 2^63 is negative as s64: above any delta here)
      rd[RD_TMP] = BigInt.asIntN(64, cs.maxRawDelta);
      if (rd[RD_TMP]! >= 0n && rd[RD_DELTA]! > rd[RD_TMP]!) rd[RD_DELTA] = 0n;
      // >> shift of a non-negative value as a division by 1 << shift (V8 lowers the division, not a variable shift)
      const div = base === MONO_CYCLE_LAST ? RD_MONO_DIV : RD_RAW_DIV;
      if (rd[div + 1] !== st[base + 2]) {
        rd[div] = 1n << st[base + 2]!;
        rd[div + 1] = st[base + 2]!;
      }
      rd[RD_DELTA] = BigInt.asIntN(64, BigInt.asIntN(64, BigInt.asIntN(64, rd[RD_DELTA]! * st[base + 1]!) + st[base + 3]!) / rd[div]!);
      rd[RD_DELTA] = BigInt.asIntN(64, BigInt.asIntN(64, st[sec]! * 1_000_000_000n) + rd[RD_DELTA]!);
      return rd[RD_DELTA]!;
    }
    const delta = this.delta(now, st[base]!);
    return st[sec]! * NSEC_PER_SEC + ((delta * st[base + 1]! + st[base + 3]!) >> st[base + 2]!);
  }

  /** clock_gettime(id) in ns, on CPU `cpu` (its clocksource read) when given. */
  get(id: ClockId, cpu?: number): Ns {
    if (id === 'monotonic_raw') return this.clockNs(RAW_CYCLE_LAST, RAW_SEC, cpu);
    const real = this.clockNs(MONO_CYCLE_LAST, XTIME_SEC, cpu);
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
