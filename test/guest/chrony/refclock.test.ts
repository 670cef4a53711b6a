// chrony's refclock pieces: samplefilt.c's median filter and the refclock reference ID (refclock.c).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chi2Coef, refclockRefId, SampleFilter } from '../../../src/guest/chrony/index.ts';

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
