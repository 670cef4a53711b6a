// ilog2 (src/guest/timekeeper.ts), which sizes timekeeping_advance's logarithmic accumulation steps: exact
// against the bit length of the number, around every power of two up to 2^64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ilog2 } from '../../src/guest/timekeeper.ts';

test('ilog2 is the index of the highest set bit (−1 for 0), for 2^k − 1, 2^k and 2^k + 1 up to 2^64', () => {
  assert.equal(ilog2(0n), -1);
  assert.equal(ilog2(-5n), -1);
  for (let k = 0; k <= 64; k++) {
    const p = 1n << BigInt(k);
    for (const x of [p - 1n, p, p + 1n, p + p / 3n]) {
      if (x <= 0n) continue;
      assert.equal(ilog2(x), x.toString(2).length - 1, `x = ${x}`);
    }
  }
});
