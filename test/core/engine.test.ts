import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, EngineError } from '../../src/core/engine.ts';

const YEAR = 365n * 86_400n * 1_000_000_000n;

test('events run in time order and simultaneous events in scheduling order', () => {
  const e = new Engine(2); // tiny capacity forces growth
  const log: string[] = [];
  e.after(30, () => log.push('c30'));
  e.after(10, () => log.push('a10'));
  e.after(20, () => log.push('b20'));
  for (const n of ['x', 'y', 'z', 'w']) e.after(20, () => log.push(n + '20'));
  e.run();
  assert.deepEqual(log, ['a10', 'b20', 'x20', 'y20', 'z20', 'w20', 'c30']);
  assert.equal(e.now, 30n);
  assert.equal(e.eventsDispatched, 7);
});

test('cancel and re-arm: a cancelled event never runs, a re-armed timer runs once at its new time', () => {
  const e = new Engine();
  const log: bigint[] = [];
  const h = e.after(5, () => log.push(-1n));
  e.cancel(h);
  const t = e.timer(() => log.push(e.now));
  t.armIn(100);
  t.armAt(50n); // re-arm earlier
  assert.equal(t.expires, 50n);
  e.after(70, () => {
    t.armIn(10); // re-arm from inside another event
  });
  e.run();
  assert.deepEqual(log, [50n, 80n]);
  assert.equal(t.pending, false);
  assert.equal(t.expires, null);
});

test('run(until) stops after events at exactly `until` and leaves time there', () => {
  const e = new Engine();
  const log: bigint[] = [];
  for (const d of [10, 20, 30]) e.after(d, () => log.push(e.now));
  e.run(20n);
  assert.deepEqual(log, [10n, 20n]);
  assert.equal(e.now, 20n);
  e.run(25n);
  assert.equal(e.now, 25n);
  e.run();
  assert.deepEqual(log, [10n, 20n, 30n]);
  assert.throws(() => e.run(1n), EngineError);
});

test('time stays exact to the nanosecond over a simulated year of 1 ms ticks plus odd offsets', () => {
  const e = new Engine();
  // A periodic timer of 1000 s + 997,003 ns (odd, so float rounding would show) for one year.
  const period = 1_000_000_997_003n;
  let n = 0n;
  let bad = 0;
  const t = e.timer(() => {
    n++;
    if (e.now !== n * period + 1n) bad++;
    t.armIn(period);
  });
  t.armAt(period + 1n);
  e.run(YEAR);
  assert.equal(bad, 0);
  assert.equal(n, (YEAR - 1n) / period);
  assert.equal(e.now, YEAR);
});

test('far events (beyond 2^53 ns) fire at their exact time, in order with near ones', () => {
  const e = new Engine();
  const log: [string, bigint][] = [];
  const far1 = YEAR + 123_456_789n;
  const far2 = 3n * YEAR + 7n;
  e.at(far2, () => log.push(['far2', e.now]));
  e.at(far1, () => log.push(['far1', e.now]));
  e.after(1_000, () => log.push(['near', e.now]));
  e.at(far1, () => log.push(['far1b', e.now])); // same time, scheduled later → runs later
  e.run();
  assert.deepEqual(log, [
    ['near', 1000n],
    ['far1', far1],
    ['far1b', far1],
    ['far2', far2],
  ]);
  // scheduling relative to a late "now" stays exact
  e.after(1, () => log.push(['after', e.now]));
  e.run();
  assert.deepEqual(log.at(-1), ['after', far2 + 1n]);
});

test('advanceTo refuses to skip pending events and to go backwards', () => {
  const e = new Engine();
  e.after(100, () => {});
  assert.throws(() => e.advanceTo(200n), /skip/);
  e.advanceTo(50n);
  assert.equal(e.now, 50n);
  assert.throws(() => e.advanceTo(10n), /backwards/);
  assert.throws(() => e.after(-1, () => {}), EngineError);
  assert.throws(() => e.after(1.5, () => {}), EngineError);
});

test('stop() ends run() after the current event; a later run() continues', () => {
  const e = new Engine();
  const log: number[] = [];
  e.after(1, () => {
    log.push(1);
    e.stop();
  });
  e.after(2, () => log.push(2));
  e.run();
  assert.deepEqual(log, [1]);
  e.run();
  assert.deepEqual(log, [1, 2]);
});

test('quietHorizon: the earliest other live event, or the end of the run; null when switched off or outside run()', () => {
  const e = new Engine();
  const own = e.timer(() => {});
  const other = e.timer(() => {});
  const seen: (bigint | null)[] = [];
  assert.equal(e.quietHorizon([own]), null, 'outside run()');
  e.at(10n, () => {
    own.armAt(11n); // at the root: skipped, not taken for the horizon
    other.armAt(500n);
    const gone = e.at(20n, () => {});
    e.cancel(gone); // cancelled entries do not count
    seen.push(e.quietHorizon([own]));
    seen.push(e.quietHorizon([own, other])); // nothing else: the run's end
    e.quietSpans = false;
    seen.push(e.quietHorizon([own]));
    e.quietSpans = true;
    own.cancel();
  });
  e.run(1000n);
  assert.deepEqual(seen, [500n, 1000n, null]);
});

test('quietHorizon finds the earliest other event among thousands, through cancelled and re-armed entries', () => {
  const e = new Engine();
  const timers = Array.from({ length: 3000 }, () => e.timer(() => {}));
  let x = 12345;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
  for (const t of timers) t.armIn(1000 + (rnd() % 1_000_000));
  for (let i = 0; i < 1000; i++) timers[rnd() % 3000]!.armIn(1000 + (rnd() % 1_000_000)); // stale entries
  for (let i = 0; i < 300; i++) timers[rnd() % 3000]!.cancel();
  let checked = 0;
  e.at(500n, () => {
    for (let k = 0; k < 50; k++) {
      const except = [timers[rnd() % 3000]!, timers[rnd() % 3000]!];
      const live = timers.filter((t) => t.pending && !except.includes(t)).map((t) => t.expires!);
      const expect = live.reduce((a, b) => (b < a ? b : a));
      assert.equal(e.quietHorizon(except), expect < 2_000_000n ? expect : 2_000_000n);
      checked++;
    }
  });
  e.run(2_000_000n);
  assert.equal(checked, 50);
});

test('a callback may move time through a quiet span itself: later events keep their order and the run its end', () => {
  const e = new Engine();
  const log: [string, bigint][] = [];
  e.at(2n ** 51n, () => log.push(['late', e.now])); // past the rebase point: the epoch moves inside the callback
  e.at(2n ** 51n + 10n, () => log.push(['after the run', e.now])); // the run's end, measured from the moved epoch
  e.at(10n, () => {
    for (const t of [100n, 2n ** 50n + 7n, 2n ** 51n - 1n]) e.advanceTo(t);
    e.countDispatched(3);
    log.push(['span', e.now]);
    assert.throws(() => e.advanceTo(2n ** 51n + 1n), /skip/);
  });
  e.run(2n ** 51n + 5n);
  assert.deepEqual(log, [
    ['span', 2n ** 51n - 1n],
    ['late', 2n ** 51n],
  ]);
  assert.equal(e.now, 2n ** 51n + 5n);
  assert.equal(e.eventsDispatched, 5);
});

test('spanStep moves time as advanceTo does, across the rebase point, and keeps the run in order', () => {
  const e = new Engine();
  const log: [string, bigint][] = [];
  const by = 999_999_937; // a prime interval: steps land on no round key
  const start = 2n ** 50n - 40n * BigInt(by); // the last steps cross REBASE_AT (advanceTo's rebase there)
  e.at(start + 100n * BigInt(by) + 1n, () => log.push(['after', e.now]));
  const side = e.timer(() => log.push(['side', e.now]));
  e.at(start, () => {
    for (let k = 1; k <= 100; k++) {
      const t = start + BigInt(k) * BigInt(by);
      e.spanStep(t, by);
      assert.equal(e.now, t, `step ${k}`);
      if (k % 7 === 0) {
        side.armIn(1); // an arm inside the span (then cancelled): the next step checks the heap again
        side.cancel();
      }
    }
    log.push(['span', e.now]);
    e.after(1, () => log.push(['1 ns on', e.now])); // a delay counted from the relative time the steps left
  });
  e.run();
  assert.deepEqual(log, [
    ['span', start + 100n * BigInt(by)],
    ['after', start + 100n * BigInt(by) + 1n], // the same time, armed earlier: first
    ['1 ns on', start + 100n * BigInt(by) + 1n],
  ]);
});

test('spanStep: an event armed inside the span is not stepped over; checkSpanSteps checks every step', () => {
  const e = new Engine();
  e.spanStep(10n, 10); // the first step checks (and finds nothing)
  e.spanStep(20n, 10); // unchecked: nothing armed since
  assert.equal(e.now, 20n);
  e.at(25n, () => {}); // armed inside the span (a callback the caller did not foresee)
  assert.throws(() => e.spanStep(30n, 10), /skip/);
  assert.equal(e.now, 20n);

  // armed before the span: the caller's horizon must cover it; checkSpanSteps finds a caller that did not
  const c = new Engine();
  c.spanStep(10n, 10);
  c.checkSpanSteps = true;
  assert.throws(() => c.spanStep(25n, 10), /spanStep\(25, 10\) from 10/); // t is not now + by
  c.at(15n, () => {});
  c.spanStep(15n, 5); // checked: the event at 15 is not skipped (it runs after, as with advanceTo)
  c.checkSpanSteps = false;
  c.spanStep(16n, 1); // checks once: an arm happened since
  c.checkSpanSteps = true;
  assert.throws(() => c.spanStep(26n, 10), /skip/);
});
