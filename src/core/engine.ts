// Deterministic discrete-event engine (SimPy-shaped: now, a heap, a loop).
//
// Time is exact integer nanoseconds. Pending events live in a binary heap on parallel typed arrays
// keyed by (time, sequence): the sequence number is the insertion order, so simultaneous events run
// in the order they were scheduled and runs are reproducible. Once many events are pending, only the
// earliest few stay in that ("near") heap and the rest wait, unsorted, in a timing wheel
// (event-wheel.ts) that hands the heap one bucket at a time: the heap alone decides the order. Keys
// are float64 nanoseconds relative to a BigInt epoch, and the epoch moves forward ("rebase") long
// before a key could exceed 2^53, so every key is an exact integer however long the run: a simulated
// year or a century.
import { EventWheel, type NearHeap } from './event-wheel.ts';
import type { Ns } from './time.ts';

/** Relative keys stay below this; the epoch is moved forward when `now` passes REBASE_AT. */
const REBASE_AT = 2 ** 50;
const REBASE_AT_N = BigInt(REBASE_AT);
/** Events further ahead than this (≈ 52 days) wait in an exact BigInt side list until they come near. */
const NEAR = 2 ** 52;
const NEAR_N = BigInt(NEAR);
/** The near heap hands its later entries to the wheel once it holds this many. */
const SPILL_AT = 512;
/** The wheel's bucket width is chosen so the first bucket holds about this many entries. */
const BUCKET_TARGET = 8;
/** Wheel bucket counts (powers of two). */
const MIN_BUCKETS = 256;
const MAX_BUCKETS = 65536;

export type EventCallback = () => void;

/** A copy of `a` with room for `n` elements. */
function grown<T extends Float64Array | Int32Array | Uint8Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

export class EngineError extends Error {
  override name = 'EngineError';
}

/** A re-armable timer, like the kernel's hrtimer or QEMU's QEMUTimer: at most one pending expiry. */
export interface Timer {
  /** Arm (or re-arm) to fire at absolute time `at`. */
  armAt(at: Ns): void;
  /** Arm (or re-arm) to fire `delayNs` from now. */
  armIn(delayNs: number | bigint): void;
  cancel(): void;
  readonly pending: boolean;
  /** Absolute expiry when pending, else null. */
  readonly expires: Ns | null;
}

/** What a model needs from whatever drives time: the simulation engine or a live backend. */
export interface Scheduler {
  readonly now: Ns;
  timer(callback: EventCallback): Timer;
}

/**
 * A scheduler on which a model may run its own periodic work between other events ("quiet spans"):
 * instead of one event per period, it asks how long nothing else happens, moves time itself through
 * its expiries and counts them as dispatched. The simulation engine offers it; a live backend does not.
 */
export interface QuietScheduler extends Scheduler {
  /**
   * The earliest time anything other than `except` can happen: the next live pending event of any
   * other timer, or the end of the current run(); at most `before` (a caller that must end its span
   * earlier). Null when quiet spans are switched off, outside run(), or while a stop() is pending.
   */
  quietHorizon(except: readonly Timer[], grid?: QuietGrid, before?: Ns): Ns | null;
  /** Move time to `t` (no pending event may lie before it): see Engine.advanceTo. */
  advanceTo(t: Ns): void;
  /** advanceTo(t), t = now + by, inside a quiet span (nothing pending before t): see Engine.spanStep. */
  spanStep?(t: Ns, by: number): void;
  /** Count `n` expiries a model ran itself inside a quiet span as dispatched events. */
  countDispatched(n: number): void;
  /** The earliest pending expiry (by time, then arming order) of a quiet participant before `before`. */
  quietParticipantDue?(before: Ns): { timer: Timer; at: Ns } | null;
  /** Run participant `timer`'s expiry, due now, inside a quiet span: as run() would dispatch it. */
  runParticipant?(timer: Timer): void;
  /** Let `timer`'s expiries run inside quiet spans: see Engine.quietParticipant. */
  quietParticipant?(timer: Timer, next: (at: Ns) => Ns | null | undefined, alsoArms?: readonly Timer[]): void;
}

/**
 * The periodic expiries of a quiet span: the caller's own every `periodNs` from `next` on, and those of
 * the `except` timers with the same period. Given to quietHorizon, it lets quiet participants
 * (Engine.quietParticipant) fall inside the span: the caller runs their expiries there itself
 * (quietParticipantDue, runParticipant), at their time and in their order among its own.
 */
export interface QuietGrid {
  next: Ns;
  periodNs: Ns;
}

/**
 * A timer a quiet span may run inside itself: `next(at)` is the expiry its callback at `at` arms (null:
 * none; undefined: it cannot say, so that expiry ends the span as any event does).
 */
interface QuietParticipant {
  slot: number;
  timer: Timer;
  next: (at: Ns) => Ns | null | undefined;
  /** Slots of other participants its callback may arm (each at most once, at or after now). */
  alsoArms: readonly number[];
}

/** The scheduler's quiet-span interface, when it has one. */
export function quietScheduler(s: Scheduler): QuietScheduler | null {
  const q = s as Partial<QuietScheduler>;
  return typeof q.quietHorizon === 'function' && typeof q.advanceTo === 'function' && typeof q.countDispatched === 'function'
    ? (s as QuietScheduler)
    : null;
}

interface FarEvent {
  at: Ns;
  seq: number;
  slot: number;
}

export class Engine implements QuietScheduler, NearHeap {
  /**
   * Whether models may run their periodic work in quiet spans (quietHorizon). Switching it off forces
   * every expiry through the heap, event by event: the reference the fast paths are tested against.
   */
  quietSpans = true;
  private epoch = 0n; // absolute ns of relative key 0
  private nowRel = 0; // relative ns of the event being dispatched / last dispatched
  private nowCache: Ns | null = 0n;

  // heap
  private cap: number;
  private size = 0;
  private keys: Float64Array;
  private seqs: Float64Array;
  private slots: Int32Array;

  // slots: one per timer / one-shot event; an entry is live while its seq matches the slot's
  private callbacks: (EventCallback | null)[] = [];
  private slotCount = 0;
  private armedSeq = new Float64Array(64); // seq of the live heap entry, -1 when not armed
  private armedRel = new Float64Array(64); // its key (NaN while waiting in the far list)
  private oneShot = new Uint8Array(64);
  private freeSlots: number[] = [];

  private far: FarEvent[] = [];
  private readonly wheel = new EventWheel();
  private spillAt = SPILL_AT; // near heap size that triggers a (re)layout of the wheel
  private topDead = false; // the root entry was dispatched and awaits replacement or removal
  private nextSeq = 0;
  private dispatched = 0;
  private stopped = false;
  private running = false;
  private rebases = 0; // epoch moves so far
  private walk = new Int32Array(64); // quietHorizon's stack
  private runUntil: Ns | null = null; // run()'s `until`, while running
  private readonly participants: QuietParticipant[] = [];

  constructor(initialCapacity = 1024) {
    this.cap = initialCapacity;
    this.keys = new Float64Array(initialCapacity);
    this.seqs = new Float64Array(initialCapacity);
    this.slots = new Int32Array(initialCapacity);
  }

  /** Current simulated time, exact. */
  get now(): Ns {
    if (this.nowCache === null) this.nowCache = this.abs(this.nowRel);
    return this.nowCache;
  }

  /** Absolute time of relative key `rel`: with the epoch at 0 (a run's first 2^50 ns) one BigInt, not two. */
  private abs(rel: number): Ns {
    return this.epoch === 0n ? BigInt(rel) : this.epoch + BigInt(rel);
  }

  /** `t` − epoch: `t` itself while the epoch is 0 (no BigInt made). */
  private rel(t: Ns): bigint {
    return this.epoch === 0n ? t : t - this.epoch;
  }

  /** Number of events dispatched so far. */
  get eventsDispatched(): number {
    return this.dispatched;
  }

  /** Events waiting (including cancelled entries not yet discarded). */
  get pendingCount(): number {
    return this.size + this.wheel.count + this.far.length;
  }

  /** Schedule a one-shot callback at absolute time `at`. Returns a handle for `cancel`. */
  at(at: Ns, callback: EventCallback): number {
    const slot = this.allocSlot(callback, true);
    this.arm(slot, at - this.now);
    return slot;
  }

  /** Schedule a one-shot callback `delayNs` from now. */
  after(delayNs: number | bigint, callback: EventCallback): number {
    const slot = this.allocSlot(callback, true);
    this.arm(slot, delayNs);
    return slot;
  }

  /** Cancel a one-shot event by handle; cancelling an event that already ran is a no-op. */
  cancel(handle: number): void {
    if (this.armedSeq[handle] === -1) return;
    this.armedSeq[handle] = -1;
    if (this.oneShot[handle]) this.releaseSlot(handle);
  }

  timer(callback: EventCallback): Timer {
    return new Engine.SlotTimer(this, this.allocSlot(callback, false));
  }

  /**
   * A timer is one small object (engine, slot) with its methods on the prototype: a model with
   * thousands of timers touches one object per arm, not a handful of per-timer closures.
   */
  private static readonly SlotTimer = class implements Timer {
    constructor(
      readonly engine: Engine,
      readonly slot: number,
    ) {}
    armAt(at: Ns): void {
      this.engine.armAtAbs(this.slot, at);
    }
    armIn(delayNs: number | bigint): void {
      this.engine.arm(this.slot, delayNs);
    }
    cancel(): void {
      this.engine.armedSeq[this.slot] = -1;
    }
    get pending(): boolean {
      return this.engine.armedSeq[this.slot] !== -1;
    }
    get expires(): Ns | null {
      return this.engine.expiryOf(this.slot);
    }
  };

  /** Stop the current run() after the event being dispatched. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Dispatch events in time order until none are left, `until` is passed (events at exactly `until`
   * run) or stop() is called. When `until` is given, time ends exactly there.
   */
  run(until?: Ns): void {
    if (until !== undefined && until < this.now) throw new EngineError(`run(until=${until}) is before now=${this.now}`);
    this.stopped = false;
    this.running = true;
    this.runUntil = until ?? null;
    try {
      this.dispatchUntil(until);
    } finally {
      this.running = false;
      this.runUntil = null;
    }
  }

  private dispatchUntil(until: Ns | undefined): void {
    let limit = this.limitRel(until);
    for (;;) {
      if (this.size === 0) {
        if (this.wheel.count > 0) {
          this.refill();
          continue;
        }
        if (this.far.length === 0) break;
        // Nothing near: the earliest far event is next. Jump the epoch to it (no one can observe the gap).
        const next = this.far[0]!.at;
        if (until !== undefined && next > until) break;
        this.wheel.disengage(); // empty: its buckets were laid out for the old epoch
        this.epoch = next;
        this.nowRel = 0;
        this.nowCache = null;
        this.pullFar();
        limit = this.limitRel(until);
        continue;
      }
      const k = this.keys[0]!;
      if (k > limit) break;
      const seq = this.seqs[0]!;
      const slot = this.slots[0]!;
      if (this.armedSeq[slot] !== seq) {
        this.popTop(); // cancelled or re-armed since
        continue;
      }
      // The dispatched entry stays at the root until the callback's first arm() replaces it (one
      // sift-down instead of a pop and a push: the common "timer re-arms itself" case).
      this.topDead = true;
      this.nowRel = k;
      this.nowCache = null;
      this.armedSeq[slot] = -1;
      const cb = this.callbacks[slot]!;
      if (this.oneShot[slot] === 1) this.releaseSlot(slot);
      this.dispatched++;
      const rebases = this.rebases;
      cb();
      this.settleTop();
      // a callback that moved time itself (advanceTo) may have moved the epoch
      if (this.rebases !== rebases) limit = this.limitRel(until);
      if (this.nowRel >= REBASE_AT) {
        this.rebaseBy(this.nowRel);
        limit = this.limitRel(until);
      }
      if (this.stopped) return;
    }
    if (until !== undefined) this.advanceTo(until);
  }

  /**
   * Move time forward to `t` with no event dispatched in between: used at the end of run(until) and by
   * models that advance periodic work analytically. Pending events must all lie at or after `t`.
   */
  advanceTo(t: Ns): void {
    this.spanSeq = -1; // the next spanStep checks again
    const rel = this.rel(t);
    if (rel >= 0n && rel < REBASE_AT_N) {
      // the common case (a model stepping through a quiet span): checked against the heap in float64 keys
      const r = Number(rel);
      if (r < this.nowRel) throw new EngineError(`cannot move time backwards: ${t} < ${this.now}`);
      this.liveTop();
      if (this.size > 0 && this.keys[0]! < r)
        throw new EngineError(`advanceTo(${t}) would skip an event pending at ${this.epoch + BigInt(this.keys[0]!)}`);
      this.nowRel = r; // far events lie ≥ NEAR past the epoch: after t
      this.nowCache = t;
      return;
    }
    if (t < this.now) throw new EngineError(`cannot move time backwards: ${t} < ${this.now}`);
    const next = this.nextEventTime();
    if (next !== null && next < t) throw new EngineError(`advanceTo(${t}) would skip an event pending at ${next}`);
    if (rel < NEAR_N) {
      // the epoch moves to t (rebaseBy keeps `now`), then time moves there too
      this.rebaseBy(Number(rel));
      this.nowRel = 0;
      this.nowCache = t;
    } else {
      this.size = 0; // only stale entries can remain (checked above)
      if (this.wheel.engaged) this.relayout(0);
      this.rebases++;
      this.epoch = t;
      this.nowRel = 0;
      this.nowCache = t;
      this.pullFar();
    }
  }

  /** Check every spanStep as advanceTo does (tests switch it on; results are the same either way). */
  checkSpanSteps = false;
  private spanSeq = -1; // nextSeq at spanStep's last advanceTo check

  /**
   * Move time `by` ns forward to `t` (= now + by) inside a quiet span: the caller's horizon
   * (quietHorizon, quietParticipantDue) says nothing pending lies before `t`, so no heap check per step.
   * An event armed since the last check, a step near a rebase, or checkSpanSteps: advanceTo's checks.
   */
  spanStep(t: Ns, by: number): void {
    const r = this.nowRel + by;
    if (this.nextSeq === this.spanSeq && r < REBASE_AT && !this.checkSpanSteps) {
      this.nowRel = r;
      this.nowCache = t;
      return;
    }
    if (this.checkSpanSteps && t !== this.now + BigInt(by)) throw new EngineError(`spanStep(${t}, ${by}) from ${this.now}`);
    this.advanceTo(t);
    this.spanSeq = this.nextSeq;
  }

  /**
   * Let `timer`'s expiries run inside quiet spans instead of ending them. Its callback must only read
   * model state (or change state nothing in the span reads and whose owner's span accounts for it, as
   * KVM's clock-update requests, handled by the VMM's entries at the span's end) and re-arm `timer`
   * itself, at exactly `next(at)` (checked: an EngineError otherwise);
   * where `next(at)` is undefined, the expiry at `at` ends the span instead. It may also arm the
   * participants `alsoArms` (registered before it), each at most once: the span runs those expiries
   * too, at their time and in their arming order (KVM's kvmclock_sync_fn arming kvmclock_update_fn).
   */
  quietParticipant(timer: Timer, next: (at: Ns) => Ns | null | undefined, alsoArms: readonly Timer[] = []): void {
    const slot = this.slotOf(timer);
    if (slot === undefined) throw new EngineError('a quiet participant must be a timer of this engine');
    const also = alsoArms.map((t) => {
      const s = this.slotOf(t);
      if (s === undefined || !this.participants.some((p) => p.slot === s))
        throw new EngineError('a quiet participant may only arm quiet participants registered before it');
      return s;
    });
    this.participants.push({ slot, timer, next, alsoArms: also });
  }

  quietHorizon(except: readonly Timer[], grid?: QuietGrid, before?: Ns): Ns | null {
    if (!this.quietSpans || !this.running || this.stopped) return null;
    const skip = except.map((t) => this.slotOf(t) ?? -1);
    const withParticipants = grid !== undefined && this.participants.length > 0;
    if (withParticipants) for (const p of this.participants) skip.push(p.slot);
    let h = this.horizonSkipping(skip);
    if (h !== null && before !== undefined && before < h) h = before;
    return h === null || !withParticipants ? h : this.participantHorizon(h, grid, except);
  }

  /**
   * The span's end when the participants' expiries before `h` run inside it: at most `h`, earlier where
   * (a) a participant falls due after the caller's last expiry before the end (the caller's models
   * finish the span at that expiry's time) or cannot say what its callback will arm, or (b) a participant's last re-arm inside the span ties
   * with one of the next expiries the caller re-arms at the span's end (on a grid, in [end, end +
   * period): armed one period before) without being armed strictly before them (the span re-arms
   * those last, so their arming order, which orders equal times, would change).
   */
  private participantHorizon(h: Ns, grid: QuietGrid, except: readonly Timer[]): Ns {
    const I = grid.periodNs;
    // the grids the span's periodic expiries lie on: the caller's, and each `except` timer's
    const origins = [grid.next];
    for (const t of except) {
      const e = t.expires;
      if (e !== null) origins.push(e);
    }
    const onGrid = (t: Ns): boolean => origins.some((o) => t >= o && (t - o) % I === 0n);
    for (;;) {
      const tl = h <= grid.next ? null : grid.next + ((h - 1n - grid.next) / I) * I; // the caller's last expiry < h
      let cut: Ns | null = null;
      for (const p of this.participants) {
        let s = this.expiryOf(p.slot);
        let prev: Ns | null = null;
        while (s !== null && s < h) {
          const n = tl === null || s > tl ? undefined : p.next(s);
          if (n === undefined) {
            cut = cut === null || s < cut ? s : cut;
            break;
          }
          prev = s;
          s = n;
        }
        // prev: its last expiry run inside; s: what that one arms
        // (b): the tied expiry was armed at s − period
        if (prev !== null && s !== null && s < h + I && prev >= s - I && onGrid(s) && (cut === null || prev < cut)) cut = prev;
      }
      if (cut === null) return h;
      h = cut;
    }
  }

  /** The earliest live entry outside `skip`, the far list included, or the end of run(). */
  private horizonSkipping(skip: readonly number[]): Ns | null {
    let best = Infinity;
    // The earliest live entry outside `skip`: a depth-first walk that stops at the first such entry
    // on each path (the heap order puts everything below it later), so it visits few nodes.
    let stack = this.walk;
    let top = 0;
    if (this.size > 0) stack[top++] = 0;
    while (top > 0) {
      const i = stack[--top]!;
      const key = this.keys[i]!;
      if (key >= best) continue;
      const slot = this.slots[i]!;
      if (this.armedSeq[slot] === this.seqs[i] && !skip.includes(slot)) {
        best = key;
        continue;
      }
      const c = 2 * i + 1;
      if (top + 2 > stack.length) stack = this.walk = grown(stack, stack.length * 2);
      if (c < this.size) stack[top++] = c;
      if (c + 1 < this.size) stack[top++] = c + 1;
    }
    // every wheel entry lies after every near-heap entry
    if (best === Infinity && this.wheel.count > 0) best = this.wheel.earliestLive(this.armedSeq, skip);
    let h: Ns | null = best === Infinity ? null : this.abs(best);
    if (h === null) {
      const f = this.far.find((e) => this.armedSeq[e.slot] === e.seq && !skip.includes(e.slot));
      if (f) h = f.at;
    }
    const u = this.runUntil;
    return u !== null && (h === null || u < h) ? u : h;
  }

  countDispatched(n: number): void {
    this.dispatched += n;
  }

  quietParticipantDue(before: Ns): { timer: Timer; at: Ns } | null {
    // in float64 keys (exact integers: the same order) while every pending one has a near key
    const b = this.rel(before);
    const bRel = b >= NEAR_N ? Infinity : Number(b);
    let bestSlot = -1;
    let bestRel = Infinity;
    let bestIdx = -1;
    const ps = this.participants;
    for (let i = 0; i < ps.length; i++) {
      const slot = ps[i]!.slot;
      const seq = this.armedSeq[slot]!;
      if (seq === -1) continue;
      const rel = this.armedRel[slot]!;
      if (Number.isNaN(rel)) return this.quietParticipantDueFar(before);
      if (rel >= bRel) continue;
      if (rel < bestRel || (rel === bestRel && seq < this.armedSeq[bestSlot]!)) {
        bestSlot = slot;
        bestRel = rel;
        bestIdx = i;
      }
    }
    return bestIdx === -1 ? null : { timer: ps[bestIdx]!.timer, at: this.abs(bestRel) };
  }

  /** quietParticipantDue when some participant waits in the far list: through exact BigInt expiries. */
  private quietParticipantDueFar(before: Ns): { timer: Timer; at: Ns } | null {
    let best: QuietParticipant | null = null;
    let bestAt: Ns | null = null;
    for (const p of this.participants) {
      const at = this.expiryOf(p.slot);
      if (at === null || at >= before) continue;
      if (bestAt === null || at < bestAt || (at === bestAt && this.armedSeq[p.slot]! < this.armedSeq[best!.slot]!)) {
        best = p;
        bestAt = at;
      }
    }
    return best ? { timer: best.timer, at: bestAt! } : null;
  }

  runParticipant(timer: Timer): void {
    let p: QuietParticipant | undefined;
    for (const q of this.participants)
      if (q.timer === timer) {
        p = q;
        break;
      }
    // due now: its key is now's (one in the far list compared exactly)
    let at: Ns | null = null;
    if (p && this.armedSeq[p.slot] !== -1) {
      const rel = this.armedRel[p.slot]!;
      at = rel === this.nowRel ? this.now : Number.isNaN(rel) ? this.expiryOf(p.slot) : null;
    }
    if (!p || at === null || at !== this.now) throw new EngineError('runParticipant: not a quiet participant due now');
    const want = p.next(at);
    if (want === undefined) throw new EngineError(`quiet participant at ${at}: cannot say its next expiry, so it cannot run inside a span`);
    const seq = this.nextSeq;
    this.armedSeq[p.slot] = -1;
    this.countDispatched(1);
    this.callbacks[p.slot]!();
    let also = 0; // the other participants it armed (seq ≥ seq: armed in the callback)
    for (const s of p.alsoArms) if (this.armedSeq[s]! >= seq) also++;
    const armed = this.nextSeq - seq - also;
    const own = this.armedSeq[p.slot]!;
    const ok = want === null ? armed === 0 : armed === 1 && own >= seq && this.expiryOf(p.slot) === want;
    if (!ok) throw new EngineError(`quiet participant at ${at}: its callback armed other than its own next expiry ${want}`);
  }

  /** The slot of `timer` when it is one of this engine's timers. */
  private slotOf(timer: Timer): number | undefined {
    return timer instanceof Engine.SlotTimer && timer.engine === this ? timer.slot : undefined;
  }

  /** Absolute time of the earliest live pending event, or null. */
  nextEventTime(): Ns | null {
    this.liveTop();
    if (this.size > 0) return this.abs(this.keys[0]!);
    // cancelled or re-armed far events are dropped here, not reported
    const far = this.far;
    let n = 0;
    while (n < far.length && this.armedSeq[far[n]!.slot] !== far[n]!.seq) n++;
    if (n > 0) far.splice(0, n);
    return far.length > 0 ? far[0]!.at : null;
  }

  private expiryOf(slot: number): Ns | null {
    const seq = this.armedSeq[slot];
    if (seq === -1) return null;
    const rel = this.armedRel[slot]!;
    if (!Number.isNaN(rel)) return this.abs(rel);
    return this.far.find((f) => f.seq === seq)!.at;
  }

  // --- internals ---

  private limitRel(until: Ns | undefined): number {
    if (until === undefined) return Infinity;
    const rel = until - this.epoch;
    return rel >= NEAR_N ? Infinity : Number(rel);
  }

  private allocSlot(callback: EventCallback, oneShot: boolean): number {
    let slot: number;
    if (this.freeSlots.length > 0) slot = this.freeSlots.pop()!;
    else {
      slot = this.slotCount++;
      if (slot === this.armedSeq.length) this.growSlots();
    }
    this.callbacks[slot] = callback;
    this.armedSeq[slot] = -1;
    this.armedRel[slot] = 0;
    this.oneShot[slot] = oneShot ? 1 : 0;
    return slot;
  }

  private growSlots(): void {
    const n = this.armedSeq.length * 2;
    this.armedSeq = grown(this.armedSeq, n);
    this.armedRel = grown(this.armedRel, n);
    this.oneShot = grown(this.oneShot, n);
  }

  private releaseSlot(slot: number): void {
    this.callbacks[slot] = null;
    this.freeSlots.push(slot);
  }

  private arm(slot: number, delay: number | bigint): void {
    // the common case, a number of ns that lands within float64 keys, kept small so that it inlines
    if (typeof delay === 'number' && delay >= 0 && Number.isSafeInteger(delay)) {
      const key = this.nowRel + delay;
      if (key < NEAR) {
        const seq = this.nextSeq++;
        this.armedSeq[slot] = seq;
        this.armedRel[slot] = key;
        return this.push(key, seq, slot);
      }
    }
    this.armSlow(slot, delay);
  }

  /** arm(slot, at − now) without the BigInt `now`: at − epoch is the key itself. */
  private armAtAbs(slot: number, at: Ns): void {
    const rel = this.rel(at);
    if (rel >= 0n && rel < NEAR_N) {
      const key = Number(rel); // exact below 2^52
      if (key >= this.nowRel) {
        const seq = this.nextSeq++;
        this.armedSeq[slot] = seq;
        this.armedRel[slot] = key;
        return this.push(key, seq, slot);
      }
    }
    this.arm(slot, at - this.now);
  }

  private armSlow(slot: number, delay: number | bigint): void {
    let key: number;
    if (typeof delay === 'bigint' && delay >= 0n && delay < NEAR_N) {
      // nowRel < 2^52 (a key) and delay < 2^52: the float64 sum is exact, the same key as the BigInt sum
      key = this.nowRel + Number(delay);
      if (key < NEAR) {
        const seq = this.nextSeq++;
        this.armedSeq[slot] = seq;
        this.armedRel[slot] = key;
        return this.push(key, seq, slot);
      }
    }
    if (typeof delay === 'number') {
      if (!(delay >= 0) || !Number.isSafeInteger(delay))
        throw new EngineError(`delay must be a non-negative integer number of ns, got ${delay}`);
      key = this.nowRel + delay;
      if (key >= NEAR) return this.armFar(slot, this.now + BigInt(delay));
    } else {
      if (delay < 0n) throw new EngineError(`cannot schedule in the past (delay ${delay} ns)`);
      const rel = BigInt(this.nowRel) + delay;
      if (rel >= NEAR_N) return this.armFar(slot, this.now + delay);
      key = Number(rel);
    }
    const seq = this.nextSeq++;
    this.armedSeq[slot] = seq;
    this.armedRel[slot] = key;
    this.push(key, seq, slot);
  }

  /** Events beyond the reach of float64 keys wait, sorted by (time, seq), until the epoch nears them. */
  private armFar(slot: number, at: Ns): void {
    const seq = this.nextSeq++;
    this.armedSeq[slot] = seq;
    this.armedRel[slot] = NaN;
    const ev = { at, seq, slot };
    let i = this.far.length;
    while (i > 0 && this.far[i - 1]!.at > at) i--;
    this.far.splice(i, 0, ev);
  }

  /** Remove the already-dispatched root entry if no arm() has replaced it yet. */
  private settleTop(): void {
    if (this.topDead) {
      this.topDead = false;
      this.popTop();
    }
  }

  /** Put a new entry at the root (over the dispatched one) and sift it down. */
  private replaceTop(key: number, seq: number, slot: number): void {
    const keys = this.keys;
    const seqs = this.seqs;
    const slots = this.slots;
    const n = this.size;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n) {
        const rk = keys[r]!;
        const ck = keys[c]!;
        if (rk < ck || (rk === ck && seqs[r]! < seqs[c]!)) c = r;
      }
      const ck = keys[c]!;
      if (key < ck || (key === ck && seq < seqs[c]!)) break;
      keys[i] = ck;
      seqs[i] = seqs[c]!;
      slots[i] = slots[c]!;
      i = c;
    }
    keys[i] = key;
    seqs[i] = seq;
    slots[i] = slot;
  }

  /** Settle the root, then pop stale entries (refilling from the wheel) until a live one is on top or none is left. */
  private liveTop(): void {
    this.settleTop();
    for (;;) {
      while (this.size > 0 && this.armedSeq[this.slots[0]!] !== this.seqs[0]) this.popTop();
      if (this.size > 0 || this.wheel.count === 0) return;
      this.refill();
    }
  }

  private push(key: number, seq: number, slot: number): void {
    if (key >= this.wheel.nearEnd) return this.toWheel(key, seq, slot);
    if (this.topDead) {
      this.topDead = false;
      return this.replaceTop(key, seq, slot);
    }
    this.pushNear(key, seq, slot);
    if (this.size >= this.spillAt) this.relayout(0);
  }

  private toWheel(key: number, seq: number, slot: number): void {
    this.settleTop();
    this.wheel.add(key, seq, slot);
  }

  /** Push onto the near heap (the wheel's refill delivers here). */
  pushNear(key: number, seq: number, slot: number): void {
    if (this.size === this.cap) this.grow();
    const keys = this.keys;
    const seqs = this.seqs;
    const slots = this.slots;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = keys[p]!;
      if (pk < key || (pk === key && seqs[p]! < seq)) break;
      keys[i] = pk;
      seqs[i] = seqs[p]!;
      slots[i] = slots[p]!;
      i = p;
    }
    keys[i] = key;
    seqs[i] = seq;
    slots[i] = slot;
  }

  private popTop(): void {
    const n = --this.size;
    if (n === 0) return;
    this.replaceTop(this.keys[n]!, this.seqs[n]!, this.slots[n]!);
  }

  private grow(): void {
    this.cap *= 2;
    this.keys = grown(this.keys, this.cap);
    this.seqs = grown(this.seqs, this.cap);
    this.slots = grown(this.slots, this.cap);
  }

  /** The near heap ran dry: move the wheel's next bucket into it; lay the wheel out anew when it fits badly. */
  private refill(): void {
    const w = this.wheel;
    w.refill(this, this.armedSeq);
    // Buckets too narrow (many empty steps per entry delivered) or too wide (a big heap per bucket)
    // for the events as they now come, judged only after as much work as a layout costs so layouts
    // stay amortised; or so few entries left that the wheel is dropped.
    if (
      this.size >= this.spillAt ||
      w.count + this.size < SPILL_AT / 8 || // few left: the near heap alone does better
      (w.steps > 2 * w.buckets + w.count && w.steps > 4 * w.moved) ||
      (w.moved > 2 * w.count && w.moved > 4 * BUCKET_TARGET * w.steps && w.bucketWidth > 1)
    )
      this.relayout(0);
  }

  /**
   * Lay out the pending entries afresh, keys reduced by `shift`: stale entries are dropped; with fewer
   * than SPILL_AT / 2 left everything goes to the near heap, else the wheel gets a bucket width that
   * puts about BUCKET_TARGET entries in its first bucket and enough buckets to span the rest (up to
   * MAX_BUCKETS; the overflow heap takes what lies beyond).
   */
  private relayout(shift: number): void {
    this.settleTop();
    const keys: number[] = [];
    const seqs: number[] = [];
    const slots: number[] = [];
    const keep = (key: number, seq: number, slot: number): void => {
      if (this.armedSeq[slot] !== seq) return;
      keys.push(key - shift);
      seqs.push(seq);
      slots.push(slot);
    };
    for (let i = 0; i < this.size; i++) keep(this.keys[i]!, this.seqs[i]!, this.slots[i]!);
    this.wheel.drain(keep);
    this.size = 0;
    const n = keys.length;
    if (n < SPILL_AT / 2) {
      this.wheel.disengage();
      this.spillAt = SPILL_AT;
      for (let i = 0; i < n; i++) this.pushNear(keys[i]!, seqs[i]!, slots[i]!);
      return;
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const k of keys) {
      if (k < lo) lo = k;
      if (k > hi) hi = k;
    }
    // within[0]: keys equal to lo; within[j]: keys with 2^(j-1) ≤ key - lo < 2^j
    const within = new Float64Array(54);
    for (const k of keys) within[k === lo ? 0 : Math.min(53, Math.floor(Math.log2(k - lo)) + 1)]!++;
    let bits = 0;
    let acc = within[0]!;
    for (let b = 1; b <= 53; b++) {
      acc += within[b]!;
      if (acc > BUCKET_TARGET) break;
      bits = b;
    }
    let buckets = MIN_BUCKETS;
    while (buckets < MAX_BUCKETS && buckets * 2 ** bits <= hi - lo) buckets *= 2;
    this.wheel.layout(bits, buckets, lo);
    for (let i = 0; i < n; i++) {
      if (keys[i]! < this.wheel.nearEnd) this.pushNear(keys[i]!, seqs[i]!, slots[i]!);
      else this.wheel.add(keys[i]!, seqs[i]!, slots[i]!);
    }
    // a crowd of equal keys cannot be split: wait for the near heap to double before trying again
    this.spillAt = Math.max(SPILL_AT, 2 * this.size);
  }

  /** Move the epoch forward by `shift` ns (≤ every live key), keeping every absolute time unchanged. */
  private rebaseBy(shift: number): void {
    this.rebases++;
    const now = this.epoch + BigInt(this.nowRel);
    if (this.wheel.engaged) this.relayout(shift);
    else for (let i = 0; i < this.size; i++) this.keys[i] = this.keys[i]! - shift;
    for (let s = 0; s < this.slotCount; s++) if (this.armedSeq[s] !== -1) this.armedRel[s] = this.armedRel[s]! - shift;
    this.epoch += BigInt(shift);
    this.nowRel = Number(now - this.epoch);
    this.nowCache = now;
    this.pullFar();
  }

  /** Move far events that the current epoch can now represent exactly into the heap. */
  private pullFar(): void {
    let n = 0;
    for (const f of this.far) {
      const rel = f.at - this.epoch;
      if (rel >= NEAR_N) break;
      n++;
      if (this.armedSeq[f.slot] !== f.seq) continue;
      this.armedRel[f.slot] = Number(rel);
      this.push(Number(rel), f.seq, f.slot);
    }
    if (n > 0) this.far.splice(0, n);
  }
}
