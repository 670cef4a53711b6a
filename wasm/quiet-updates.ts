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

// 32-bit flags at byte FLAGS (read by TypeScript without a BigInt): the timekeeper's fields outside its
// slots, in and out, and what the loop reports. ERR_HIGH: ntp_error's high part, clamped to ±2^30 (the
// loop only reads its sign and adds a carry).
const FLAGS: i32 = 1536;
const ERR_HIGH: i32 = 0;
const SKIP: i32 = 1;
const ADVANCES: i32 = 2;
const UNSYNC: i32 = 3;
const STATUS: i32 = 4;

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
@inline function flag(s: i32): i32 {
  return load<i32>(FLAGS + (s << 2));
}
@inline function setFlag(s: i32, v: i32): void {
  store<i32>(FLAGS + (s << 2), v);
}

const TWO_48: i64 = (<i64>1) << 48;
const TWO_32: i64 = (<i64>1) << 32;

/** a / 2^k rounded toward zero: shift_right() in ntp.c (NtpState divides by OFFSET_CHUNK_DIV = 2^k). */
@inline function divPow2(a: i64, k: i64): i64 {
  return (a + ((a >> 63) & (((<i64>1) << k) - 1))) >> k;
}

const TWO_31: i64 = (<i64>1) << 31;

/**
 * a / b for b > 0, as i64.div_s rounds it, given a guess: consecutive updates divide nearly the same
 * numbers (a second of cycles by cycle_interval, a tick length by it), so last update's quotient or one
 * next to it is this one's — checked on the remainder, exactly — and a 64-bit division is left for the rest.
 */
@inline function divNear(a: i64, b: i64, guess: i64): i64 {
  if (a >= 0 && guess >= 0 && guess < TWO_31 && b < TWO_31) {
    const r = a - guess * b; // |guess·b| < 2^62
    if (r >= 0) {
      if (r < b) return guess;
      if (r - b < b) return guess + 1;
    } else if (r + b >= 0) return guess - 1;
  }
  return a / b;
}

/**
 * `n` updates at t0, t0 + interval, …: returns how many ran; STATUS says why it stopped early — 1: the
 * next update did not start (a guard of a fast path failed before anything changed), 2: it accumulated
 * and left timekeeping_adjust() to the exact path. Each update is, in order, Oscillator.phaseAt and
 * TscCounter.cyclesAt on their int64 paths plus ADD, then Timekeeper.advance(): accumulateFits,
 * accumulateFast (with accumulateNsecsToSecs and NtpState.secondOverflow), adjustFast and the closing
 * accumulateNsecsToSecs. The fields live in locals for the whole loop (a field in memory would be a
 * store and a reload at each use), and every slot is written back at the end, scratch slots included,
 * as the TypeScript paths leave them.
 */
export function run(n: i32, t0: i64, interval: i64): i32 {
  // the plan
  const segStart = io(SEG_START);
  const segPhase = io(SEG_PHASE);
  const rateHi = io(RATE_HI);
  const rateLo = io(RATE_LO);
  const rateZero = io(RATE_ZERO) != 0;
  const khz = io(KHZ);
  const int64Below = io(INT64_BELOW);
  const add = io(ADD);
  const maxRawDelta = io(MAX_RAW_DELTA);
  const mask64 = io(MASK64) != 0;
  // the timekeeper: fields the loop writes, then those it only reads
  let monoCycleLast = tk(MONO_CYCLE_LAST);
  let monoMult = tk(MONO_MULT);
  let monoXtimeNsec = tk(MONO_XTIME_NSEC);
  let rawCycleLast = tk(RAW_CYCLE_LAST);
  let rawXtimeNsec = tk(RAW_XTIME_NSEC);
  let xtimeSec = tk(XTIME_SEC);
  let rawSec = tk(RAW_SEC);
  let xtimeInterval = tk(XTIME_INTERVAL);
  let ntpError = tk(NTP_ERROR);
  let ntpTick = tk(NTP_TICK);
  let ntpErrMult = tk(NTP_ERR_MULT);
  const cycleInterval = tk(CYCLE_INTERVAL);
  const xtimeRemainder = tk(XTIME_REMAINDER);
  const rawInterval = tk(RAW_INTERVAL);
  const monoNsecps = tk(MONO_NSECPS);
  const rawNsecps = tk(RAW_NSECPS);
  const errScale = tk(ERR_SCALE);
  const errShift = ctz(errScale); // ERR_SCALE = 1 << ntp_error_shift
  const shiftedLimit = tk(SHIFTED_LIMIT);
  const mask = tk(MASK);
  // the timekeeper's scratch slots
  let offset = tk(OFFSET);
  let intervals = tk(INTERVALS);
  let shifted = tk(SHIFTED);
  let perInterval = tk(PER_INTERVAL);
  let largest = tk(LARGEST);
  let cycles = tk(CYCLES);
  let errorAdd = tk(ERROR_ADD);
  let errorSum = tk(ERROR_SUM);
  let tickLengthNow = tk(TICK_LENGTH);
  let mult = tk(MULT);
  let errMult = tk(ERR_MULT);
  let multAdj = tk(MULT_ADJ);
  let tmp = tk(TMP);
  // NTP
  let tickLength = ntp(N_TICK_LENGTH);
  let timeOffset = ntp(N_TIME_OFFSET);
  let timeMaxerror = ntp(N_TIME_MAXERROR);
  let timeAdjust = ntp(N_TIME_ADJUST);
  let delta = ntp(N_DELTA);
  const tickLengthBase = ntp(N_TICK_LENGTH_BASE);
  const chunkShift = ctz(ntp(N_OFFSET_CHUNK_DIV)); // 1 << (SHIFT_PLL + time_constant)
  const maxTickadjScaled = ntp(N_MAX_TICKADJ_SCALED);
  const hz = ntp(N_HZ);
  const phaseLimit = ntp(N_PHASE_LIMIT);
  // the timekeeper's fields outside its slots, and the outputs
  let errHigh = flag(ERR_HIGH);
  let skip = flag(SKIP) != 0;
  let advances = flag(ADVANCES);
  let unsync = flag(UNSYNC);

  let status = 0;
  let k = 0;
  let t = t0;
  for (; k < n; k++, t += interval) {
    // the guest TSC at t
    if (t < segStart || t >= FAST_BELOW) {
      status = 1;
      break;
    }
    const d = t - segStart;
    let phase: i64;
    if (rateZero) phase = segPhase + d;
    else {
      // phaseAtInt64: d·rateFrac rounded at 2^-64 through 32-bit halves
      const dl: i64 = d & 0xffffffff;
      const dh: i64 = d >> 32;
      const lowHi: i64 = <i64>(<u64>(dl * rateLo) >> 32);
      const m: i64 = dh * rateLo + dl * rateHi + lowHi + 0x80000000;
      phase = segPhase + d + dh * rateHi + (m >> 32);
    }
    if (phase < 0 || phase >= int64Below) {
      status = 1;
      break;
    }
    const ms = phase / 1000000;
    const now = add + (ms * khz + ((phase - ms * 1000000) * khz) / 1000000);

    // advance(): clocksource_delta()
    let off = now - monoCycleLast;
    if (!mask64) off &= mask;
    if (off < 0 || off >= FAST_BELOW) {
      status = 1;
      break;
    }
    tmp = maxRawDelta;
    if (tmp >= 0 && off > tmp) off = 0;
    offset = off;
    if (offset < cycleInterval) continue;
    intervals = divNear(offset, cycleInterval, intervals);
    if (intervals != 0) {
      // accumulateFits()
      let fits = false;
      if (
        errHigh == 0 &&
        ntpTick >= 0 &&
        ntpTick < FAST_BELOW &&
        monoXtimeNsec >= 0 &&
        monoXtimeNsec < FAST_BELOW &&
        rawXtimeNsec >= 0 &&
        rawXtimeNsec < FAST_BELOW
      ) {
        shifted = xtimeInterval + xtimeRemainder;
        if (shifted >= 0 && shifted < shiftedLimit) {
          perInterval = ntpTick - shifted * errScale;
          largest = rawInterval;
          if (xtimeInterval > largest) largest = xtimeInterval;
          if (perInterval > largest) largest = perInterval;
          if (-perInterval > largest) largest = -perInterval;
          fits = (intervals < 0x4000 && largest < TWO_48) || (largest > 0 && intervals <= FAST_BELOW / largest);
        }
      }
      if (!fits) {
        status = 1;
        break;
      }
      advances++;
      // accumulateFast()
      cycles = intervals * cycleInterval;
      monoCycleLast += cycles;
      rawCycleLast += cycles;
      offset -= cycles;
      monoXtimeNsec += intervals * xtimeInterval;
      // accumulateNsecsToSecs() (the same block closes the update below: written twice because it writes
      // nine of run()'s locals, which no AssemblyScript function can; one block in a two-phase loop measured
      // 22 → 28 ns per update)
      while (monoXtimeNsec >= monoNsecps) {
        monoXtimeNsec -= monoNsecps;
        xtimeSec++;
        if (skip) skip = false;
        else {
          // NtpState.secondOverflow()
          timeMaxerror += 500;
          if (timeMaxerror > phaseLimit) {
            timeMaxerror = phaseLimit;
            unsync = 1;
          }
          delta = divPow2(timeOffset, chunkShift);
          timeOffset -= delta;
          tickLength = tickLengthBase + delta;
          if (timeAdjust > 500) {
            timeAdjust -= 500;
            tickLength += maxTickadjScaled;
          } else if (timeAdjust < -500) {
            timeAdjust += 500;
            tickLength -= maxTickadjScaled;
          } else if (timeAdjust != 0) {
            delta = (timeAdjust * 1000) / hz;
            tickLength += delta << 32;
            timeAdjust = 0;
          }
        }
      }
      rawXtimeNsec += intervals * rawInterval;
      while (rawXtimeNsec >= rawNsecps) {
        rawXtimeNsec -= rawNsecps;
        rawSec++;
      }
      errorAdd = intervals * perInterval;
      errorSum = ntpError + errorAdd;
      if (errorAdd > 0 && errorSum < ntpError) errHigh++;
      else if (errorAdd < 0 && errorSum > ntpError) errHigh--;
      ntpError = errorSum;
    } else advances++;

    // adjustFast()
    tickLengthNow = tickLength;
    if (ntpTick == tickLengthNow) mult = monoMult - ntpErrMult;
    else if (tickLengthNow >= 0 && tickLengthNow < FAST_BELOW) {
      mult = tickLengthNow >> errShift;
      mult = divNear(mult - xtimeRemainder, cycleInterval, monoMult);
    } else {
      status = 2;
      break;
    }
    errMult = errHigh > 0 || (errHigh == 0 && ntpError > 0) ? 1 : 0;
    multAdj = mult + errMult - monoMult;
    if (multAdj > TWO_32 || multAdj < -TWO_32) {
      status = 2;
      break;
    }
    ntpTick = tickLengthNow;
    ntpErrMult = errMult;
    if (multAdj != 0 && !(multAdj > 0 && monoMult + multAdj > 0xffffffff)) {
      monoMult += multAdj;
      xtimeInterval += cycleInterval * multAdj;
      monoXtimeNsec -= offset * multAdj;
    }
    if (monoXtimeNsec < 0) {
      monoXtimeNsec += monoNsecps;
      xtimeSec--;
      skip = true;
    }
    // accumulateNsecsToSecs()
    while (monoXtimeNsec >= monoNsecps) {
      monoXtimeNsec -= monoNsecps;
      xtimeSec++;
      if (skip) skip = false;
      else {
        timeMaxerror += 500;
        if (timeMaxerror > phaseLimit) {
          timeMaxerror = phaseLimit;
          unsync = 1;
        }
        delta = divPow2(timeOffset, chunkShift);
        timeOffset -= delta;
        tickLength = tickLengthBase + delta;
        if (timeAdjust > 500) {
          timeAdjust -= 500;
          tickLength += maxTickadjScaled;
        } else if (timeAdjust < -500) {
          timeAdjust += 500;
          tickLength -= maxTickadjScaled;
        } else if (timeAdjust != 0) {
          delta = (timeAdjust * 1000) / hz;
          tickLength += delta << 32;
          timeAdjust = 0;
        }
      }
    }
  }

  setTk(MONO_CYCLE_LAST, monoCycleLast);
  setTk(MONO_MULT, monoMult);
  setTk(MONO_XTIME_NSEC, monoXtimeNsec);
  setTk(RAW_CYCLE_LAST, rawCycleLast);
  setTk(RAW_XTIME_NSEC, rawXtimeNsec);
  setTk(XTIME_SEC, xtimeSec);
  setTk(RAW_SEC, rawSec);
  setTk(XTIME_INTERVAL, xtimeInterval);
  setTk(NTP_ERROR, ntpError);
  setTk(NTP_TICK, ntpTick);
  setTk(NTP_ERR_MULT, ntpErrMult);
  setTk(OFFSET, offset);
  setTk(INTERVALS, intervals);
  setTk(SHIFTED, shifted);
  setTk(PER_INTERVAL, perInterval);
  setTk(LARGEST, largest);
  setTk(CYCLES, cycles);
  setTk(ERROR_ADD, errorAdd);
  setTk(ERROR_SUM, errorSum);
  setTk(TICK_LENGTH, tickLengthNow);
  setTk(MULT, mult);
  setTk(ERR_MULT, errMult);
  setTk(MULT_ADJ, multAdj);
  setTk(TMP, tmp);
  setNtp(N_TICK_LENGTH, tickLength);
  setNtp(N_TIME_OFFSET, timeOffset);
  setNtp(N_TIME_MAXERROR, timeMaxerror);
  setNtp(N_TIME_ADJUST, timeAdjust);
  setNtp(N_DELTA, delta);
  setFlag(ERR_HIGH, errHigh);
  setFlag(SKIP, skip ? 1 : 0);
  setFlag(ADVANCES, advances);
  setFlag(UNSYNC, unsync);
  setFlag(STATUS, status);
  return k;
}
