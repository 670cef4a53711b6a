import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/core/prng.ts';

// Reference: xoshiro128** 1.1 step written out independently with plain 32-bit arithmetic.
function referenceXoshiro(state: [number, number, number, number], n: number): number[] {
  let [a, b, c, d] = state;
  const out: number[] = [];
  const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  for (let i = 0; i < n; i++) {
    out.push(Number((BigInt(rotl(Number((BigInt(b) * 5n) & 0xffffffffn), 7)) * 9n) & 0xffffffffn));
    const t = (b << 9) >>> 0;
    c = (c ^ a) >>> 0;
    d = (d ^ b) >>> 0;
    b = (b ^ c) >>> 0;
    a = (a ^ d) >>> 0;
    c = (c ^ t) >>> 0;
    d = rotl(d, 11);
  }
  return out;
}

// SplitMix32 seeding, written out: state s += 0x9e3779b9; z = mix(s)
function referenceSeed(seed: number): [number, number, number, number] {
  const st: number[] = [];
  let s = seed;
  for (let i = 0; i < 4; i++) {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Number((BigInt((z ^ (z >>> 16)) >>> 0) * 0x85ebca6bn) & 0xffffffffn);
    z = Number((BigInt((z ^ (z >>> 13)) >>> 0) * 0xc2b2ae35n) & 0xffffffffn);
    st.push((z ^ (z >>> 16)) >>> 0);
  }
  return st as [number, number, number, number];
}

test('the generator is xoshiro128** seeded by SplitMix32 as documented', () => {
  const p = new Prng(12345);
  const expected = referenceXoshiro(referenceSeed(12345), 8);
  assert.deepEqual(
    Array.from({ length: 8 }, () => p.nextU32()),
    expected,
  );
});

test('same seed gives the same stream; different seeds and forks differ', () => {
  const a = new Prng(7);
  const b = new Prng(7);
  const xs = Array.from({ length: 100 }, () => a.float());
  assert.deepEqual(
    xs,
    Array.from({ length: 100 }, () => b.float()),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.notDeepEqual(new Prng(8).float(), new Prng(7).float());
  // a fork does not depend on draws made on its parent
  const p1 = new Prng(99);
  const f1 = p1.fork('host0').float();
  const p2 = new Prng(99);
  p2.float();
  p2.float();
  assert.equal(p2.fork('host0').float(), f1);
  assert.notEqual(new Prng(99).fork('host1').float(), f1);
});

test('normal() is Box–Muller (cos branch) on two float() draws, with the requested mean and deviation', () => {
  // The first samples, by hand from the reference stream: float() = ((a >>> 5) × 2^26 + (b >>> 6)) / 2^53 and
  // normal(μ, σ) = μ + σ √(−2 ln u) cos(2π v) on two consecutive floats.
  const out = referenceXoshiro(referenceSeed(2024), 8);
  const float = (i: number) => ((out[i]! >>> 5) * 2 ** 26 + (out[i + 1]! >>> 6)) / 2 ** 53;
  const bm = (u: number, v: number) => 5 + 2 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  const q = new Prng(2024);
  assert.equal(q.normal(5, 2), bm(float(0), float(2)));
  assert.equal(q.normal(5, 2), bm(float(4), float(6)));
  const p = new Prng(2024);
  const n = 20000;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const x = p.normal(5, 2);
    sum += x;
    sq += x * x;
  }
  const mean = sum / n;
  const sd = Math.sqrt(sq / n - mean * mean);
  // Sampling statistics, not a model result: 4 standard errors (σ/√n = 0.0141 for the mean, σ/√(2n) = 0.0100 for
  // the deviation), which a correct normal() on a good stream exceeds with probability 6e-5.
  assert.ok(Math.abs(mean - 5) < 4 * (2 / Math.sqrt(n)), `mean ${mean}`);
  assert.ok(Math.abs(sd - 2) < 4 * (2 / Math.sqrt(2 * n)), `sd ${sd}`);
});
