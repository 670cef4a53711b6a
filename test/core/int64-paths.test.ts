// The int64 fast paths (BigInt.asIntN/asUintN(64, …) arithmetic V8 runs without allocating) against plain
// BigInt references written from the definitions, over the edges where a split, a wrap or a bound could
// go wrong: 32-bit halves, the 2^62/2^63/2^64 boundaries, tsc_shift of both signs and beyond ±63.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Oscillator, TscCounter } from '../../src/core/oscillator.ts';
import { Prng } from '../../src/core/prng.ts';
import {
  encodePvclock,
  PvclockScaler,
  pvclockReadCycles,
  pvclockReadCyclesWords,
  type PvclockVcpuTimeInfo,
  ramWords,
} from '../../src/core/pvclock-abi.ts';

const U64 = (1n << 64n) - 1n;
const P32 = 1n << 32n;
const P62 = 1n << 62n;
const P63 = 1n << 63n;

/** A random u64 (two 32-bit draws), biased towards both ends of the range by the caller's edges. */
function randU64(prng: Prng): bigint {
  return (BigInt(prng.nextU32()) << 32n) | BigInt(prng.nextU32());
}

/** The oscillator as src/core/oscillator.ts defines its phase, in plain BigInt: no int64 path. */
class ReferenceOscillator {
  private segStart = 0n;
  private segPhase = 0n;
  private rateFrac: bigint;
  constructor(ppm: number) {
    this.rateFrac = ReferenceOscillator.frac(ppm);
  }
  static frac(ppm: number): bigint {
    return BigInt(Math.round(ppm * 1e-6 * 2 ** 64));
  }
  phaseAt(t: bigint): bigint {
    const d = t - this.segStart;
    return this.segPhase + d + ((d * this.rateFrac + (1n << 63n)) >> 64n);
  }
  setPpmAt(t: bigint, ppm: number): void {
    this.segPhase = this.phaseAt(t);
    this.segStart = t;
    this.rateFrac = ReferenceOscillator.frac(ppm);
  }
}

test('Oscillator.phaseAt equals the plain 128-bit rounding for every rate and time, across 32-bit halves and the 2^62 bound', () => {
  const prng = new Prng(62);
  // ±250000 ppm is |rateFrac| = 2^62, where the int64 path stops; 0 and tiny rates where only the rounding moves
  const ppms = [0, 7.3, -12.5, 1000, -1000, 1e-9, -1e-9, 0.5, 249_999.9, -249_999.9, 250_000, -250_000, 250_001, -300_000];
  const edges = [0n, 1n, P32 - 1n, P32, P32 + 1n, 86_400n * 10n ** 9n, 365n * 86_400n * 10n ** 9n, P62 - 1n, P62, P62 + 1n, P63, P63 + P32];
  for (const ppm of ppms) {
    const osc = new Oscillator({ ppm });
    const ref = new ReferenceOscillator(ppm);
    const times = [...edges];
    for (let i = 0; i < 300; i++) times.push(randU64(prng) >> BigInt(2 + prng.int(40)));
    for (const t of times) assert.equal(osc.phaseAt(t), ref.phaseAt(t), `ppm ${ppm} at t ${t}`);
  }
});

test('Oscillator.phaseAt rounds exact halves up, as (d·rate + 2^63) >> 64 does, for rates of ±2^40 (d·rate a multiple of 2^63)', () => {
  const ppm = 1e6 / 2 ** 24; // rateFrac 2^40: d = k·2^23 puts d·rateFrac exactly on a half (k odd) or a whole ns (k even)
  assert.equal(ReferenceOscillator.frac(ppm), 1n << 40n);
  for (const sign of [1, -1]) {
    const osc = new Oscillator({ ppm: sign * ppm });
    const ref = new ReferenceOscillator(sign * ppm);
    for (let k = 1n; k <= 64n; k++) {
      for (const t of [k << 23n, (k << 23n) + 1n, (k << 23n) - 1n, (k << 23n) + P32 * (1n << 23n)]) {
        assert.equal(osc.phaseAt(t), ref.phaseAt(t), `rate ${sign}·2^40 at t ${t}`);
      }
    }
  }
});

test('Oscillator.phaseAt stays exact across rate changes: segments far from 0, a time before the segment, a segment past 2^62', () => {
  const prng = new Prng(7);
  const osc = new Oscillator({ ppm: 3.25 });
  const ref = new ReferenceOscillator(3.25);
  let t = 0n;
  const starts = [P32 - 1n, 10n ** 15n, P62 - 5n, P62 + 3n, P63];
  for (const [k, start] of starts.entries()) {
    const ppm = prng.normal(0, 200) * (k % 2 ? 1 : -1);
    t = start;
    osc.setPpmAt(t, ppm);
    ref.setPpmAt(t, ppm);
    for (const dt of [0n, 1n, P32 - 1n, P32, 1_000_000_007n, -1n, -P32]) {
      assert.equal(osc.phaseAt(t + dt), ref.phaseAt(t + dt), `segment at ${start}, ppm ${ppm}, t + ${dt}`);
    }
  }
});

test('TscCounter.cyclesAt equals phase · kHz / 10^6 truncated, on both sides of its int64 bound', () => {
  const prng = new Prng(15);
  for (const khz of [1n, 999n, 2_596_136n, 3_000_000n, 100_000_000n, 1n << 40n]) {
    const c = new TscCounter(khz);
    const bound = (((1n << 63n) - 1n) / khz) * 1_000_000n; // where ms·kHz would pass 2^63
    const phases = [0n, 1n, 999_999n, 1_000_000n, -1n, -1_000_001n, bound - 1n, bound, bound + 1n, bound - 1_000_000n, P63, P63 * 4n];
    for (let i = 0; i < 500; i++) phases.push(randU64(prng) >> BigInt(prng.int(40)));
    for (const p of phases) assert.equal(c.cyclesAt(p), (p * khz) / 1_000_000n, `phase ${p} at ${khz} kHz`);
  }
});

/** pvclock_scale_delta as arch/x86/include/asm/pvclock.h writes it: shift the u64 first, then (d · mul) >> 32 through 128 bits. */
function refScaleDelta(delta: bigint, mul: number, shift: number): bigint {
  let d = delta & U64;
  if (shift < 0) d >>= BigInt(-shift);
  else d = (d << BigInt(shift)) & U64;
  return ((d * BigInt(mul >>> 0)) >> 32n) & U64;
}

test('PvclockScaler.scaleDelta equals pvclock_scale_delta for every tsc_shift (s8) and edge deltas and multipliers', () => {
  const prng = new Prng(32);
  const deltas = [0n, 1n, P32 - 1n, P32, P63 - 1n, P63, U64, U64 + 1n, -1n, 2n ** 70n + 5n];
  for (let i = 0; i < 20; i++) deltas.push(randU64(prng));
  const muls = [0, 1, 0x8000_0000, 0xffff_ffff, 3_308_738_291, 2_147_483_647];
  const scaler = new PvclockScaler();
  for (let shift = -128; shift <= 127; shift++) {
    for (const mul of muls) {
      for (const d of deltas)
        assert.equal(scaler.scaleDelta(d, mul, shift), refScaleDelta(d, mul, shift), `delta ${d}, mul ${mul}, shift ${shift}`);
    }
  }
  // the cached factors follow a scale that changes between reads (and back): the shift alone, the mul alone, both
  for (const mul of [3_308_738_291, 1]) {
    for (const shift of [-3, -1, 0, 1, 5, 1, -1, 63, -63, 0]) {
      for (const d of deltas)
        assert.equal(scaler.scaleDelta(d, mul, shift), refScaleDelta(d, mul, shift), `delta ${d}, mul ${mul}, shift ${shift}`);
    }
  }
  for (let i = 0; i < 2000; i++) {
    const shift = prng.int(21) - 10;
    const mul = prng.nextU32();
    const d = randU64(prng);
    assert.equal(scaler.scaleDelta(d, mul, shift), refScaleDelta(d, mul, shift), `delta ${d}, mul ${mul}, shift ${shift}`);
  }
});

test('pvclockReadCyclesWords reads a record in RAM as __pvclock_read_cycles does, TSC behind tsc_timestamp and system_time wraps included', () => {
  const prng = new Prng(5);
  const ram = new Uint8Array(256);
  const w = ramWords(ram);
  if (!w) return assert.fail('ramWords gave no views on a little-endian host'); // every host Node runs on here is LE
  const scaler = new PvclockScaler();
  const records: PvclockVcpuTimeInfo[] = [
    { version: 2, tscTimestamp: 1_000_000n, systemTime: 5n, tscToSystemMul: 3_308_738_291, tscShift: -1, flags: 1 },
    { version: 4, tscTimestamp: U64 - 10n, systemTime: U64 - 3n, tscToSystemMul: 0xffff_ffff, tscShift: 1, flags: 0 },
    { version: 6, tscTimestamp: 0n, systemTime: 0n, tscToSystemMul: 2_147_483_648, tscShift: 2, flags: 0 },
    { version: 8, tscTimestamp: 123n, systemTime: P63, tscToSystemMul: 1, tscShift: -31, flags: 0 },
  ];
  for (const [i, rec] of records.entries()) {
    const off = 32 * (i + 1);
    encodePvclock(rec, ram, off);
    const tscs = [rec.tscTimestamp, rec.tscTimestamp + 1n, rec.tscTimestamp - 1n, 0n, U64, rec.tscTimestamp + P32];
    for (let k = 0; k < 50; k++) tscs.push(randU64(prng));
    for (const tsc of tscs)
      assert.equal(pvclockReadCyclesWords(w, off, tsc, scaler), pvclockReadCycles(rec, tsc), `record ${i} at TSC ${tsc}`);
  }
});
