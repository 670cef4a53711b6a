// regress.c: weighted regression and the runs test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findBestRegression, median, tCoef } from '../../../src/guest/chrony/index.ts';

test('a straight line is recovered exactly (intercept at the newest sample, slope = frequency)', () => {
  const x = [-40, -30, -20, -10, 0];
  const y = x.map((t) => 0.001 + 2e-6 * t);
  const r = findBestRegression(x, y, [1, 1, 1, 1, 1], 1)!;
  assert.ok(Math.abs(r.b0 - 0.001) < 1e-15 && Math.abs(r.b1 - 2e-6) < 1e-17);
  assert.equal(r.start, 0);
  assert.equal(r.dof, 3);
});

test('fewer than 3 samples: no regression (MIN_SAMPLES_FOR_REGRESS)', () => {
  assert.equal(findBestRegression([-1, 0], [0, 0], [1, 1], 1), null);
});

test('the runs test drops old samples from before a change of offset', () => {
  // 10 samples at 0 then 10 at 1 ms: the residuals of one line form too few runs, so old samples go
  const x = Array.from({ length: 20 }, (_, i) => i - 19);
  const y = x.map((_t, i) => (i < 10 ? 0 : 0.001) + (i % 2 ? 1e-7 : -1e-7));
  const r = findBestRegression(x, y, Array(20).fill(1), 1)!;
  assert.ok(r.start >= 9, `start ${r.start}`);
  assert.ok(Math.abs(r.b0 - 0.001) < 1e-6);
});

test('t coefficients and median as regress.c', () => {
  assert.equal(tCoef(1), Math.fround(636.6));
  assert.equal(tCoef(41), 3.5);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});
