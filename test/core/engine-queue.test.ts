// The engine's queue (near heap + timing wheel + far list, epoch rebases) against a plain reference:
// a sorted array of (time, sequence) in BigInt. Both run the same random schedule — thousands of
// timers re-armed and cancelled from callbacks, one-shot events, equal times, gaps from 0 ns to past
// 2^53 ns, quiet spans moved through with advanceTo, quietHorizon queries — and must dispatch the
// same events at the same times in the same order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { Prng } from '../../src/core/prng.ts';

/** The reference: a sorted array (latest first, so the next event pops off the end) and lazy cancel. */
class RefEngine {
  now = 0n;
  private seq = 0;
  private q: { at: bigint; seq: number; id: number }[] = [];
  private armed = new Map<number, number>(); // id → seq of its live entry
  private cbs = new Map<number, () => void>();
  private nextId = 0;
  private stopped = false;
  private until: bigint | null = null;
  dispatched = 0;

  add(cb: () => void): number {
    const id = this.nextId++;
    this.cbs.set(id, cb);
    return id;
  }
  armAt(id: number, at: bigint): void {
    if (at < this.now) throw new Error('past');
    const e = { at, seq: this.seq++, id };
    this.armed.set(id, e.seq);
    let lo = 0;
    let hi = this.q.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      const x = this.q[m]!;
      if (x.at > at || (x.at === at && x.seq > e.seq)) lo = m + 1;
      else hi = m;
    }
    this.q.splice(lo, 0, e);
  }
  cancel(id: number): void {
    this.armed.delete(id);
  }
  pending(id: number): boolean {
    return this.armed.has(id);
  }
  private live(e: { seq: number; id: number }): boolean {
    return this.armed.get(e.id) === e.seq;
  }
  nextEventTime(): bigint | null {
    for (let i = this.q.length - 1; i >= 0; i--) if (this.live(this.q[i]!)) return this.q[i]!.at;
    return null;
  }
  quietHorizon(except: number[]): bigint | null {
    let h: bigint | null = null;
    for (let i = this.q.length - 1; i >= 0; i--) {
      const e = this.q[i]!;
      if (this.live(e) && !except.includes(e.id)) {
        h = e.at;
        break;
      }
    }
    const u = this.until;
    return u !== null && (h === null || u < h) ? u : h;
  }
  stop(): void {
    this.stopped = true;
  }
  run(until?: bigint): void {
    this.stopped = false;
    this.until = until ?? null;
    while (this.q.length > 0) {
      const e = this.q[this.q.length - 1]!;
      if (!this.live(e)) {
        this.q.pop();
        continue;
      }
      if (until !== undefined && e.at > until) break;
      this.q.pop();
      this.now = e.at;
      this.armed.delete(e.id);
      this.dispatched++;
      this.cbs.get(e.id)!();
      if (this.stopped) break;
    }
    this.until = null;
    if (until !== undefined && !this.stopped) this.now = until;
  }
}

/** What a schedule may do to either engine. */
interface Driver {
  now(): bigint;
  timer(cb: () => void): number;
  armAt(id: number, at: bigint): void;
  cancel(id: number): void;
  pending(id: number): boolean;
  nextEventTime(): bigint | null;
  quietHorizon(except: number[]): bigint | null;
  advanceTo(t: bigint): void;
  stop(): void;
  /** A one-shot event; its handle may be passed to cancelOnce while it is pending. */
  once(at: bigint, cb: () => void): number;
  cancelOnce(h: number): void;
}

function engineDriver(e: Engine): Driver {
  const timers: ReturnType<Engine['timer']>[] = [];
  return {
    now: () => e.now,
    timer(cb) {
      timers.push(e.timer(cb));
      return timers.length - 1;
    },
    // every arming path: armAt, armIn with a BigInt delay, armIn with a number where it is exact
    armAt: (id, at) => {
      const d = at - e.now;
      if (id % 3 === 0) timers[id]!.armAt(at);
      else if (id % 3 === 1 || d >= 2n ** 53n) timers[id]!.armIn(d);
      else timers[id]!.armIn(Number(d));
    },
    cancel: (id) => timers[id]!.cancel(),
    pending: (id) => timers[id]!.pending,
    nextEventTime: () => e.nextEventTime(),
    quietHorizon: (except) => e.quietHorizon(except.map((id) => timers[id]!)),
    advanceTo: (t) => e.advanceTo(t),
    stop: () => e.stop(),
    once: (at, cb) => e.at(at, cb),
    cancelOnce: (h) => e.cancel(h),
  };
}

function refDriver(r: RefEngine): Driver {
  return {
    now: () => r.now,
    timer: (cb) => r.add(cb),
    armAt: (id, at) => r.armAt(id, at),
    cancel: (id) => r.cancel(id),
    pending: (id) => r.pending(id),
    nextEventTime: () => r.nextEventTime(),
    quietHorizon: (except) => r.quietHorizon(except),
    advanceTo: (t) => {
      r.now = t;
    },
    stop: () => r.stop(),
    once(at, cb) {
      const id = r.add(cb);
      r.armAt(id, at);
      return id;
    },
    cancelOnce: (h) => r.cancel(h),
  };
}

interface Shape {
  timers: number;
  /** Events to dispatch before stopping. */
  events: number;
  /** A delay for a re-arm, drawn from the shape's mix. */
  delay(p: Prng): bigint;
  /**
   * Makes, per run, a rule that tells each event (by the pending timers, counted every 64 events)
   * to go idle without re-arming, or to arm two random timers besides.
   */
  phases?(): (pending: number, p: Prng) => 'quit' | 'spread' | null;
}

/**
 * Builds `shape.timers` timers whose callbacks log (timer, time) and then, by the shared PRNG, re-arm
 * themselves, re-arm or cancel another timer, query quietHorizon / nextEventTime, or move time through
 * a quiet span; the same PRNG draws feed both engines only if they dispatch identically.
 */
function play(d: Driver, seed: number, shape: Shape): string[] {
  const p = new Prng(seed);
  const log: string[] = [];
  let left = shape.events;
  const ids: number[] = [];
  const once = new Set<number>(); // pending one-shot handles
  const rule = shape.phases?.();
  let pending = shape.timers;
  for (let i = 0; i < shape.timers; i++) {
    const id = d.timer(() => {
      log.push(`${id}@${d.now()}`);
      if (--left <= 0) {
        d.stop();
        return;
      }
      if (left % 64 === 0) pending = ids.filter((i) => d.pending(i)).length;
      const phase = rule?.(pending, p) ?? null;
      if (phase === 'quit') return;
      if (phase === 'spread') {
        for (let k = 0; k < 2; k++) d.armAt(ids[p.int(ids.length)]!, d.now() + shape.delay(p));
      }
      const r = p.int(100);
      if (r < 70) d.armAt(id, d.now() + shape.delay(p));
      else if (r < 80) {
        d.armAt(ids[p.int(ids.length)]!, d.now() + shape.delay(p)); // re-arm another (maybe earlier), then itself
        d.armAt(id, d.now() + shape.delay(p));
      } else if (r < 88) {
        d.cancel(ids[p.int(ids.length)]!);
        d.armAt(id, d.now() + shape.delay(p));
      } else if (r < 92) {
        const except = [id, ids[p.int(ids.length)]!];
        log.push(`h${d.quietHorizon(except)}`);
        d.armAt(id, d.now() + shape.delay(p));
      } else if (r < 96) {
        // a quiet span: move time part of the way to the next event, then re-arm
        const next = d.nextEventTime();
        log.push(`n${next}`);
        if (next !== null) d.advanceTo(d.now() + (next - d.now()) / 2n);
        d.armAt(id, d.now() + shape.delay(p));
      } else if (r < 97)
        d.armAt(id, d.now()); // at the current time: after everything already due now
      else if (r < 98) {
        // a one-shot event (its slot is reused once it ran), and now and then one cancelled
        let h = -1;
        const tag = p.int(1000);
        h = d.once(d.now() + shape.delay(p), () => {
          log.push(`o${tag}@${d.now()}`);
          once.delete(h);
        });
        once.add(h);
        if (p.int(3) === 0) {
          const victim = [...once][p.int(once.size)]!;
          d.cancelOnce(victim);
          once.delete(victim);
        }
        d.armAt(id, d.now() + shape.delay(p));
      }
      // else: stays idle until someone re-arms it
    });
    ids.push(id);
  }
  for (const id of ids) d.armAt(id, shape.delay(p));
  d.armAt(ids[0]!, 0n);
  return log;
}

function compare(seed: number, shape: Shape, until?: bigint): void {
  const e = new Engine();
  const r = new RefEngine();
  const got = play(engineDriver(e), seed, shape);
  const want = play(refDriver(r), seed, shape);
  e.run(until);
  r.run(until);
  assert.equal(got.length, want.length, `seed ${seed}: ${got.length} log lines, reference ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) assert.fail(`seed ${seed}: line ${i}: engine ${got[i]}, reference ${want[i]}`);
  }
  assert.equal(e.now, r.now);
  assert.equal(e.eventsDispatched, r.dispatched);
}

const uniform = (lo: number, hi: number) => (p: Prng) => BigInt(lo + p.int(hi - lo + 1));

test('queue = sorted reference: 3,000 timers, random periods 1 µs – 1 ms, equal times, cancels and re-arms', () => {
  for (const seed of [1, 2, 3]) {
    compare(seed, {
      timers: 3000,
      events: 60_000,
      delay: (p) => (p.int(10) === 0 ? BigInt(p.int(3)) : uniform(1000, 1_000_000)(p)),
    });
  }
});

test('queue = sorted reference: times on a coarse grid (crowds of equal times) and tiny gaps', () => {
  compare(11, { timers: 2500, events: 50_000, delay: (p) => BigInt(p.int(8) * 1000) });
  compare(12, { timers: 2000, events: 40_000, delay: (p) => BigInt(p.int(4)) });
});

test('queue = sorted reference: crowds of 2,000 equal times on a 4 ms beat, pulled from the overflow at once', () => {
  // periodic ticks that line up (as many guests' would) and 50 odd periods between them, each timer
  // re-arming itself: every beat's 2,000 entries come out of the overflow heap into one bucket
  const p = new Prng(51);
  const periods = Array.from({ length: 2050 }, (_, i) => BigInt(i < 2000 ? 4_000_000 : 1000 + p.int(10_000_000)));
  const logs = [new Engine(), new RefEngine()].map((x) => {
    const d = x instanceof Engine ? engineDriver(x) : refDriver(x);
    const log: string[] = [];
    let left = 20_000;
    periods.forEach((period, i) => {
      const id = d.timer(() => {
        log.push(`${i}@${d.now()}`);
        if (--left > 0) d.armAt(id, d.now() + period);
        else d.stop();
      });
      d.armAt(id, period);
    });
    x.run();
    return log;
  });
  assert.equal(logs[0]!.length, 20_000);
  assert.deepEqual(logs[0], logs[1]);
});

test('queue = sorted reference: gaps from 1 ns to past 2^53 ns (far list, epoch rebases, wheel overflow)', () => {
  const wide = (p: Prng): bigint => {
    const r = p.int(20);
    if (r === 0) return 2n ** 53n + BigInt(p.int(1000)); // beyond float64 keys: the far list
    if (r === 1) return 2n ** 49n + BigInt(p.int(1_000_000)); // moves time past the rebase point
    if (r < 5) return BigInt(p.int(1_000_000_000)) * 1000n; // up to 1000 s: the wheel's overflow
    return BigInt(1 + p.int(1 << p.int(24)));
  };
  for (const seed of [21, 22]) compare(seed, { timers: 2500, events: 40_000, delay: wide });
});

test('queue = sorted reference: the pending count swings from thousands to a handful and back', () => {
  // thousands pending; then three in four events go idle until fewer than 40 are left; then each
  // event arms two more until 3,000 are pending; twice over
  const swings = () => {
    let down = true;
    let turns = 0;
    return (pending: number, p: Prng): 'quit' | 'spread' | null => {
      if (down && pending < 40) down = false;
      else if (!down && pending >= 3000 && turns++ < 1) down = true;
      if (down) return p.int(4) === 0 ? null : 'quit';
      return pending < 3000 ? 'spread' : null;
    };
  };
  compare(31, {
    timers: 4000,
    events: 40_000,
    delay: (p) => BigInt(p.int(2) === 0 ? 1 + p.int(100) : 1 + p.int(50_000_000)),
    phases: swings,
  });
});

test('queue = sorted reference: run(until) in steps ends each step at the same time', () => {
  const shape: Shape = { timers: 2000, events: 1e9, delay: uniform(1, 2_000_000) };
  const e = new Engine();
  const r = new RefEngine();
  const got = play(engineDriver(e), 41, shape);
  const want = play(refDriver(r), 41, shape);
  for (let until = 1_000_000n; until <= 40_000_000n; until += 3_333_333n) {
    e.run(until);
    r.run(until);
    assert.equal(e.now, r.now);
  }
  assert.deepEqual(got, want);
});

test('advanceTo from a callback past the rebase point (2^50 ns from the epoch) moves time there', () => {
  const e = new Engine();
  const log: bigint[] = [];
  const t = e.timer(() => log.push(e.now));
  e.at(10n, () => {
    e.advanceTo(2n ** 50n + 5n);
    log.push(e.now);
    t.armIn(7); // relative to the new now
  });
  e.run();
  assert.deepEqual(log, [2n ** 50n + 5n, 2n ** 50n + 12n]);
});

test('a cancelled far event (past 2^52 ns) is neither the next event nor a bar to advanceTo', () => {
  const e = new Engine();
  const h = e.at(2n ** 53n, () => assert.fail('cancelled'));
  const log: bigint[] = [];
  e.at(2n ** 53n + 5n, () => log.push(e.now));
  e.cancel(h);
  assert.equal(e.nextEventTime(), 2n ** 53n + 5n);
  e.advanceTo(2n ** 53n + 1n);
  e.run();
  assert.deepEqual(log, [2n ** 53n + 5n]);
});

test('quietParticipantDue: the earliest participant expiry before a bound (arming order on ties), near keys and the far list alike', () => {
  const p = new Prng(77);
  for (let round = 0; round < 200; round++) {
    const e = new Engine();
    const ts = Array.from({ length: 6 }, () => e.timer(() => {}));
    for (const t of ts) e.quietParticipant(t, () => null);
    const at: (bigint | null)[] = [];
    const seq: number[] = [];
    let n = 0;
    // arm in a random order, some twice, some not at all; times on a coarse grid (ties), some far (past 2^52 ns)
    for (let k = 0; k < 9; k++) {
      const i = p.int(6);
      const far = p.int(5) === 0;
      const t = far ? 2n ** 52n + BigInt(p.int(3)) * 1000n : BigInt(p.int(4)) * 1000n;
      ts[i]!.armAt(t);
      at[i] = t;
      seq[i] = n++;
    }
    for (const before of [0n, 1000n, 2500n, 4000n, 2n ** 52n + 1000n, 2n ** 60n]) {
      let want: number | null = null;
      for (let i = 0; i < 6; i++) {
        const a = at[i];
        if (a === undefined || a === null || a >= before) continue;
        if (want === null || a < at[want]! || (a === at[want]! && seq[i]! < seq[want]!)) want = i;
      }
      const got = e.quietParticipantDue(before);
      assert.equal(got === null ? null : ts.indexOf(got.timer as (typeof ts)[number]), want, `round ${round}, before ${before}`);
      if (got) assert.equal(got.at, at[want!]);
    }
  }
});
