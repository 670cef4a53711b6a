// The kernel's NTP discipline (kernel/time/ntp.c): tick length from tick_usec and time_freq, the
// offset PLL/FLL fed by adjtimex(ADJ_OFFSET), the per-second phase chunk applied in
// second_overflow(), the 500 ppm frequency limit, adjtime()'s slew, and the adjtimex fields.
// All quantities keep the kernel's scaling: time_freq and tick_length are ns << NTP_SCALE_SHIFT.

import { NTP_SLOTS } from './quiet-wasm.ts';

export const NTP_SCALE_SHIFT = 32n;
export const SHIFT_PLL = 2n;
export const SHIFT_FLL = 2n;
export const SHIFT_USEC = 16n;
export const MAXPHASE = 500_000_000n; // ns
export const MAXFREQ = 500_000n; // ns/s = 500 ppm
export const MAXFREQ_SCALED = MAXFREQ << NTP_SCALE_SHIFT;
export const MINSEC = 256n;
export const MAXSEC = 2048n;
export const MAXTC = 10n;
export const NTP_PHASE_LIMIT = (MAXPHASE / 1000n) << 5n; // µs
export const PPM_SCALE = 1000n << (NTP_SCALE_SHIFT - SHIFT_USEC);
export const PPM_SCALE_INV_SHIFT = 19n;
export const PPM_SCALE_INV = (1n << (PPM_SCALE_INV_SHIFT + NTP_SCALE_SHIFT)) / PPM_SCALE + 1n;
export const MAX_TICKADJ = 500n; // µs
export const USER_HZ = 100n;

// include/uapi/linux/timex.h
export const ADJ_OFFSET = 0x0001;
export const ADJ_FREQUENCY = 0x0002;
export const ADJ_MAXERROR = 0x0004;
export const ADJ_ESTERROR = 0x0008;
export const ADJ_STATUS = 0x0010;
export const ADJ_TIMECONST = 0x0020;
export const ADJ_TAI = 0x0080;
export const ADJ_SETOFFSET = 0x0100;
export const ADJ_MICRO = 0x1000;
export const ADJ_NANO = 0x2000;
export const ADJ_TICK = 0x4000;
export const ADJ_OFFSET_SINGLESHOT = 0x8001;

export const STA_PLL = 0x0001;
export const STA_PPSFREQ = 0x0002;
export const STA_PPSTIME = 0x0004;
export const STA_FLL = 0x0008;
export const STA_INS = 0x0010;
export const STA_DEL = 0x0020;
export const STA_UNSYNC = 0x0040;
export const STA_FREQHOLD = 0x0080;
export const STA_PPSSIGNAL = 0x0100;
export const STA_PPSJITTER = 0x0200;
export const STA_PPSWANDER = 0x0400;
export const STA_PPSERROR = 0x0800;
export const STA_CLOCKERR = 0x1000;
export const STA_NANO = 0x2000;
export const STA_MODE = 0x4000;
export const STA_CLK = 0x8000;
const STA_RONLY = STA_PPSSIGNAL | STA_PPSJITTER | STA_PPSWANDER | STA_PPSERROR | STA_CLOCKERR | STA_NANO | STA_MODE | STA_CLK;

export const TIME_OK = 0;
export const TIME_ERROR = 5;

/** shift_right() from ntp.c: arithmetic shift that rounds toward zero for negatives. */
export function shiftRight(x: bigint, s: bigint): bigint {
  return x < 0n ? -(-x >> s) : x >> s;
}

const clamp = (x: bigint, lo: bigint, hi: bigint): bigint => (x < lo ? lo : x > hi ? hi : x);

export interface Timex {
  modes?: number;
  offset?: number | bigint; // µs, or ns with ADJ_NANO / STA_NANO
  freq?: number | bigint; // ppm << 16
  maxerror?: number | bigint;
  esterror?: number | bigint;
  status?: number;
  constant?: number | bigint;
  tick?: number | bigint;
  /** ADJ_SETOFFSET: the step, in ns (the kernel's struct timeval/timespec). */
  setOffsetNs?: bigint;
}

export interface TimexResult {
  state: number;
  offset: bigint;
  freq: bigint;
  maxerror: bigint;
  esterror: bigint;
  status: number;
  constant: bigint;
  precision: bigint;
  tolerance: bigint;
  tick: bigint;
}

// NtpState's per-second state lives in one BigInt64Array so that second_overflow() runs on native
// 64-bit integers without allocating: TurboFan (V8 11) lowers BigInt.asIntN(64, …) arithmetic on
// typed-array elements, but boxes a BigInt held in a local across a branch, so even intermediate values
// go through a slot (DELTA). The kernel's fields are 64-bit too (ntp.c: tick_length/tick_length_base u64, time_offset
// s64, time_maxerror/time_adjust/time_constant long). Every value stays far inside 2^63 (bounds at
// secondOverflow), so the wrapping arithmetic gives the same integers as unbounded BigInts.
const TICK_LENGTH = 0;
const TICK_LENGTH_BASE = 1;
const TIME_OFFSET = 2;
const TIME_MAXERROR = 3;
const TIME_ADJUST = 4;
const TIME_CONSTANT = 5;
/** 1 << (SHIFT_PLL + time_constant): shift_right() by it is a division (both round toward zero). */
const OFFSET_CHUNK_DIV = 6;
const MAX_TICKADJ_SCALED = 7;
const HZ = 8;
const PHASE_LIMIT = 9; // NTP_PHASE_LIMIT
const DELTA = 10; // scratch: second_overflow()'s phase chunk
const MINUS_MAX_TICKADJ = 11; // −MAX_TICKADJ (a negative literal in a comparison is a heap BigInt made each time)
const SLOTS = NTP_SLOTS; // the WebAssembly loop's memory holds them too

const S64_MIN = -(1n << 63n);
const S64_MAX = (1n << 63n) - 1n;

// Negated constants made once (a unary minus on a BigInt makes a heap BigInt at each use).
const MINUS_MAXPHASE = -MAXPHASE;
const MINUS_MAXFREQ_SCALED = -MAXFREQ_SCALED;
const MINUS_USEC_PER_SEC = -1_000_000n;
/** The result's tolerance: MAXFREQ_SCALED / PPM_SCALE (a constant in ntp.c's __do_adjtimex). */
const TOLERANCE = MAXFREQ_SCALED / PPM_SCALE;

// NtpState.rs: adjtimex's arithmetic on s64 slots (result(), updateOffsetFast(), updateFrequency()),
// with the constants it compares with (a module-level BigInt is a heap value, a slot is not).
const RS_OFFSET = 0;
const RS_FREQ = 1;
const RS_PPM_SCALE_INV = 2;
const U_OFFSET = 3;
const U_SECS = 4;
const U_FREQ_ADJ = 5;
const U_CAP = 6; // 1 << (SHIFT_PLL + 1 + time_constant)
const U_MINUS_CAP = 7;
const U_PLL_MUL = 8; // 1 << (NTP_SCALE_SHIFT − 2·(SHIFT_PLL + 2 + time_constant)), when that shift is ≥ 0
const U_MAXFREQ = 9; // MAXFREQ_SCALED
const U_MINUS_MAXFREQ = 10;
const F_BASE = 11; // ntp_update_frequency()'s tick_usec term (secondLengthBase)
const F_NEW_BASE = 12;
const R_MAXERROR = 13; // the time_maxerror resultMaxerror was made for
const R_CONSTANT = 14; // the time_constant resultConstant was made for
const RS_SLOTS = 15;
const TWO_60 = 1n << 60n;
const MINUS_TWO_60 = -TWO_60;
const TWO_61 = 1n << 61n;
const MINUS_TWO_61 = -TWO_61;
const TWO_62 = 1n << 62n;
const MINUS_TWO_62 = -TWO_62;
/** |time_offset| below it: time_offset·HZ (HZ < 2^20) stays below 2^60. */
const RS_OFFSET_LIMIT = 1n << 40n;
const RS_MINUS_OFFSET_LIMIT = -RS_OFFSET_LIMIT;
/** |time_freq| up to it: (time_freq >> 19)·PPM_SCALE_INV (< 2^26) stays below 2^60. */
const RS_FREQ_LIMIT = 1n << 52n;
const RS_MINUS_FREQ_LIMIT = -RS_FREQ_LIMIT;

/** A value for one of the kernel's 64-bit fields; one that does not fit is a model error, not a wrap. */
function s64(v: bigint, what: string): bigint {
  if (v < S64_MIN || v > S64_MAX) throw new RangeError(`ntp: ${what} ${v} does not fit the kernel's 64-bit field`);
  return v;
}

export class NtpState {
  tickUsec: bigint;
  timeState = TIME_OK;
  timeStatus = STA_UNSYNC;
  timeEsterror = NTP_PHASE_LIMIT;
  timeFreq = 0n;
  timeReftime = 0n;
  ntpTickAdj = 0n;
  readonly hz: bigint;
  /** The per-second state (see the slot constants above). */
  readonly st = new BigInt64Array(SLOTS);
  /** adjtimex's scratch slots (RS_*, U_*, F_*). */
  private readonly rs = new BigInt64Array(RS_SLOTS);
  /** The PLL shift for this time_constant is ≥ 0 (U_PLL_MUL holds it): updateOffsetFast() applies. */
  private pllFast = false;
  /** secondLengthBase is below 2^62.2 (F_BASE holds it): updateFrequency()'s s64 path applies. */
  private secondLengthFast = false;
  /** The result's maxerror and constant as last returned (they seldom change between calls). */
  private resultMaxerror = 0n;
  private resultConstant = 0n;
  /** ntp_update_offset()'s PLL terms for the current time_constant: the cap on secs, and the shift of offset·secs. */
  private pllSecsCap = 0n;
  private pllShift = 0n;
  /** ntp_update_frequency()'s (tick_usec · NSEC_PER_USEC · USER_HZ) << NTP_SCALE_SHIFT, for `secondLengthTickUsec`. */
  private secondLengthBase = 0n;
  private secondLengthTickUsec = -1n;

  constructor(hz: number) {
    this.hz = BigInt(hz);
    this.st[HZ] = this.hz;
    this.st[MAX_TICKADJ_SCALED] = ((MAX_TICKADJ * 1000n) << NTP_SCALE_SHIFT) / this.hz;
    this.st[PHASE_LIMIT] = NTP_PHASE_LIMIT;
    this.st[MINUS_MAX_TICKADJ] = -MAX_TICKADJ;
    this.rs[RS_PPM_SCALE_INV] = PPM_SCALE_INV;
    this.rs[U_MAXFREQ] = MAXFREQ_SCALED;
    this.rs[U_MINUS_MAXFREQ] = MINUS_MAXFREQ_SCALED;
    this.rs[R_MAXERROR] = this.resultMaxerror;
    this.rs[R_CONSTANT] = this.resultConstant;
    this.timeConstant = 2n;
    this.timeMaxerror = NTP_PHASE_LIMIT;
    // USER_TICK_USEC = (1000000 + USER_HZ/2) / USER_HZ
    this.tickUsec = (1_000_000n + USER_HZ / 2n) / USER_HZ;
    this.clear();
  }

  get tickLength(): bigint {
    return this.st[TICK_LENGTH];
  }
  set tickLength(v: bigint) {
    this.st[TICK_LENGTH] = s64(v, 'tick_length');
  }
  get tickLengthBase(): bigint {
    return this.st[TICK_LENGTH_BASE];
  }
  set tickLengthBase(v: bigint) {
    this.st[TICK_LENGTH_BASE] = s64(v, 'tick_length_base');
  }
  get timeOffset(): bigint {
    return this.st[TIME_OFFSET];
  }
  set timeOffset(v: bigint) {
    this.st[TIME_OFFSET] = s64(v, 'time_offset');
  }
  get timeMaxerror(): bigint {
    return this.st[TIME_MAXERROR];
  }
  set timeMaxerror(v: bigint) {
    this.st[TIME_MAXERROR] = s64(v, 'time_maxerror');
  }
  /** adjtime()'s remaining slew, µs. */
  get timeAdjust(): bigint {
    return this.st[TIME_ADJUST];
  }
  set timeAdjust(v: bigint) {
    this.st[TIME_ADJUST] = s64(v, 'time_adjust');
  }
  get timeConstant(): bigint {
    return this.st[TIME_CONSTANT];
  }
  set timeConstant(v: bigint) {
    // adjtimex clamps it to 0..MAXTC; the chunk divisor 1 << (SHIFT_PLL + tc) must stay a 64-bit power of two
    if (v < 0n || v > 60n) throw new RangeError(`ntp: time_constant ${v} outside 0..60`);
    this.st[TIME_CONSTANT] = v;
    this.st[OFFSET_CHUNK_DIV] = 1n << (SHIFT_PLL + v);
    this.pllSecsCap = 1n << (SHIFT_PLL + 1n + v);
    this.pllShift = NTP_SCALE_SHIFT - 2n * (SHIFT_PLL + 2n + v);
    this.pllFast = this.pllShift >= 0n;
    this.rs[U_CAP] = this.pllSecsCap;
    this.rs[U_MINUS_CAP] = -this.pllSecsCap;
    this.rs[U_PLL_MUL] = this.pllFast ? 1n << this.pllShift : 0n;
  }

  /** Named fields (JSON, test comparisons). */
  toJSON(): Record<string, bigint | number> {
    return {
      tickUsec: this.tickUsec,
      tickLength: this.tickLength,
      tickLengthBase: this.tickLengthBase,
      timeState: this.timeState,
      timeStatus: this.timeStatus,
      timeOffset: this.timeOffset,
      timeConstant: this.timeConstant,
      timeMaxerror: this.timeMaxerror,
      timeEsterror: this.timeEsterror,
      timeFreq: this.timeFreq,
      timeReftime: this.timeReftime,
      timeAdjust: this.timeAdjust,
      ntpTickAdj: this.ntpTickAdj,
      hz: this.hz,
    };
  }

  /** NTP_INTERVAL_LENGTH in ns. */
  get intervalLength(): bigint {
    return 1_000_000_000n / this.hz;
  }

  /** ntp_clear(). */
  clear(): void {
    this.timeAdjust = 0n;
    this.timeStatus |= STA_UNSYNC;
    this.timeMaxerror = NTP_PHASE_LIMIT;
    this.timeEsterror = NTP_PHASE_LIMIT;
    this.updateFrequency();
    this.tickLength = this.tickLengthBase;
    this.timeOffset = 0n;
  }

  /** ntp_update_frequency(). */
  updateFrequency(): void {
    if (this.tickUsec !== this.secondLengthTickUsec) {
      this.secondLengthBase = (this.tickUsec * 1000n * USER_HZ) << NTP_SCALE_SHIFT;
      this.secondLengthTickUsec = this.tickUsec;
      this.secondLengthFast = this.secondLengthBase >= 0n && this.secondLengthBase < 0x4800_0000_0000_0000n;
      this.rs[F_BASE] = this.secondLengthFast ? this.secondLengthBase : 0n;
    }
    const st = this.st;
    const rs = this.rs;
    // on s64 slots: second_length < 2^62.2 + 2·2^60 and each term of the new tick_length below 2^61
    if (
      this.secondLengthFast &&
      this.ntpTickAdj < TWO_60 &&
      this.ntpTickAdj > MINUS_TWO_60 &&
      this.timeFreq < TWO_60 &&
      this.timeFreq > MINUS_TWO_60 &&
      st[TICK_LENGTH]! < TWO_61 &&
      st[TICK_LENGTH]! > MINUS_TWO_61 &&
      st[TICK_LENGTH_BASE]! < TWO_61 &&
      st[TICK_LENGTH_BASE]! > MINUS_TWO_61
    ) {
      rs[F_NEW_BASE] = BigInt.asIntN(64, BigInt.asIntN(64, BigInt.asIntN(64, rs[F_BASE]! + this.ntpTickAdj) + this.timeFreq) / st[HZ]!);
      if (rs[F_NEW_BASE]! < TWO_61 && rs[F_NEW_BASE]! > MINUS_TWO_61) {
        st[TICK_LENGTH] = BigInt.asIntN(64, BigInt.asIntN(64, st[TICK_LENGTH]! + rs[F_NEW_BASE]!) - st[TICK_LENGTH_BASE]!);
        st[TICK_LENGTH_BASE] = rs[F_NEW_BASE]!;
        return;
      }
    }
    let secondLength = this.secondLengthBase;
    secondLength += this.ntpTickAdj;
    secondLength += this.timeFreq;
    const newBase = secondLength / this.hz; // div_u64 on a positive value
    this.tickLength = this.tickLength + newBase - this.tickLengthBase;
    this.tickLengthBase = newBase;
  }

  /** ntp_tick_length(): shifted ns per NTP interval (one tick). */
  ntpTickLength(): bigint {
    return this.st[TICK_LENGTH];
  }

  /**
   * second_overflow(): once per second of CLOCK_REALTIME. Leap seconds are not modelled.
   * Bounds (why 64-bit wrapping arithmetic is exact here): |time_offset| ≤ MAXPHASE << 32 / HZ < 2^61
   * (ntp_update_offset), tick_length_base ≈ tick_usec·10^5 << 32 / HZ < 2^62 for the kernel's tick_usec
   * range (ntp_validate_timex: ±10 %), |time_adjust| is adjtime()'s argument (µs, a long),
   * time_maxerror ≤ NTP_PHASE_LIMIT + 500 (clamped below and in adjtimex).
   */
  secondOverflow(): number {
    const st = this.st;
    st[TIME_MAXERROR] = BigInt.asIntN(64, st[TIME_MAXERROR]! + 500n); // MAXFREQ / NSEC_PER_USEC
    if (st[TIME_MAXERROR]! > st[PHASE_LIMIT]!) {
      st[TIME_MAXERROR] = st[PHASE_LIMIT]!;
      this.timeStatus |= STA_UNSYNC;
    }
    // ntp_offset_chunk(): shift_right(time_offset, SHIFT_PLL + time_constant)
    st[DELTA] = BigInt.asIntN(64, st[TIME_OFFSET]! / st[OFFSET_CHUNK_DIV]!);
    st[TIME_OFFSET] = BigInt.asIntN(64, st[TIME_OFFSET]! - st[DELTA]!);
    st[TICK_LENGTH] = BigInt.asIntN(64, st[TICK_LENGTH_BASE]! + st[DELTA]!);
    if (st[TIME_ADJUST] === 0n) return 0;
    // adjtime(): at most MAX_TICKADJ (500 µs) per second
    if (st[TIME_ADJUST]! > 500n) {
      st[TIME_ADJUST] = BigInt.asIntN(64, st[TIME_ADJUST]! - 500n);
      st[TICK_LENGTH] = BigInt.asIntN(64, st[TICK_LENGTH]! + st[MAX_TICKADJ_SCALED]!);
    } else if (st[TIME_ADJUST]! < st[MINUS_MAX_TICKADJ]!) {
      st[TIME_ADJUST] = BigInt.asIntN(64, st[TIME_ADJUST]! + 500n);
      st[TICK_LENGTH] = BigInt.asIntN(64, st[TICK_LENGTH]! - st[MAX_TICKADJ_SCALED]!);
    } else {
      // (s64)(time_adjust * NSEC_PER_USEC / NTP_INTERVAL_FREQ) << NTP_SCALE_SHIFT
      st[DELTA] = BigInt.asIntN(64, BigInt.asIntN(64, st[TIME_ADJUST]! * 1000n) / st[HZ]!);
      st[TICK_LENGTH] = BigInt.asIntN(64, st[TICK_LENGTH]! + BigInt.asIntN(64, st[DELTA]! << 32n));
      st[TIME_ADJUST] = 0n;
    }
    return 0;
  }

  private updateOffsetFll(offset64: bigint, secs: bigint): bigint {
    this.timeStatus &= ~STA_MODE;
    if (secs < MINSEC) return 0n;
    if (!(this.timeStatus & STA_FLL) && secs <= MAXSEC) return 0n;
    this.timeStatus |= STA_MODE;
    return (offset64 << (NTP_SCALE_SHIFT - SHIFT_FLL)) / secs;
  }

  /** ntp_update_offset(offset), `realSecs` = __ktime_get_real_seconds(). */
  updateOffset(offsetIn: bigint, realSecs: bigint): void {
    if (!(this.timeStatus & STA_PLL)) return;
    let offset = offsetIn;
    if (!(this.timeStatus & STA_NANO)) {
      offset = clamp(offset, MINUS_USEC_PER_SEC, 1_000_000n);
      offset *= 1000n;
    }
    offset = clamp(offset, MINUS_MAXPHASE, MAXPHASE);
    if (this.updateOffsetFast(offset, realSecs)) return;
    let secs = realSecs - this.timeReftime;
    if (this.timeStatus & STA_FREQHOLD) secs = 0n;
    this.timeReftime = realSecs;
    const offset64 = offset;
    let freqAdj = this.updateOffsetFll(offset64, secs);
    // 1 << (SHIFT_PLL + 1 + time_constant) and NTP_SCALE_SHIFT − 2·(SHIFT_PLL + 2 + time_constant), made when time_constant is set
    if (secs > this.pllSecsCap) secs = this.pllSecsCap;
    freqAdj += (offset64 * secs) << this.pllShift;
    const sum = freqAdj + this.timeFreq;
    freqAdj = sum < MAXFREQ_SCALED ? sum : MAXFREQ_SCALED;
    this.timeFreq = freqAdj > MINUS_MAXFREQ_SCALED ? freqAdj : MINUS_MAXFREQ_SCALED;
    this.timeOffset = (offset64 << NTP_SCALE_SHIFT) / this.hz;
  }

  /**
   * ntp_update_offset() after its clamps on s64 slots: |offset| ≤ MAXPHASE < 2^29, secs capped at
   * 2^(3 + time_constant) above and taken only down to minus that, the PLL shift 24 − 2·time_constant ≥ 0,
   * so offset·secs << shift < 2^(56 − time_constant); the FLL term < 2^59; |time_freq| < 2^61 before.
   * False (nothing changed) outside those bounds: updateOffset() goes on with unbounded BigInts.
   */
  private updateOffsetFast(offset: bigint, realSecs: bigint): boolean {
    const rs = this.rs;
    const reftime = this.timeReftime;
    if (!this.pllFast || realSecs >= TWO_62 || realSecs <= MINUS_TWO_62 || reftime >= TWO_62 || reftime <= MINUS_TWO_62) return false;
    if (this.timeFreq >= TWO_61 || this.timeFreq <= MINUS_TWO_61) return false;
    rs[U_SECS] = BigInt.asIntN(64, realSecs - reftime);
    if (this.timeStatus & STA_FREQHOLD) rs[U_SECS] = 0n;
    if (rs[U_SECS]! < rs[U_MINUS_CAP]!) return false;
    rs[U_OFFSET] = offset;
    this.timeReftime = realSecs;
    // ntp_update_offset_fll()
    this.timeStatus &= ~STA_MODE;
    rs[U_FREQ_ADJ] = 0n;
    if (rs[U_SECS]! >= 256n && (this.timeStatus & STA_FLL || rs[U_SECS]! > 2048n)) {
      // secs ≥ MINSEC, and FLL or secs > MAXSEC: div64_long(offset << (NTP_SCALE_SHIFT − SHIFT_FLL), secs)
      this.timeStatus |= STA_MODE;
      rs[U_FREQ_ADJ] = BigInt.asIntN(64, BigInt.asIntN(64, rs[U_OFFSET]! * 0x4000_0000n) / rs[U_SECS]!);
    }
    if (rs[U_SECS]! > rs[U_CAP]!) rs[U_SECS] = rs[U_CAP]!;
    rs[U_FREQ_ADJ] = BigInt.asIntN(
      64,
      rs[U_FREQ_ADJ]! + BigInt.asIntN(64, BigInt.asIntN(64, rs[U_OFFSET]! * rs[U_SECS]!) * rs[U_PLL_MUL]!),
    );
    rs[U_FREQ_ADJ] = BigInt.asIntN(64, rs[U_FREQ_ADJ]! + this.timeFreq);
    if (rs[U_FREQ_ADJ]! > rs[U_MAXFREQ]!) rs[U_FREQ_ADJ] = rs[U_MAXFREQ]!;
    if (rs[U_FREQ_ADJ]! < rs[U_MINUS_MAXFREQ]!) rs[U_FREQ_ADJ] = rs[U_MINUS_MAXFREQ]!;
    this.timeFreq = rs[U_FREQ_ADJ]!;
    // time_offset = div_s64(offset << NTP_SCALE_SHIFT, NTP_INTERVAL_FREQ): below 2^61
    this.st[TIME_OFFSET] = BigInt.asIntN(64, BigInt.asIntN(64, rs[U_OFFSET]! * 0x1_0000_0000n) / this.st[HZ]!);
    return true;
  }

  private processAdjStatus(status: number, realSecs: bigint): void {
    if (this.timeStatus & STA_PLL && !(status & STA_PLL)) {
      this.timeState = TIME_OK;
      this.timeStatus = STA_UNSYNC;
    }
    if (!(this.timeStatus & STA_PLL) && status & STA_PLL) this.timeReftime = realSecs;
    this.timeStatus &= STA_RONLY;
    this.timeStatus |= status & ~STA_RONLY;
  }

  /** __do_adjtimex() minus ADJ_SETOFFSET (the timekeeper handles the step). */
  adjtimex(txc: Timex, realSecs: bigint): TimexResult {
    const modes = txc.modes ?? 0;
    if ((modes & ADJ_OFFSET_SINGLESHOT) === ADJ_OFFSET_SINGLESHOT) {
      // adjtime(): slew at most 500 µs per second
      const save = this.timeAdjust;
      if (!(modes & ADJ_OFFSET_READONLY)) this.timeAdjust = BigInt(txc.offset ?? 0);
      return { ...this.result(), offset: save };
    }
    if (modes & ADJ_STATUS) this.processAdjStatus(txc.status ?? 0, realSecs);
    if (modes & ADJ_NANO) this.timeStatus |= STA_NANO;
    if (modes & ADJ_MICRO) this.timeStatus &= ~STA_NANO;
    if (modes & ADJ_FREQUENCY) {
      this.timeFreq = clamp(BigInt(txc.freq ?? 0) * PPM_SCALE, MINUS_MAXFREQ_SCALED, MAXFREQ_SCALED);
    }
    if (modes & ADJ_MAXERROR) this.timeMaxerror = clamp(BigInt(txc.maxerror ?? 0), 0n, NTP_PHASE_LIMIT);
    if (modes & ADJ_ESTERROR) this.timeEsterror = clamp(BigInt(txc.esterror ?? 0), 0n, NTP_PHASE_LIMIT);
    if (modes & ADJ_TIMECONST) {
      let tc = clamp(BigInt(txc.constant ?? 0), 0n, MAXTC);
      if (!(this.timeStatus & STA_NANO)) tc += 4n;
      this.timeConstant = clamp(tc, 0n, MAXTC);
    }
    if (modes & ADJ_OFFSET) this.updateOffset(BigInt(txc.offset ?? 0), realSecs);
    if (modes & ADJ_TICK) this.tickUsec = BigInt(txc.tick ?? this.tickUsec);
    if (modes & (ADJ_TICK | ADJ_FREQUENCY | ADJ_OFFSET)) this.updateFrequency();
    return this.result();
  }

  private result(): TimexResult {
    const unsync = (this.timeStatus & (STA_UNSYNC | STA_CLOCKERR)) !== 0;
    return {
      state: unsync ? TIME_ERROR : this.timeState,
      offset: this.resultOffset(),
      freq: this.resultFreq(),
      maxerror: this.rs[R_MAXERROR] === this.st[TIME_MAXERROR] ? this.resultMaxerror : this.newResultMaxerror(),
      esterror: this.timeEsterror,
      status: this.timeStatus,
      constant: this.rs[R_CONSTANT] === this.st[TIME_CONSTANT] ? this.resultConstant : this.newResultConstant(),
      precision: 1n,
      tolerance: TOLERANCE,
      tick: this.tickUsec,
    };
  }

  private newResultMaxerror(): bigint {
    this.resultMaxerror = this.timeMaxerror;
    this.rs[R_MAXERROR] = this.resultMaxerror;
    return this.resultMaxerror;
  }

  private newResultConstant(): bigint {
    this.resultConstant = this.timeConstant;
    this.rs[R_CONSTANT] = this.resultConstant;
    return this.resultConstant;
  }

  /**
   * txc->offset: shift_right(time_offset · NTP_INTERVAL_FREQ, NTP_SCALE_SHIFT), in µs without STA_NANO.
   * On s64 slots while the product stays far inside 2^63 (a division by 2^32 rounds toward zero, as
   * shift_right() does); exact BigInts otherwise.
   */
  private resultOffset(): bigint {
    const st = this.st;
    const rs = this.rs;
    if (st[TIME_OFFSET]! < RS_OFFSET_LIMIT && st[TIME_OFFSET]! > RS_MINUS_OFFSET_LIMIT && st[HZ]! < 0x10_0000n) {
      rs[RS_OFFSET] = BigInt.asIntN(64, BigInt.asIntN(64, st[TIME_OFFSET]! * st[HZ]!) / 0x1_0000_0000n);
      if (!(this.timeStatus & STA_NANO)) rs[RS_OFFSET] = BigInt.asIntN(64, rs[RS_OFFSET]! / 1000n);
      return rs[RS_OFFSET]!;
    }
    let offset = shiftRight(this.timeOffset * this.hz, NTP_SCALE_SHIFT);
    if (!(this.timeStatus & STA_NANO)) offset = offset / 1000n;
    return offset;
  }

  /** txc->freq: shift_right((time_freq >> PPM_SCALE_INV_SHIFT) · PPM_SCALE_INV, NTP_SCALE_SHIFT), as resultOffset(). */
  private resultFreq(): bigint {
    const rs = this.rs;
    const f = this.timeFreq;
    if (f <= RS_FREQ_LIMIT && f >= RS_MINUS_FREQ_LIMIT) {
      rs[RS_FREQ] = f;
      rs[RS_FREQ] = BigInt.asIntN(64, BigInt.asIntN(64, (rs[RS_FREQ]! >> 19n) * rs[RS_PPM_SCALE_INV]!) / 0x1_0000_0000n);
      return rs[RS_FREQ]!;
    }
    return shiftRight((f >> PPM_SCALE_INV_SHIFT) * PPM_SCALE_INV, NTP_SCALE_SHIFT);
  }

  /** time_freq in ppm, for reports. */
  freqPpm(): number {
    return Number(this.timeFreq) / 2 ** 32 / 1000;
  }
}

export const ADJ_OFFSET_READONLY = 0x2000;
