import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tscCyclesAt } from '../../src/core/oscillator.ts';
import { Prng } from '../../src/core/prng.ts';

test('tscCyclesAt counts phase · kHz / 10^6 truncated, as the one product would, for any phase and rate', () => {
  const prng = new Prng(3);
  const CENTURY = 100n * 365n * 86_400n * 1_000_000_000n;
  const rates = [1000n, 2_596_136n, 3_000_000n, 2_096_007n, 100_000_000n];
  for (const khz of rates) {
    // around whole ms (where the split meets), at 0, negative phases, and a century
    const phases = [0n, 1n, 999_999n, 1_000_000n, 1_000_001n, -1n, -999_999n, -1_000_000n, -1_000_001n, CENTURY, -CENTURY];
    for (let i = 0; i < 2000; i++) {
      const p = BigInt(Math.floor(prng.float() * 2 ** 52)) * BigInt(1 + prng.int(2000));
      phases.push(p, -p, (p / 1_000_000n) * 1_000_000n, (p / 1_000_000n) * 1_000_000n - 1n);
    }
    for (const p of phases) assert.equal(tscCyclesAt(p, khz), (p * khz) / 1_000_000n, `phase ${p} at ${khz} kHz`);
  }
});
