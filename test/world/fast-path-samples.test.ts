// Quiet participants (Engine.quietParticipant): the world's sampler and the NTP client's polls run inside a
// VM's quiet span, at their time and in their order among the span's updates, instead of ending it. Every
// scenario runs twice — quiet spans on, and off (every expiry through the engine) — and the summary, the
// timeline CSV and the series must come out byte for byte the same; each case also checks that the
// instants it is about (a sample on an update's expiry, on a pause, on an NTP step) did happen inside spans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { GuestKernel } from '../../src/guest/boot.ts';
import { ADJ_SETOFFSET } from '../../src/guest/ntp.ts';
import { Timekeeper } from '../../src/guest/timekeeper.ts';
import { parseScenarioText } from '../../src/world/scenario.ts';
import { simulate, timelineCsv } from '../../src/world/simulation.ts';
import { VmRun } from '../../src/world/vm-run.ts';

const json = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x), 1);

interface Seen {
  /** Participant expiries the quiet run took inside spans, by time. */
  inside: bigint[];
  /** Of those, the ones at the time of a timekeeper update (from the event-by-event run). */
  onUpdate: bigint[];
  /** Times of the samples of the event-by-event run's timeline. */
  sampleTimes: Set<bigint>;
  /** ADJ_SETOFFSET steps made inside spans. */
  stepsInside: bigint[];
  /** Expiries run inside spans in all (updates, entries, participants). */
  spanExpiries: number;
}

/**
 * `sim` with every timekeeper advance, sample and adjtimex logged in the order they ran, with their time:
 * a sample and an update at the same instant commute on the clocks (Linux keeps reads continuous across
 * an update), so the bytes alone would not show a sample run on the wrong side of an update.
 */
function ordered<T>(sim: () => T): { result: T; order: string[] } {
  const order: string[] = [];
  let engine: Engine | null = null;
  const runEngine = Engine.prototype.run;
  const advance = Timekeeper.prototype.advance;
  const every = Timekeeper.prototype.advanceEvery;
  let inEvery = false;
  const sample = VmRun.prototype.sample;
  const adjtimex = GuestKernel.prototype.adjtimex;
  Engine.prototype.run = function (this: Engine, until) {
    engine = this;
    runEngine.call(this, until);
  };
  Timekeeper.prototype.advance = function (this: Timekeeper, freqChange) {
    if (!inEvery) order.push(`update ${engine?.now}`);
    advance.call(this, freqChange);
  };
  // the WebAssembly loop's updates (and those it leaves to advance()), in their order, at their times
  Timekeeper.prototype.advanceEvery = function (this: Timekeeper, plan, t, interval, n, moveTo) {
    inEvery = true;
    let ran: boolean;
    try {
      ran = every.call(this, plan, t, interval, n, moveTo);
    } finally {
      inEvery = false;
    }
    if (ran) for (let k = 0n; k < BigInt(n); k++) order.push(`update ${t + k * interval}`);
    return ran;
  };
  VmRun.prototype.sample = function (this: VmRun, t) {
    order.push(`sample ${t}`);
    sample.call(this, t);
  };
  GuestKernel.prototype.adjtimex = function (this: GuestKernel, txc) {
    order.push(`adjtimex ${engine?.now}`);
    return adjtimex.call(this, txc);
  };
  try {
    return { result: sim(), order };
  } finally {
    Engine.prototype.run = runEngine;
    Timekeeper.prototype.advance = advance;
    Timekeeper.prototype.advanceEvery = every;
    VmRun.prototype.sample = sample;
    GuestKernel.prototype.adjtimex = adjtimex;
  }
}

/** Runs `yaml` both ways, compares the bytes and the order of updates, samples and polls, and reports what the quiet run did inside spans. */
function bothWays(yaml: string, where: string): Seen {
  const s = parseScenarioText(yaml, where);
  const updates = new Set<bigint>();
  const update = GuestKernel.prototype.update;
  GuestKernel.prototype.update = function (this: GuestKernel) {
    updates.add(this.opts.scheduler.now);
    update.call(this);
  };
  let slowRun: { result: ReturnType<typeof simulate>; order: string[] };
  try {
    slowRun = ordered(() => simulate(s, { quietSpans: false }));
  } finally {
    GuestKernel.prototype.update = update;
  }
  const slow = slowRun.result;
  const seen: Seen = { inside: [], onUpdate: [], sampleTimes: new Set(slow.timeline.map((r) => r.t)), stepsInside: [], spanExpiries: 0 };
  const run = Engine.prototype.runParticipant;
  const count = Engine.prototype.countDispatched;
  const adjtimex = GuestKernel.prototype.adjtimex;
  let inParticipant = false;
  Engine.prototype.runParticipant = function (this: Engine, timer) {
    seen.inside.push(this.now);
    if (updates.has(this.now)) seen.onUpdate.push(this.now);
    inParticipant = true;
    try {
      run.call(this, timer);
    } finally {
      inParticipant = false;
    }
  };
  Engine.prototype.countDispatched = function (this: Engine, n: number) {
    seen.spanExpiries += n;
    count.call(this, n);
  };
  GuestKernel.prototype.adjtimex = function (this: GuestKernel, txc) {
    if (inParticipant && (txc.modes ?? 0) & ADJ_SETOFFSET) seen.stepsInside.push(this.opts.scheduler.now);
    return adjtimex.call(this, txc);
  };
  let fastRun: { result: ReturnType<typeof simulate>; order: string[] };
  try {
    fastRun = ordered(() => simulate(s, { quietSpans: true }));
  } finally {
    Engine.prototype.runParticipant = run;
    Engine.prototype.countDispatched = count;
    GuestKernel.prototype.adjtimex = adjtimex;
  }
  const fast = fastRun.result;
  const firstDiff = fastRun.order.findIndex((x, i) => x !== slowRun.order[i]);
  assert.equal(firstDiff, -1, `${where}: order differs at ${firstDiff}: ${fastRun.order[firstDiff]} ≠ ${slowRun.order[firstDiff]}`);
  assert.equal(fastRun.order.length, slowRun.order.length, `${where}: order length`);
  assert.equal(fast.summary.events_dispatched, slow.summary.events_dispatched, `${where}: events dispatched`);
  assert.equal(json(fast.summary), json(slow.summary), `${where}: summary`);
  assert.equal(timelineCsv(fast.timeline), timelineCsv(slow.timeline), `${where}: timeline CSV`);
  assert.equal(json(fast.timeline), json(slow.timeline), `${where}: timeline JSON`);
  assert.equal(json(fast.series), json(slow.series), `${where}: series`);
  return seen;
}

// The guest's kernel enters 350 ms after boot_at and its 1-s updates fall due 659.322 ms after each whole
// second of boot_at (clocksource_done_booting at 309.322 ms, then one interval): booted at 0.340678 s,
// its updates fall on whole seconds, so every 1-min sample lands on one.
const ALIGNED = 'boot_at: 340678us';

const one = (vm: string, opts: { host?: string; top?: string; duration?: string } = {}) => `
name: samples-in-spans
duration: ${opts.duration ?? '6h'}
${opts.top ?? ''}
hosts:
  - { name: h, tsc: { freq_khz: 2596136 }${opts.host ?? ''} }
vms:
  - { name: v, host: h, ${vm} }
`;

test('samples inside spans: the fleet VM (1-min samples, 64-s NTP polls, a pause), the same bytes', () => {
  const seen = bothWays(one('pauses: [{ at: 2h, duration: 30s }], sync: { method: ntp }'), 'fleet VM');
  // 6 h: 360 samples and ≈ 337 polls; all but those around boot and the pause run inside spans
  assert.ok(seen.inside.length > 600, `${seen.inside.length} participant expiries inside spans`);
});

test('samples landing exactly on an update expiry run before it (armed earlier), the same bytes', () => {
  const seen = bothWays(one(`${ALIGNED}, sync: { method: ntp }`), 'samples on updates');
  const samplesOnUpdates = seen.onUpdate.filter((t) => seen.sampleTimes.has(t));
  assert.ok(samplesOnUpdates.length > 300, `${samplesOnUpdates.length} samples inside spans at an update's time`);
});

test('a sampling interval equal to the update interval: a sample and an update at every second, the same bytes', () => {
  // each sample is re-armed in the update period before the tie it makes with the next update: a span
  // would re-arm that update after it (engine: participantHorizon (b)), so no sample runs inside a span
  // (after the pause the update timer, re-armed for the resume while paused, comes first at each tie)
  const seen = bothWays(
    one(`${ALIGNED}, pauses: [{ at: 5min, duration: 30s }]`, { top: 'sample_interval: 1s', duration: '20min' }),
    'sample every update',
  );
  assert.equal(seen.inside.length, 0);
  // off the updates' and the vCPU entries' grids (these 0.782778789 s and 0.123456789 s past each whole second) they do
  const off = bothWays(one('boot_at: 123456789ns', { top: 'sample_interval: 1s', duration: '20min' }), 'sample every second, off the grid');
  assert.ok(off.inside.length > 1000, `${off.inside.length} inside`);
});

test('a sampling interval that is not a multiple of the update interval (7.3 s, and 2.5 s against 10-s updates), the same bytes', () => {
  const a = bothWays(one(`${ALIGNED}, sync: { method: ntp }`, { top: 'sample_interval: 7300ms', duration: '3h' }), '7.3-s samples');
  assert.ok(a.inside.length > 1000, `${a.inside.length} inside`);
  // every 10th sample (73 s) falls on an update
  assert.ok(a.onUpdate.filter((t) => a.sampleTimes.has(t)).length > 100);
  // booted at 9.340678 s, the 10-s updates fall on multiples of 10 s: every 4th sample
  const b = bothWays(
    one('boot_at: 9340678us, update_interval: 10s, sync: { method: ntp }', { top: 'sample_interval: 2500ms', duration: '3h' }),
    '2.5-s samples, 10-s updates',
  );
  assert.ok(b.inside.length > 1000, `${b.inside.length} inside`);
  assert.ok(b.onUpdate.length > 100, `${b.onUpdate.length} on an update`);
});

test('a sample at the instant a pause starts and one as it ends, the same bytes', () => {
  // the pause at 2 h and its resume at 2 h 1 min fall on samples and updates; the pause, armed at the
  // start, comes first (no row at 2 h: the VM is paused), the resume's row at 2 h 1 min is the sampler's
  const seen = bothWays(one(`${ALIGNED}, pauses: [{ at: 2h, duration: 1min }], sync: { method: ntp }`), 'pause on a sample');
  assert.ok(!seen.sampleTimes.has(7_200_000_000_000n) && seen.sampleTimes.has(7_260_000_000_000n));
  assert.ok(seen.inside.length > 300);
});

test('NTP steps inside spans (1-µs step threshold, 20-ppm crystal), samples on the same instants, the same bytes', () => {
  // polls at 64-s steps from 64 s: boot_at 58.65 s puts ntpd's start (entry + 5 s) on 64 s, so every
  // poll falls on a 64-s sample too, and with a 1-µs threshold nearly every poll steps the clock
  const seen = bothWays(
    one('boot_at: 58650ms, sync: { method: ntp, ntp_step_threshold: 1us }', {
      host: ', oscillator: { ppm: 20 }',
      top: 'sample_interval: 64s',
    }),
    'steps',
  );
  assert.ok(seen.stepsInside.length > 200, `${seen.stepsInside.length} steps inside spans`);
  const stepsOnSamples = seen.stepsInside.filter((t) => seen.sampleTimes.has(t));
  assert.ok(stepsOnSamples.length > 200, `${stepsOnSamples.length} steps at a sample's time`);
});

test('NTP against a server over a jittery, lossy path: polls inside spans draw the same random numbers, the same bytes', () => {
  const seen = bothWays(
    one('pauses: [{ at: 1h, duration: 10s }], sync: { method: ntp, servers: [s] }', {
      top: 'ntp_servers:\n  - { name: s, path: { delay: 2ms, jitter: 300us, loss: 0.1 } }',
    }),
    'NTP server path',
  );
  assert.ok(seen.inside.length > 500);
});

test('two VMs on one host: the sampler samples both, the same bytes', () => {
  // the other VM's updates end each span within a second; samples still run inside the ones they fall in
  bothWays(
    `
name: two
duration: 1h
hosts:
  - { name: h, tsc: { freq_khz: 2596136 } }
vms:
  - { name: a, host: h, sync: { method: ntp } }
  - { name: b, host: h, boot_at: 10min, update_interval: 10s, sync: { method: ntp } }
`,
    'two VMs',
  );
});

test("another VM's NTP poll while that VM's vCPU thread waits is not run inside a span (it re-arms for the vCPU's next run), the same bytes", () => {
  // b's vCPU threads run 3 s of every 7 s: a poll that falls while they wait moves to their next run, so
  // it cannot say its next expiry and ends a's span instead
  bothWays(
    `
name: two
duration: 2h
hosts:
  - { name: h, tsc: { freq_khz: 2596136 } }
  - { name: h2, tsc: { freq_khz: 2596136 } }
vms:
  - { name: a, host: h, sync: { method: ntp } }
  - { name: b, host: h2, boot_at: 1s, update_interval: 10s, deschedule: { period: 7s, run: 3s }, sync: { method: ntp } }
`,
    'a descheduled VM beside',
  );
});

test('a quiet participant whose callback does not re-arm it exactly as it said is refused (EngineError)', () => {
  const e = new Engine();
  let period = 10n;
  const p = e.timer(() => p.armIn(period));
  e.quietParticipant(p, (at) => at + 10n);
  p.armAt(5n);
  // a model's span at 0: the participant at 5 runs inside it
  const span = e.timer(() => {
    e.advanceTo(5n);
    e.runParticipant(p);
    assert.equal(p.expires, 15n);
    period = 7n; // now its re-arm differs from what it declared
    e.advanceTo(15n);
    assert.throws(() => e.runParticipant(p), /armed other than its own next expiry 25/);
  });
  span.armAt(0n);
  e.run(100n);
  // arming another timer from inside is refused as well
  const e2 = new Engine();
  const other = e2.timer(() => {});
  const q = e2.timer(() => other.armIn(1n));
  e2.quietParticipant(q, () => null);
  q.armAt(3n);
  const s2 = e2.timer(() => {
    e2.advanceTo(3n);
    assert.throws(() => e2.runParticipant(q), /armed other than/);
  });
  s2.armAt(0n);
  e2.run(10n);
});

test('a quiet participant may arm the participants it names (alsoArms), once each; others are refused', () => {
  const e = new Engine();
  const log: string[] = [];
  const work = e.timer(() => log.push(`work ${e.now}`));
  const sync = e.timer(() => {
    log.push(`sync ${e.now}`);
    if (!work.pending) work.armIn(0n);
    sync.armIn(10n);
  });
  e.quietParticipant(work, () => null);
  e.quietParticipant(sync, (at) => at + 10n, [work]);
  sync.armAt(5n);
  const span = e.timer(() => {
    // the model's span: it runs whatever participant falls due before 30, in order
    for (let p = e.quietParticipantDue(30n); p !== null; p = e.quietParticipantDue(30n)) {
      e.advanceTo(p.at);
      e.runParticipant(p.timer);
    }
  });
  span.armAt(0n);
  e.run(29n);
  assert.deepEqual(log, ['sync 5', 'work 5', 'sync 15', 'work 15', 'sync 25', 'work 25']);
  assert.equal(sync.expires, 35n);
  assert.equal(e.eventsDispatched, 7);
  // naming a timer that is not a participant (registered before) is refused
  const e2 = new Engine();
  const t = e2.timer(() => {});
  assert.throws(
    () =>
      e2.quietParticipant(
        e2.timer(() => {}),
        () => null,
        [t],
      ),
    /may only arm quiet participants/,
  );
  // arming a named participant twice is refused
  const e3 = new Engine();
  const w3 = e3.timer(() => {});
  const s3 = e3.timer(() => {
    w3.armIn(1n);
    w3.armIn(2n);
  });
  e3.quietParticipant(w3, () => null);
  e3.quietParticipant(s3, () => null, [w3]);
  s3.armAt(3n);
  const span3 = e3.timer(() => {
    e3.advanceTo(3n);
    assert.throws(() => e3.runParticipant(s3), /armed other than/);
  });
  span3.armAt(0n);
  e3.run(10n);
});
