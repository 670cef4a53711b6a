// The timekeeper and NTP state machine on 64-bit typed-array slots (src/guest/timekeeper.ts, ntp.ts)
// against the plain-BigInt implementation they replaced (test/guest/reference/): two timekeepers on
// the same counter, driven by the same seeded mix of updates (a tick's worth to a day's), adjtimex
// calls (PLL and FLL offsets, saturating offsets and frequencies, time constants, tick changes,
// adjtime() slews, ADJ_SETOFFSET steps), settimeofday and clocksource changes, must read the same
// clocks and hold the same integers after every step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/core/prng.ts';
import { CLOCK_SOURCE_IS_CONTINUOUS, Clocksource, clocksourceUpdateFreqScale } from '../../src/guest/clocksource.ts';
import { ADJ_FREQUENCY } from '../../src/guest/ntp.ts';
import { Timekeeper } from '../../src/guest/timekeeper.ts';
import { randomTimex } from './random-timex.ts';
import { Timekeeper as ReferenceTimekeeper } from './reference/timekeeper.ts';

const U64 = (1n << 64n) - 1n;

interface Counter {
  name: string;
  /** Hz (scale 1); 0 with a preset mult/shift. */
  freq: number;
  mask: bigint;
  hz: number;
  mult?: number;
  shift?: number;
  /** Counter value at the start (near 2^64: it wraps during the run). */
  start?: bigint;
}

const COUNTERS: Counter[] = [
  { name: 'tsc', freq: 2_596_136_000, mask: U64, hz: 250 },
  { name: 'tsc-wraps', freq: 3_000_000_000, mask: U64, hz: 1000, start: U64 - 3_000_000_000n * 1000n },
  { name: 'kvm-clock', freq: 1_000_000_000, mask: U64, hz: 100 },
  { name: 'hpet', freq: 14_318_180, mask: 0xffff_ffffn, hz: 250 },
  { name: 'acpi_pm', freq: 3_579_545, mask: 0xff_ffffn, hz: 250 },
  // shift 33 > NTP_SCALE_SHIFT (mult/shift set by hand): a negative ntp_error_shift, chunk by chunk
  { name: 'shift33', freq: 0, mult: 1 << 29, shift: 33, mask: U64, hz: 250 },
];

function clocksource(c: Counter, read: () => bigint, rating: number): Clocksource {
  const cs = new Clocksource({
    name: c.name,
    rating,
    mask: c.mask,
    flags: CLOCK_SOURCE_IS_CONTINUOUS,
    read,
    ...(c.mult !== undefined ? { mult: c.mult, shift: c.shift } : {}),
  });
  clocksourceUpdateFreqScale(cs, 1, c.freq);
  return cs;
}

type AnyTimekeeper = Timekeeper | ReferenceTimekeeper;

const CLOCKS = ['realtime', 'monotonic', 'boottime', 'monotonic_raw'] as const;

/** Every integer both implementations hold (cycle_last modulo 2^64: the kernel's u64). */
function state(tk: AnyTimekeeper): string {
  const n = tk.ntp;
  return JSON.stringify(
    {
      cycleLast: [tk.mono.cycleLast & U64, tk.raw.cycleLast & U64],
      mono: [tk.mono.mult, tk.mono.shift, tk.mono.xtimeNsec],
      raw: [tk.raw.mult, tk.raw.shift, tk.raw.xtimeNsec],
      sec: [tk.xtimeSec, tk.rawSec, tk.wallToMonotonic, tk.offsBoot],
      intervals: [tk.cycleInterval, tk.xtimeInterval, tk.xtimeRemainder, tk.rawInterval],
      ntpError: [tk.ntpError, tk.ntpErrorShift, tk.ntpTick, tk.ntpErrMult, tk.skipSecondOverflow],
      ntp: [n.tickUsec, n.tickLength, n.tickLengthBase, n.timeState, n.timeStatus, n.timeOffset, n.timeConstant],
      ntp2: [n.timeMaxerror, n.timeEsterror, n.timeFreq, n.timeReftime, n.timeAdjust, n.ntpTickAdj],
      advances: tk.advances,
    },
    (_k, v) => (typeof v === 'bigint' ? v.toString() : v),
  );
}

const json = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));

for (const c of COUNTERS) {
  test(`the typed-array timekeeper reads the same clocks and holds the same integers as the BigInt reference: ${c.name}, HZ ${c.hz}`, () => {
    const prng = new Prng(20261127);
    let cycles = c.start ?? 987_654_321n;
    const read = () => cycles & c.mask;
    // a second counter at 3/4 of the rate, for clocksource changes
    const read2 = () => ((cycles * 3n) / 4n) & c.mask;
    const fastCs = [clocksource(c, read, 300), clocksource({ ...c, name: `${c.name}-b` }, read2, 250)];
    const refCs = [clocksource(c, read, 300), clocksource({ ...c, name: `${c.name}-b` }, read2, 250)];
    const wall = 1_767_225_600_123_456_789n;
    const fast = new Timekeeper(fastCs[0]!, c.hz, wall, 5_000_000_000n);
    const ref = new ReferenceTimekeeper(refCs[0]!, c.hz, wall, 5_000_000_000n);
    let on = 0;
    const perSec = c.freq ? BigInt(c.freq) : (1_000_000_000n << BigInt(c.shift!)) / BigInt(c.mult!);
    const tick = perSec / BigInt(c.hz);
    // a counter that wraps can only be left alone for less than its period
    const longest = c.mask < perSec * 86_400n ? c.mask / 2n : perSec * 86_400n;
    const readAll = (tk: AnyTimekeeper) => CLOCKS.map((id) => tk.get(id));
    for (let i = 0; i < 3000; i++) {
      const r = prng.float();
      if (r < 0.55)
        cycles += perSec + BigInt(prng.int(Number(tick))); // ~1 s: a guest's timekeeper update
      else if (r < 0.8)
        cycles += BigInt(prng.int(Number(tick) * 3)); // below a tick … a few ticks
      else if (r < 0.83)
        cycles += BigInt(Math.floor(prng.float() * Number(longest < perSec * 3600n ? longest : perSec * 3600n))); // NOHZ idle, a pause
      else if (r < 0.832)
        cycles += BigInt(Math.floor(prng.float() * Number(longest))); // up to a day away
      else if (r < 0.95) {
        const txc = randomTimex(prng);
        assert.equal(json(fast.adjtimex(txc)), json(ref.adjtimex(txc)), `step ${i}: adjtimex ${json(txc)}`);
      } else if (r < 0.96) {
        const ns = wall + BigInt(prng.int(1_000_000)) * 1_000_000_000n;
        fast.setTimeOfDay(ns);
        ref.setTimeOfDay(ns);
      } else if (r < 0.965) {
        on = 1 - on;
        fast.changeClocksource(fastCs[on]!);
        ref.changeClocksource(refCs[on]!);
      }
      // read before the update too: up to a day's cycles since cycle_last (clock_gettime's s64 path and its exact fallback)
      assert.equal(json(readAll(fast)), json(readAll(ref)), `step ${i}: clock readings before the update`);
      fast.advance();
      ref.advance();
      assert.equal(json(readAll(fast)), json(readAll(ref)), `step ${i}: clock readings`);
      assert.equal(state(fast), state(ref), `step ${i}: state`);
    }
    assert.ok(fast.advances > 1500, `${fast.advances} updates`);
    // both paths ran: the 64-bit one for the ordinary updates, the exact one past its bounds (long
    // gaps: a counter narrower than 64 bits wraps before it gets there)
    if (c.name === 'shift33') assert.equal(fast.exactPasses, fast.advances, 'a negative ntp_error_shift takes the exact path');
    else if (c.mask === U64) {
      assert.ok(fast.exactPasses > 0, 'some updates took the exact path');
      assert.ok(fast.exactPasses < fast.advances / 4, `${fast.exactPasses} of ${fast.advances} updates took the exact path`);
    }
  });
}

test('ntp_error past 2^63 stays exact where the kernel s64 would wrap, and its sign still steers mult', () => {
  // mult 0xffff_fff0: +500 ppm would take it past u32, so timekeeping_apply_adjustment() refuses and
  // every cycle_interval adds the same ~8.6e12 to ntp_error: past 2^63 after ~4300 one-second updates
  let cycles = 0n;
  const c: Counter = { name: 'mult-at-u32', freq: 0, mult: 0xffff_fff0, shift: 30, mask: U64, hz: 250 };
  const fast = new Timekeeper(
    clocksource(c, () => cycles, 300),
    c.hz,
    1_767_225_600_000_000_000n,
    0n,
  );
  const ref = new ReferenceTimekeeper(
    clocksource(c, () => cycles, 300),
    c.hz,
    1_767_225_600_000_000_000n,
    0n,
  );
  const txc = { modes: ADJ_FREQUENCY, freq: 500 * 65536 };
  assert.equal(json(fast.adjtimex(txc)), json(ref.adjtimex(txc)));
  const perSec = (1_000_000_000n << 30n) / 0xffff_fff0n;
  for (let i = 0; i < 5000; i++) {
    cycles += perSec + BigInt(i % 7) * 1000n;
    fast.advance();
    ref.advance();
    assert.equal(state(fast), state(ref), `update ${i}`);
    assert.equal(json(CLOCKS.map((id) => fast.get(id))), json(CLOCKS.map((id) => ref.get(id))), `update ${i}`);
  }
  assert.ok(ref.ntpError > 1n << 63n, `ntp_error ${ref.ntpError} is past s64`);
  assert.equal(fast.ntpError, ref.ntpError);
});

test('clock reads stay exact across clocksource changes that change mult and shift (clock_gettime caches 1 << shift per shift)', () => {
  let cycles = 5_000_000_000n;
  const counters = COUNTERS.filter((c) => c.freq > 0 && c.start === undefined);
  const make = () => counters.map((c, i) => clocksource(c, () => ((cycles * BigInt(c.freq)) / 2_596_136_000n) & c.mask, 300 - i));
  const fastCs = make();
  const refCs = make();
  assert.ok(new Set(fastCs.map((cs) => cs.shift)).size >= 3, `shifts ${fastCs.map((cs) => cs.shift)}`);
  const wall = 1_767_225_600_123_456_789n;
  const fast = new Timekeeper(fastCs[0]!, 250, wall, 0n);
  const ref = new ReferenceTimekeeper(refCs[0]!, 250, wall, 0n);
  for (let i = 0; i < 200; i++) {
    cycles += 2_596_136_000n / 3n + BigInt(i * 7919);
    if (i % 5 === 4) {
      fast.changeClocksource(fastCs[((i / 5) % fastCs.length) | 0]!);
      ref.changeClocksource(refCs[((i / 5) % refCs.length) | 0]!);
    }
    assert.equal(json(CLOCKS.map((id) => fast.get(id))), json(CLOCKS.map((id) => ref.get(id))), `read ${i} on ${fast.cs.name}`);
    fast.advance();
    ref.advance();
  }
});
