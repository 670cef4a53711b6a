// AssemblyScript: the timekeeper's updates in a quiet span, compiled to WebAssembly
// (scripts/build-wasm.mjs writes src/guest/quiet-updates-wasm.ts from it).
//
// Each update reads the guest TSC from a TscPlan (src/core/oscillator.ts) and runs timekeeping_advance()
// (kernel/time/timekeeping.c) with second_overflow() (kernel/time/ntp.c) on the same slots, in the same
// order and with the same guards as the fast paths of src/guest/timekeeper.ts (advance, accumulateFits,
// accumulateFast, adjustFast, accumulateNsecsToSecs) and src/guest/ntp.ts (secondOverflow). Those run
// BigInt.asIntN(64, …) arithmetic; WebAssembly's i64 wraps the same way, so every integer is the same —
// and it is the kernel's own 64-bit arithmetic. Where a guard fails the loop stops and says where
// (STATUS): the TypeScript paths finish that update exactly.

// Byte offsets: Timekeeper.st, NtpState.st, then the plan and the loop's inputs and outputs.
const TK: i32 = 0;
const NTP: i32 = 512;
const IO: i32 = 1024;

// Timekeeper.st slots (src/guest/timekeeper.ts)
const MONO_CYCLE_LAST: i32 = 0;
const MONO_MULT: i32 = 1;
const MONO_XTIME_NSEC: i32 = 3;
const RAW_CYCLE_LAST: i32 = 4;
const RAW_XTIME_NSEC: i32 = 7;
const XTIME_SEC: i32 = 8;
const RAW_SEC: i32 = 9;
const CYCLE_INTERVAL: i32 = 10;
const XTIME_INTERVAL: i32 = 11;
const XTIME_REMAINDER: i32 = 12;
const RAW_INTERVAL: i32 = 13;
const NTP_ERROR: i32 = 14;
const NTP_TICK: i32 = 16;
const NTP_ERR_MULT: i32 = 17;
const MONO_NSECPS: i32 = 18;
const RAW_NSECPS: i32 = 19;
const ERR_SCALE: i32 = 20;
const SHIFTED_LIMIT: i32 = 21;
const OFFSET: i32 = 22;
const INTERVALS: i32 = 23;
const SHIFTED: i32 = 24;
const PER_INTERVAL: i32 = 25;
const LARGEST: i32 = 26;
const CYCLES: i32 = 27;
const ERROR_ADD: i32 = 28;
const ERROR_SUM: i32 = 29;
const TICK_LENGTH: i32 = 30;
const MULT: i32 = 31;
const ERR_MULT: i32 = 32;
const MULT_ADJ: i32 = 33;
const TMP: i32 = 34;
const MASK: i32 = 35;

// NtpState.st slots (src/guest/ntp.ts)
const N_TICK_LENGTH: i32 = 0;
const N_TICK_LENGTH_BASE: i32 = 1;
const N_TIME_OFFSET: i32 = 2;
const N_TIME_MAXERROR: i32 = 3;
const N_TIME_ADJUST: i32 = 4;
const N_OFFSET_CHUNK_DIV: i32 = 6;
const N_MAX_TICKADJ_SCALED: i32 = 7;
const N_HZ: i32 = 8;
const N_PHASE_LIMIT: i32 = 9;
const N_DELTA: i32 = 10;

// IO slots (src/guest/quiet-wasm.ts)
const SEG_START: i32 = 0;
const SEG_PHASE: i32 = 1;
const RATE_HI: i32 = 2;
const RATE_LO: i32 = 3;
const RATE_ZERO: i32 = 4;
const KHZ: i32 = 5;
const INT64_BELOW: i32 = 6;
const ADD: i32 = 7;
const MAX_RAW_DELTA: i32 = 8;
const MASK64: i32 = 9;
const ERR_HIGH: i32 = 10;
const SKIP: i32 = 11;
const ADVANCES: i32 = 12;
const UNSYNC: i32 = 13;
const STATUS: i32 = 14;

const FAST_BELOW: i64 = (<i64>1) << 62;

@inline function tk(s: i32): i64 {
  return load<i64>(TK + (s << 3));
}
@inline function setTk(s: i32, v: i64): void {
  store<i64>(TK + (s << 3), v);
}
@inline function ntp(s: i32): i64 {
  return load<i64>(NTP + (s << 3));
}
@inline function setNtp(s: i32, v: i64): void {
  store<i64>(NTP + (s << 3), v);
}
@inline function io(s: i32): i64 {
  return load<i64>(IO + (s << 3));
}
@inline function setIo(s: i32, v: i64): void {
  store<i64>(IO + (s << 3), v);
}

let readOk = true;

/** The plan's TSC at true time t: Oscillator.phaseAt, TscCounter.cyclesAt on their int64 paths, + ADD. */
function guestRead(t: i64): i64 {
  const segStart = io(SEG_START);
  if (t < segStart || t >= FAST_BELOW) {
    readOk = false;
    return 0;
  }
  const d = t - segStart;
  let phase: i64;
  if (io(RATE_ZERO) != 0) phase = io(SEG_PHASE) + d;
  else {
    // phaseAtInt64: d·rateFrac rounded at 2^-64 through 32-bit halves
    const rateHi = io(RATE_HI);
    const rateLo = io(RATE_LO);
    const dl: i64 = d & 0xffffffff;
    const dh: i64 = d >> 32;
    const lowHi: i64 = <i64>(<u64>(dl * rateLo) >> 32);
    const m: i64 = dh * rateLo + dl * rateHi + lowHi + 0x80000000;
    phase = io(SEG_PHASE) + d + dh * rateHi + (m >> 32);
  }
  if (phase < 0 || phase >= io(INT64_BELOW)) {
    readOk = false;
    return 0;
  }
  const khz = io(KHZ);
  const ms = phase / 1000000;
  return io(ADD) + (ms * khz + ((phase - ms * 1000000) * khz) / 1000000);
}

/** NtpState.secondOverflow(). */
function secondOverflow(): void {
  setNtp(N_TIME_MAXERROR, ntp(N_TIME_MAXERROR) + 500);
  if (ntp(N_TIME_MAXERROR) > ntp(N_PHASE_LIMIT)) {
    setNtp(N_TIME_MAXERROR, ntp(N_PHASE_LIMIT));
    setIo(UNSYNC, 1);
  }
  setNtp(N_DELTA, ntp(N_TIME_OFFSET) / ntp(N_OFFSET_CHUNK_DIV));
  setNtp(N_TIME_OFFSET, ntp(N_TIME_OFFSET) - ntp(N_DELTA));
  setNtp(N_TICK_LENGTH, ntp(N_TICK_LENGTH_BASE) + ntp(N_DELTA));
  const adjust = ntp(N_TIME_ADJUST);
  if (adjust == 0) return;
  if (adjust > 500) {
    setNtp(N_TIME_ADJUST, adjust - 500);
    setNtp(N_TICK_LENGTH, ntp(N_TICK_LENGTH) + ntp(N_MAX_TICKADJ_SCALED));
  } else if (adjust < -500) {
    setNtp(N_TIME_ADJUST, adjust + 500);
    setNtp(N_TICK_LENGTH, ntp(N_TICK_LENGTH) - ntp(N_MAX_TICKADJ_SCALED));
  } else {
    setNtp(N_DELTA, (adjust * 1000) / ntp(N_HZ));
    setNtp(N_TICK_LENGTH, ntp(N_TICK_LENGTH) + (ntp(N_DELTA) << 32));
    setNtp(N_TIME_ADJUST, 0);
  }
}

/** Timekeeper.accumulateNsecsToSecs(). */
function accumulateNsecsToSecs(): void {
  while (tk(MONO_XTIME_NSEC) >= tk(MONO_NSECPS)) {
    setTk(MONO_XTIME_NSEC, tk(MONO_XTIME_NSEC) - tk(MONO_NSECPS));
    setTk(XTIME_SEC, tk(XTIME_SEC) + 1);
    if (io(SKIP) != 0) setIo(SKIP, 0);
    else secondOverflow();
  }
}

/** Timekeeper.accumulateFits(). */
function accumulateFits(): bool {
  if (io(ERR_HIGH) != 0) return false;
  if (tk(NTP_TICK) < 0 || tk(NTP_TICK) >= FAST_BELOW) return false;
  if (tk(MONO_XTIME_NSEC) < 0 || tk(MONO_XTIME_NSEC) >= FAST_BELOW) return false;
  if (tk(RAW_XTIME_NSEC) < 0 || tk(RAW_XTIME_NSEC) >= FAST_BELOW) return false;
  setTk(SHIFTED, tk(XTIME_INTERVAL) + tk(XTIME_REMAINDER));
  if (tk(SHIFTED) < 0 || tk(SHIFTED) >= tk(SHIFTED_LIMIT)) return false;
  setTk(PER_INTERVAL, tk(NTP_TICK) - tk(SHIFTED) * tk(ERR_SCALE));
  setTk(LARGEST, tk(RAW_INTERVAL));
  if (tk(XTIME_INTERVAL) > tk(LARGEST)) setTk(LARGEST, tk(XTIME_INTERVAL));
  if (tk(PER_INTERVAL) > tk(LARGEST)) setTk(LARGEST, tk(PER_INTERVAL));
  if (-tk(PER_INTERVAL) > tk(LARGEST)) setTk(LARGEST, -tk(PER_INTERVAL));
  if (tk(INTERVALS) < 0x4000 && tk(LARGEST) < 0x1000000000000) return true;
  return tk(LARGEST) > 0 && tk(INTERVALS) <= FAST_BELOW / tk(LARGEST);
}

/** Timekeeper.accumulateFast(). */
function accumulateFast(): void {
  setTk(CYCLES, tk(INTERVALS) * tk(CYCLE_INTERVAL));
  setTk(MONO_CYCLE_LAST, tk(MONO_CYCLE_LAST) + tk(CYCLES));
  setTk(RAW_CYCLE_LAST, tk(RAW_CYCLE_LAST) + tk(CYCLES));
  setTk(OFFSET, tk(OFFSET) - tk(CYCLES));
  setTk(MONO_XTIME_NSEC, tk(MONO_XTIME_NSEC) + tk(INTERVALS) * tk(XTIME_INTERVAL));
  accumulateNsecsToSecs();
  setTk(RAW_XTIME_NSEC, tk(RAW_XTIME_NSEC) + tk(INTERVALS) * tk(RAW_INTERVAL));
  while (tk(RAW_XTIME_NSEC) >= tk(RAW_NSECPS)) {
    setTk(RAW_XTIME_NSEC, tk(RAW_XTIME_NSEC) - tk(RAW_NSECPS));
    setTk(RAW_SEC, tk(RAW_SEC) + 1);
  }
  setTk(ERROR_ADD, tk(INTERVALS) * tk(PER_INTERVAL));
  setTk(ERROR_SUM, tk(NTP_ERROR) + tk(ERROR_ADD));
  if (tk(ERROR_ADD) > 0 && tk(ERROR_SUM) < tk(NTP_ERROR)) setIo(ERR_HIGH, io(ERR_HIGH) + 1);
  else if (tk(ERROR_ADD) < 0 && tk(ERROR_SUM) > tk(NTP_ERROR)) setIo(ERR_HIGH, io(ERR_HIGH) - 1);
  setTk(NTP_ERROR, tk(ERROR_SUM));
}

/** Timekeeper.adjustFast(). */
function adjustFast(): bool {
  setTk(TICK_LENGTH, ntp(N_TICK_LENGTH));
  if (tk(NTP_TICK) == tk(TICK_LENGTH)) setTk(MULT, tk(MONO_MULT) - tk(NTP_ERR_MULT));
  else if (tk(TICK_LENGTH) >= 0 && tk(TICK_LENGTH) < FAST_BELOW) {
    setTk(MULT, tk(TICK_LENGTH) / tk(ERR_SCALE));
    setTk(MULT, (tk(MULT) - tk(XTIME_REMAINDER)) / tk(CYCLE_INTERVAL));
  } else return false;
  const high = io(ERR_HIGH);
  if (high > 0 || (high == 0 && tk(NTP_ERROR) > 0)) setTk(ERR_MULT, 1);
  else setTk(ERR_MULT, 0);
  setTk(MULT_ADJ, tk(MULT) + tk(ERR_MULT) - tk(MONO_MULT));
  if (tk(MULT_ADJ) > 0x100000000 || tk(MULT_ADJ) < -0x100000000) return false;
  setTk(NTP_TICK, tk(TICK_LENGTH));
  setTk(NTP_ERR_MULT, tk(ERR_MULT));
  const adj = tk(MULT_ADJ);
  if (adj != 0 && !(adj > 0 && tk(MONO_MULT) + adj > 0xffffffff)) {
    setTk(MONO_MULT, tk(MONO_MULT) + adj);
    setTk(XTIME_INTERVAL, tk(XTIME_INTERVAL) + tk(CYCLE_INTERVAL) * adj);
    setTk(MONO_XTIME_NSEC, tk(MONO_XTIME_NSEC) - tk(OFFSET) * adj);
  }
  if (tk(MONO_XTIME_NSEC) < 0) {
    setTk(MONO_XTIME_NSEC, tk(MONO_XTIME_NSEC) + tk(MONO_NSECPS));
    setTk(XTIME_SEC, tk(XTIME_SEC) - 1);
    setIo(SKIP, 1);
  }
  return true;
}

/**
 * Timekeeper.advance() at true time t. 0: done; 1: not started (a guard of the fast path failed before
 * anything changed); 2: accumulated, timekeeping_adjust() left to the exact path.
 */
function step(t: i64): i32 {
  const now = guestRead(t);
  if (!readOk) {
    readOk = true;
    return 1;
  }
  let offset = now - tk(MONO_CYCLE_LAST);
  if (io(MASK64) == 0) offset &= tk(MASK);
  if (offset < 0 || offset >= FAST_BELOW) return 1;
  setTk(TMP, io(MAX_RAW_DELTA));
  if (tk(TMP) >= 0 && offset > tk(TMP)) offset = 0;
  setTk(OFFSET, offset);
  if (offset < tk(CYCLE_INTERVAL)) return 0;
  setTk(INTERVALS, offset / tk(CYCLE_INTERVAL));
  if (tk(INTERVALS) != 0) {
    if (!accumulateFits()) return 1;
    setIo(ADVANCES, io(ADVANCES) + 1);
    accumulateFast();
  } else setIo(ADVANCES, io(ADVANCES) + 1);
  if (!adjustFast()) return 2;
  accumulateNsecsToSecs();
  return 0;
}

/**
 * `n` updates at t0, t0 + interval, …: returns how many ran; STATUS says why it stopped early
 * (step()'s code for the update after them).
 */
export function run(n: i32, t0: i64, interval: i64): i32 {
  let t = t0;
  for (let k = 0; k < n; k++) {
    const s = step(t);
    if (s != 0) {
      setIo(STATUS, s);
      return k;
    }
    t += interval;
  }
  setIo(STATUS, 0);
  return n;
}
