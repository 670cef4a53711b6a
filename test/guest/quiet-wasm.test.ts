// The timekeeper's WebAssembly loop (Timekeeper.advanceEvery, wasm/quiet-updates.ts) against advance():
// two timekeepers on the same counter — one runs chunks of updates in the loop, reading the counter by
// its TscPlan, the other calls advance() at each update's time, reading the counter through the plan's
// exact BigInt formula (tscPlanRead) — driven by the same seeded mix of chunks, gaps, adjtimex calls and
// steps, must hold the same integers after every chunk. The gaps and pokes reach the loop's exits: an
// update it leaves to the exact paths before it starts (a day-long gap, ntp_error past s64) and one it
// leaves after accumulating (a tick length past 2^62).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Oscillator, type TscPlan, TscCounter, tscPlanRead, withTscAdd } from '../../src/core/oscillator.ts';
import { Prng } from '../../src/core/prng.ts';
import { CLOCK_SOURCE_IS_CONTINUOUS, Clocksource, clocksourceUpdateFreqScale } from '../../src/guest/clocksource.ts';
import { ADJ_FREQUENCY, ADJ_MAXERROR } from '../../src/guest/ntp.ts';
import { Timekeeper } from '../../src/guest/timekeeper.ts';
import { randomTimex } from './random-timex.ts';

const U64 = (1n << 64n) - 1n;

test('src/guest/quiet-updates-wasm.ts is what wasm/quiet-updates.ts compiles to', () => {
  const out = execFileSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { encoding: 'utf8' });
  assert.match(out, /matches/);
});

interface Case {
  name: string;
  khz: number;
  ppm: number;
  mask: bigint;
  hz: number;
  /** The counter's value at true time 0 (near 2^64: it wraps during the run). */
  add: bigint;
  /** A fixed mult/shift instead of the kHz rate's (mult pinned near u32: ntp_error runs past s64). */
  mult?: number;
  shift?: number;
}

const CASES: Case[] = [
  { name: 'tsc 2.6 GHz, a perfect crystal', khz: 2_596_136, ppm: 0, mask: U64, hz: 250, add: 123_456_789n },
  { name: 'tsc 3 GHz at +12.5 ppm, wrapping u64', khz: 3_000_000, ppm: 12.5, mask: U64, hz: 1000, add: U64 - 3_000_000_000n * 2000n },
  { name: 'a 1-GHz counter at −35 ppm, HZ 100', khz: 1_000_000, ppm: -35, mask: U64, hz: 100, add: 0n },
  { name: 'a 32-bit HPET', khz: 14_318, ppm: 3, mask: 0xffff_ffffn, hz: 250, add: 77n },
  { name: 'a 24-bit PM timer', khz: 3_580, ppm: 0, mask: 0xff_ffffn, hz: 250, add: 0n },
];

function clocksource(c: Case, read: () => bigint, plan: () => TscPlan | null): Clocksource {
  const cs = new Clocksource({
    name: 'counter',
    rating: 300,
    mask: c.mask,
    flags: CLOCK_SOURCE_IS_CONTINUOUS,
    read,
    plan,
    ...(c.mult !== undefined ? { mult: c.mult, shift: c.shift } : {}),
  });
  clocksourceUpdateFreqScale(cs, 1, c.mult !== undefined ? 0 : c.khz * 1000);
  return cs;
}

/** Every integer a timekeeper holds, with its counters of updates and exact passes. */
function state(tk: Timekeeper): string {
  return JSON.stringify(
    {
      st: [...tk.st],
      ntpSt: [...tk.ntp.st],
      ntp: tk.ntp.toJSON(),
      ntpError: tk.ntpError,
      skip: tk.skipSecondOverflow,
      advances: tk.advances,
      exactPasses: tk.exactPasses,
      clocks: (['realtime', 'monotonic', 'boottime', 'monotonic_raw'] as const).map((id) => tk.get(id)),
    },
    (_k, v) => (typeof v === 'bigint' ? v.toString() : v),
  );
}

/** Two timekeepers on one counter: `loop` runs its chunks in the WebAssembly loop, `each` update by update. */
function pair(c: Case) {
  const osc = new Oscillator({ ppm: c.ppm });
  const counter = new TscCounter(BigInt(c.khz));
  const plan = withTscAdd(osc.tscPlan(counter, 0n), c.add)!;
  let now = 0n;
  const read = () => tscPlanRead(plan, now)! & c.mask;
  const wall = 1_767_225_600_123_456_789n;
  const loop = new Timekeeper(
    clocksource(c, read, () => plan),
    c.hz,
    wall,
    5_000_000_000n,
  );
  const each = new Timekeeper(
    clocksource(c, read, () => null),
    c.hz,
    wall,
    5_000_000_000n,
  );
  return {
    loop,
    each,
    get now() {
      return now;
    },
    /** n updates every `interval` from `t` both ways; the loop's caller time is moved only by moveTo. */
    chunk(t: bigint, interval: bigint, n: number, where: string): void {
      const moves: bigint[] = [];
      assert.ok(
        loop.advanceEvery(loop.quietPlan()!, t, interval, n, (at) => {
          assert.ok(at >= now, `${where}: moveTo(${at}) goes back from ${now}`);
          moves.push(at);
          now = at;
        }),
        `${where}: the loop ran`,
      );
      const last = t + BigInt(n - 1) * interval;
      assert.equal(moves.at(-1), last, `${where}: the caller's time ends at the last update`);
      now = t;
      for (let k = 0; k < n; k++, now += interval) each.advance();
      now = last;
      assert.equal(state(loop), state(each), where);
    },
    both(f: (tk: Timekeeper) => void): void {
      f(loop);
      f(each);
    },
  };
}

for (const c of CASES) {
  test(`the WebAssembly loop holds the same integers as advance() update by update: ${c.name}`, () => {
    const prng = new Prng(20261128);
    const p = pair(c);
    let t = 1_000_000_000n;
    const exactBefore = () => p.each.exactPasses;
    let gaps = 0;
    for (let i = 0; i < 400; i++) {
      const r = prng.float();
      const where = `${c.name}, step ${i}`;
      if (r < 0.6) {
        // a span's updates: 1 s apart (the default), or every 10 ms … 10 s
        const interval = prng.float() < 0.7 ? 1_000_000_000n : BigInt(10_000_000 + prng.int(10_000_000_000));
        const n = 1 + prng.int(200);
        p.chunk(t, interval, n, where);
        t += BigInt(n) * interval;
      } else if (r < 0.63 && c.mask === U64) {
        // a day away: n·xtime_interval passes 2^62, so the loop leaves the update to accumulateExact
        const before = exactBefore();
        p.chunk(t, 86_400_000_000_000n, 2, where);
        t += 2n * 86_400_000_000_000n;
        assert.ok(exactBefore() > before, `${where}: the day-long gap took the exact path`);
        gaps++;
      } else if (r < 0.68) {
        // a small time_maxerror, which second_overflow() then grows by 500 µs a second up to its limit
        const maxerror = prng.int(2_000_000);
        p.both((tk) => tk.adjtimex({ modes: ADJ_MAXERROR, maxerror }));
      } else if (r < 0.95) {
        const txc = randomTimex(prng);
        p.both((tk) => tk.adjtimex(txc));
      } else {
        const ns = 1_767_225_600_000_000_000n + BigInt(prng.int(1_000_000)) * 1_000_000_000n;
        p.both((tk) => tk.setTimeOfDay(ns));
      }
    }
    assert.ok(p.loop.advances > 10_000, `${p.loop.advances} updates`);
    if (c.mask === U64) assert.ok(gaps > 0, 'a day-long gap');
  });
}

test('the loop leaves an update to adjustExact after accumulating (a tick length past 2^62), the same integers', () => {
  const p = pair(CASES[0]!);
  p.chunk(1_000_000_000n, 1_000_000_000n, 5, 'before');
  // tick_length_base past 2^62 (second_overflow makes ntp_tick_length() from it): adjustFast refuses,
  // the loop stops with the update accumulated
  p.both((tk) => {
    tk.ntp.st[1] = (1n << 62n) + 12_345n;
  });
  const exact = p.loop.exactPasses;
  p.chunk(6_000_000_000n, 1_000_000_000n, 3, 'the poked tick length');
  assert.ok(p.loop.exactPasses > exact, 'the adjustment took the exact path');
});

test('ntp_error past s64 (mult pinned near u32): the loop carries into the high part and then leaves updates to the exact path', () => {
  const c: Case = { name: 'mult-at-u32', khz: 1_073_741, ppm: 0, mask: U64, hz: 250, add: 0n, mult: 0xffff_fff0, shift: 30 };
  const p = pair(c);
  p.both((tk) => tk.adjtimex({ modes: ADJ_FREQUENCY, freq: 500 * 65536 }));
  let t = 1_000_000_000n;
  for (let i = 0; i < 50; i++, t += 100n * 1_000_000_000n) p.chunk(t, 1_000_000_000n, 100, `chunk ${i}`);
  assert.ok(p.loop.ntpError > 1n << 63n, `ntp_error ${p.loop.ntpError} is past s64`);
  assert.ok(p.loop.exactPasses > 0, 'updates past s64 took the exact path');
});
