import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatenessHistogram, MAX_DISTINCT } from '../../src/devices/index.ts';

test('nearest-rank percentiles: the smallest value with at least ceil(p/100·n) values ≤ it; merge sums counts', () => {
  const a = new LatenessHistogram();
  const b = new LatenessHistogram();
  assert.equal(a.percentile(50), 0n);
  for (let i = 1n; i <= 60n; i++) a.record(i);
  for (let i = 61n; i <= 100n; i++) b.record(i);
  a.merge(b);
  assert.equal(a.count, 100);
  assert.deepEqual([a.percentile(50), a.percentile(90), a.percentile(99), a.percentile(100), a.max], [50n, 90n, 99n, 100n, 100n]);
  assert.equal(a.exact, true);
  const odd = new LatenessHistogram();
  for (let i = 1n; i <= 7n; i++) odd.record(i);
  assert.deepEqual([odd.percentile(50), odd.percentile(90)], [4n, 7n]);
});

test('past MAX_DISTINCT distinct values a new value counts in its log2 bucket (rounded down); max stays exact', () => {
  const h = new LatenessHistogram();
  for (let i = 0; i < MAX_DISTINCT; i++) h.record(BigInt(i));
  h.record(5000n);
  h.record(5000n);
  assert.equal(h.exact, false);
  assert.equal(h.max, 5000n);
  assert.equal(h.percentile(100), 4096n);
});
