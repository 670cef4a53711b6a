// Seeded pseudo-random numbers, identical on every machine.
//
// Algorithm (documented so results can be reproduced anywhere):
//   - seeding: SplitMix32 (Mulberry-style mixing of a 32-bit Weyl sequence, increment 0x9e3779b9) run
//     four times from the seed gives the 128-bit state; an all-zero state is impossible by construction
//     of the mix, and guarded anyway.
//   - generator: xoshiro128** 1.1 (Blackman & Vigna): 32-bit outputs from 128 bits of state, using only
//     32-bit integer operations (Math.imul, shifts), which JavaScript defines exactly.
//   - float(): 53-bit doubles in [0, 1) from two outputs ((a >>> 5) * 2^26 + (b >>> 6)) / 2^53.
//   - normal(): Box–Muller on two float() draws, cos branch only (one draw pair per sample), so the
//     sequence does not depend on a cached spare value.
// Streams for independent components come from fork(label): a new generator seeded from this one's
// seed and a 32-bit FNV-1a hash of the label, so adding a component does not shift others' draws.

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function fnv1a(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  readonly seed: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    this.seed = seed >>> 0;
    const st = { s: this.seed };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Next 32-bit unsigned integer (xoshiro128**). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Normal deviate (Box–Muller, cos branch). */
  normal(mean = 0, sigma = 1): number {
    let u = this.float();
    if (u === 0) u = Number.MIN_VALUE;
    const v = this.float();
    return mean + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Exponential deviate with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.float());
  }

  /** An independent stream named by `label`, reproducible regardless of draws made on this one. */
  fork(label: string): Prng {
    return new Prng((Math.imul(this.seed ^ 0x5bd1e995, 0x01000193) ^ fnv1a(label)) >>> 0);
  }
}
