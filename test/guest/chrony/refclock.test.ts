// chrony's refclock pieces: samplefilt.c's median filter and the refclock reference ID (refclock.c).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Chronyd, chi2Coef, type PhcDevice, refclockRefId, SampleFilter } from '../../../src/guest/chrony/index.ts';
import { EPOCH, guestClock } from './helpers.ts';

const sample = (i: number, offset: number, disp = 1e-8) => ({
  time: BigInt(i) * 1_000_000_000n,
  offset,
  peerDelay: 1e-9,
  rootDelay: 1e-9,
  peerDispersion: disp,
  rootDispersion: disp,
});

test('refclock IDs: "%3.3s" of the driver and the index digits (PHC0, PHC1, PH12)', () => {
  assert.equal(refclockRefId('PHC', 0), 'PHC0');
  assert.equal(refclockRefId('PHC', 1), 'PHC1');
  assert.equal(refclockRefId('PHC', 12), 'PH12');
});

test('the filter combines the 60 % of a poll’s samples closest to the median: 16 samples keep the middle 10, offset = their mean', () => {
  const f = new SampleFilter(1, 64, 0, 0.6, 2 ** -25);
  // offsets 0..15 µs in a shuffled time order; from = trunc(16·0.4/2) = 3 → offsets 3..12 µs kept
  const offsets = [7, 0, 15, 3, 12, 9, 1, 14, 5, 11, 2, 13, 6, 10, 4, 8];
  offsets.forEach((o, i) => assert.equal(f.accumulate(sample(i, o * 1e-6)), true));
  const r = f.filtered()!;
  assert.ok(Math.abs(r.offset - 7.5e-6) < 1e-18, String(r.offset));
  // the result's time is the mean time of the kept samples (indices of offsets 3..12)
  const kept = offsets.map((o, i) => [o, i] as const).filter(([o]) => o >= 3 && o <= 12);
  const meanT = kept.reduce((a, [, i]) => a + i, 0) / kept.length;
  assert.equal(r.time, BigInt(Math.round(meanT * 1e9)));
  let sumDelay = 0;
  for (let i = 0; i < 10; i++) sumDelay += 1e-9; // the mean as samplefilt.c sums it
  assert.equal(r.peerDelay, sumDelay / 10);
  assert.equal(f.used, 0); // dropped after each poll
  assert.equal(f.filtered(), null); // nothing left for the next one
});

test('sample times must increase; a single sample is taken as it is, with the average variance as dispersion floor', () => {
  const f = new SampleFilter(1, 64, 0, 0.6, 2 ** -25);
  assert.equal(f.accumulate(sample(5, 1e-6)), true);
  assert.equal(f.accumulate(sample(5, 2e-6)), false); // "filter non-increasing sample time"
  const r = f.filtered()!;
  assert.equal(r.offset, 1e-6);
  assert.equal(r.peerDispersion, Math.max(2 ** -25, 1e-8));
  assert.equal(chi2Coef(1), Math.fround(2.706));
  assert.equal(chi2Coef(70), 84);
});

/** A PHC at true UTC read by exact pairs (PTP_SYS_OFFSET_PRECISE), or, with `precise: false`, only by PTP_SYS_OFFSET. */
function fakePhc(g: ReturnType<typeof guestClock>, precise: boolean) {
  const calls = { precise: 0, extended: 0, plain: 0 };
  const dev: PhcDevice = {
    sysOffsetPrecise: () => {
      calls.precise++;
      if (!precise) return 'ENODEV';
      const sys = g.readRaw();
      return [sys, EPOCH + g.engine.now, sys];
    },
    sysOffsetExtended: () => {
      calls.extended++;
      return 'EOPNOTSUPP';
    },
    sysOffset: (n) => {
      calls.plain++;
      const sys = g.readRaw();
      return Array.from({ length: n }, () => [sys - 1000n, EPOCH + g.engine.now - 400n, sys] as [bigint, bigint, bigint]);
    },
  };
  return { dev, calls };
}

test('refclock PHC with the defaults (poll 4, dpoll 0): reads every 1 s from start, a filtered sample every 16th read, the first update at the third (a regression needs 3), PHC0 at stratum 1', () => {
  const g = guestClock({ offsetNs: -2_000_000n }); // 2 ms slow
  const { dev, calls } = fakePhc(g, true);
  const c = new Chronyd({
    scheduler: g.engine,
    adjtimex: g.adjtimex,
    readRaw: g.readRaw,
    servers: [],
    refclocks: [{ phc: dev, options: { device: '/dev/ptp0' } }],
  });
  c.start();
  g.engine.run(46_500_000_000n);
  const rc = c.refclocks[0]!;
  // RCL_StartRefclocks: the first poll at once, then every 2^dpoll = 1 s
  assert.deepEqual(
    rc.driverPolls,
    Array.from({ length: 47 }, (_, i) => BigInt(i) * 1_000_000_000n),
  );
  assert.equal(rc.mode, 2); // PTP_SYS_OFFSET_PRECISE worked first and is kept
  assert.deepEqual(calls, { precise: 47, extended: 0, plain: 0 });
  // filtered samples at the 16th and 32nd reads (15 s, 31 s); sourcestats has no regression yet: no update
  assert.equal(rc.samples, 2);
  assert.equal(c.reference.updates, 0);
  g.engine.run(47_500_000_000n);
  assert.equal(rc.samples, 3);
  assert.equal(c.reference.updates, 1);
  const t = c.tracking();
  assert.equal(t.referenceId, 'PHC0');
  assert.equal(t.stratum, 1);
  // the guest is 2 ms slow: local-fast-positive offset −0.002 s (the mean of ten equal samples)
  assert.ok(Math.abs(t.lastOffset + 0.002) < 1e-15, String(t.lastOffset));
  assert.equal(c.adjustments[0]!.sinceStart, 47);
});

test('on a PHC without cross timestamps chronyd falls back to PTP_SYS_OFFSET and keeps it; the reading’s middle is its local time', () => {
  const g = guestClock();
  const { dev, calls } = fakePhc(g, false);
  const c = new Chronyd({
    scheduler: g.engine,
    adjtimex: g.adjtimex,
    readRaw: g.readRaw,
    servers: [],
    refclocks: [{ phc: dev, options: { device: '/dev/ptp0', poll: 2, dpoll: 0 } }],
  });
  c.start();
  g.engine.run(11_500_000_000n); // filtered samples at 3, 7 and 11 s: the first update
  assert.equal(c.refclocks[0]!.mode, 1);
  assert.equal(c.reference.updates, 1);
  // the first read tries PRECISE, then EXTENDED, then PTP_SYS_OFFSET; later reads go straight to it
  assert.deepEqual(calls, { precise: 1, extended: 1, plain: 12 });
  // readings [sys − 1000, utc − 400, sys]: middle sys − 500, so the PHC looks 100 ns ahead of a correct clock
  assert.ok(Math.abs(c.tracking().lastOffset + 100e-9) < 1e-15, String(c.tracking().lastOffset));
});

test('the reading mode is latched (sys_linux.c): a PHC whose cross timestamp later fails gives chronyd no readings at all, and its reach drains', () => {
  const g = guestClock();
  let preciseOk = true;
  const { dev, calls } = fakePhc(g, true);
  const precise = dev.sysOffsetPrecise;
  dev.sysOffsetPrecise = () => (preciseOk ? precise() : 'ENODEV');
  const c = new Chronyd({
    scheduler: g.engine,
    adjtimex: g.adjtimex,
    readRaw: g.readRaw,
    servers: [],
    refclocks: [{ phc: dev, options: { device: '/dev/ptp0', poll: 0, dpoll: 0 } }],
  });
  c.start();
  g.engine.run(4_500_000_000n); // reads at 0..4 s, each its own poll
  const rc = c.refclocks[0]!;
  assert.equal(rc.reachability, 0b11111);
  preciseOk = false; // e.g. the guest switched from kvm-clock to tsc
  g.engine.run(12_500_000_000n); // 8 more polls
  assert.equal(rc.mode, 2);
  assert.equal(calls.plain, 0); // never falls back once PRECISE has worked
  assert.equal(rc.samples, 5);
  assert.equal(rc.reachability, 0); // the register shifted in 8 misses
  assert.equal(rc.reachable, false);
});

test('across a stop the next read is due on chronyd’s own clock: a clock that ran on through a 10 s stop polls at once on resume', () => {
  const g = guestClock();
  const { dev } = fakePhc(g, true);
  const c = new Chronyd({
    scheduler: g.engine,
    adjtimex: g.adjtimex,
    readRaw: g.readRaw,
    servers: [],
    refclocks: [{ phc: dev, options: { device: '/dev/ptp0' } }],
  });
  c.start();
  g.engine.run(2_500_000_000n);
  c.stop();
  g.engine.run(12_500_000_000n); // the guest clock (like tsc through a QEMU pause) ran on
  c.resume();
  g.engine.run(14_000_000_000n);
  assert.deepEqual(c.refclocks[0]!.driverPolls, [0n, 1_000_000_000n, 2_000_000_000n, 12_500_000_000n, 13_500_000_000n]);
});
