// chronyd's documented numbers: iburst's spacing, makestep, the 83,333 ppm maximum slew rate through
// adjtimex tick + freq, frequency tracking, poll adaptation, rtcsync.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NSEC_PER_SEC } from '../../../src/core/time.ts';
import { Chronyd, DEFAULT_MAX_SLEW_RATE_PPM } from '../../../src/guest/chrony/index.ts';
import { fixedServer, guestClock } from './helpers.ts';

const S = NSEC_PER_SEC;
const at = (s: number) => BigInt(Math.round(s * 1e9));

function run(o: {
  offsetNs?: bigint;
  ppm?: number;
  iburst?: boolean;
  makestep?: { threshold: number; limit: number } | null;
  maxpoll?: number;
  minpoll?: number;
  rtcsync?: boolean;
  lose?: (n: number) => boolean;
}) {
  const g = guestClock({ ...(o.offsetNs !== undefined ? { offsetNs: o.offsetNs } : {}), ...(o.ppm !== undefined ? { ppm: o.ppm } : {}) });
  const server = fixedServer(g.engine, 'ntp1', 1_000_000n, o.lose);
  const c = new Chronyd({
    scheduler: g.engine,
    adjtimex: g.adjtimex,
    readRaw: g.readRaw,
    servers: [server],
    iburst: o.iburst ?? true,
    makestep: o.makestep ?? null,
    ...(o.maxpoll !== undefined ? { maxpoll: o.maxpoll } : {}),
    ...(o.minpoll !== undefined ? { minpoll: o.minpoll } : {}),
    ...(o.rtcsync !== undefined ? { rtcsync: o.rtcsync } : {}),
  });
  c.start();
  return { g, c, server };
}

test('maxslewrate default is 1e6/12 ppm (conf.c) and chronyd slews +0.5 s at exactly that rate through tick 9167 + timex freq', () => {
  assert.equal(DEFAULT_MAX_SLEW_RATE_PPM, 83333.33333333333);
  const { g, c } = run({ offsetNs: 500_000_000n });
  g.engine.run(at(5));
  // sys_linux.c set_frequency: round(83333.333/100) = 833 ticks of 100 ppm, the rest −33.333 ppm in freq (ppm << 16)
  assert.equal(c.local.lastTick, 10000 - 833);
  assert.equal(c.local.lastTimexFreq, Math.trunc(-(DEFAULT_MAX_SLEW_RATE_PPM - 83300) * 65536));
  const before = g.offset();
  g.engine.run(at(6));
  const slewed = before - g.offset();
  // one second at 83,333.333 ppm; tick/freq quantization (1/65536 ppm) and the timekeeper's ±1 mult
  // feedback leave a few ns
  assert.ok(slewed > 83_333_233n && slewed < 83_333_433n, `slewed ${slewed} ns in 1 s`);
  // 0.5 s / 83,333 ppm = 6 s after the first update at 4.202 s: under 1 ms by 10.3 s
  g.engine.run(at(10.3));
  assert.ok(g.offset() < 1_000_000n && g.offset() > -1_000_000n, `offset ${g.offset()}`);
  assert.equal(c.adjustments.filter((a) => a.kind === 'step').length, 0);
});

test('iburst: 4 good samples 2 s apart (MAX_BURST_INTERVAL), the first 0.2 s after start (INITIAL_DELAY), then one poll (2^6 s)', () => {
  const { g, c } = run({});
  // each interval runs from the reply (2 ms round trip): in client mode get_transmit_delay does not
  // subtract the time since the request (chrony 4.3 ntp_core.c). No reference update before the
  // regression has 3 samples (MIN_SAMPLES_FOR_REGRESS): the third reply, at 4.206 s
  g.engine.run(at(4.2059));
  assert.equal(c.reference.updates, 0);
  g.engine.run(at(4.2061));
  assert.equal(c.reference.updates, 1);
  g.engine.run(at(100));
  assert.deepEqual(c.sources[0]!.transmits, [at(0.2), at(2.202), at(4.204), at(6.206), at(70.208)]);
});

test('without iburst the second request waits a whole minpoll interval after the first reply', () => {
  const { g, c } = run({ iburst: false });
  g.engine.run(at(130));
  assert.deepEqual(c.sources[0]!.transmits, [at(0.2), at(64.202), at(128.204)]);
});

test('iburst counts lost replies against its 8 total samples; the burst ends after 8 requests', () => {
  const { g, c } = run({ lose: () => true });
  g.engine.run(at(60));
  const tx = c.sources[0]!.transmits;
  assert.deepEqual(tx.slice(0, 8), [0.2, 2.2, 4.2, 6.2, 8.2, 10.2, 12.2, 14.2].map(at));
  assert.equal(tx.length, 8); // then online: next after one poll interval (longer, as unanswered requests back the poll off)
  assert.equal(c.sources[0]!.reachable, false);
});

test('makestep 1 3: +60 s is stepped at the first clock update (ADJ_SETOFFSET)', () => {
  const { g, c } = run({ offsetNs: 60n * S, makestep: { threshold: 1, limit: 3 } });
  g.engine.run(at(4.1));
  assert.equal(g.offset(), 60n * S);
  g.engine.run(at(4.3));
  const steps = c.adjustments.filter((a) => a.kind === 'step');
  assert.equal(steps.length, 1);
  assert.ok(Math.abs(steps[0]!.offset - 60) < 1e-6);
  assert.ok(g.offset() < 1000n && g.offset() > -1000n, `offset after step ${g.offset()} ns`);
});

test('makestep 1 3: after three updates a 2 s error is slewed, not stepped; limit -1 steps it', () => {
  for (const [limit, steps] of [
    [3, 0],
    [-1, 1],
  ] as const) {
    const { g, c } = run({ makestep: { threshold: 1, limit } });
    g.engine.run(at(100)); // updates at 4.2, 6.2 and 70.2 s
    assert.equal(c.reference.updates, 3);
    g.tk.injectOffset(2n * S);
    g.engine.run(at(140));
    assert.equal(c.adjustments.filter((a) => a.kind === 'step').length, steps, `limit ${limit}`);
  }
});

test('without makestep +60 s is slewed at 83,333 ppm: 720 s', () => {
  const { g } = run({ offsetNs: 60n * S });
  g.engine.run(at(600));
  assert.ok(g.offset() > 8n * S, `offset at 600 s ${g.offset()}`); // 60 − 595.8 s × 0.0833 = 10.35 s left
  g.engine.run(at(730));
  assert.ok(g.offset() < 1_000_000n && g.offset() > -1_000_000n, `offset at 730 s ${g.offset()}`);
});

test('frequency tracking: a clock 50 ppm fast ends with chronyd compensating 50 ppm ("50.000 ppm fast")', () => {
  const { g, c } = run({ ppm: 50 });
  g.engine.run(at(3000));
  const t = c.tracking();
  assert.ok(Math.abs(t.frequencyPpm - 50) < 0.05, `frequency ${t.frequencyPpm}`);
  assert.ok(g.offset() < 10_000n && g.offset() > -10_000n, `offset ${g.offset()}`);
  assert.equal(t.stratum, 2);
  assert.equal(t.referenceId, 'ntp1');
});

test('poll interval adapts upward from minpoll on a quiet path and never passes maxpoll', () => {
  const { g, c } = run({ maxpoll: 7 });
  g.engine.run(at(8 * 3600));
  assert.equal(c.sources[0]!.localPoll, 7);
  const gaps = c.sources[0]!.transmits.slice(-3);
  assert.equal(gaps[2]! - gaps[1]!, 128n * S + 2_000_000n); // 2^7 s from the reply, 2 ms after the request
});

test('rtcsync: chronyd clears STA_UNSYNC (kernel 11-minute mode) only with rtcsync', () => {
  for (const rtcsync of [false, true]) {
    const { g, c } = run({ rtcsync });
    g.engine.run(at(10));
    assert.equal(c.local.kernelSynced, rtcsync);
    assert.equal((g.tk.adjtimex({ modes: 0 }).status & 0x40) === 0, rtcsync);
  }
});

test('the same run twice gives the same tracking figures', () => {
  const a = run({ offsetNs: 500_000_000n, ppm: 20 });
  const b = run({ offsetNs: 500_000_000n, ppm: 20 });
  a.g.engine.run(at(1000));
  b.g.engine.run(at(1000));
  assert.deepEqual(a.c.tracking(), b.c.tracking());
});
