import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/core/prng.ts';
import { Host } from '../../src/world/host.ts';
import { Oscillator } from '../../src/core/oscillator.ts';

const DAY = 86_400_000_000_000n;
const tsc = { freqKhz: 2_596_136, constant: true, nonstop: true, invariant: true };

test('an oscillator 12 ppm fast gains 1.0368 s a day, exactly to the quantization of its rate', () => {
  const o = new Oscillator({ ppm: 12 }, new Prng(1));
  // 12e-6 * 86,400 s = 1.0368 s; the rate is held to 2^-64, far below 1 ns a year
  assert.equal(o.phaseAt(DAY), DAY + 1_036_800_000n);
  assert.equal(o.phaseAt(365n * DAY), 365n * (DAY + 1_036_800_000n));
  assert.equal(o.phaseAt(0n), 0n);
});

test('changing the rate keeps phase continuous', () => {
  const o = new Oscillator({ ppm: 100 }, new Prng(1));
  const before = o.phaseAt(1_000_000_000n);
  o.setPpmAt(1_000_000_000n, -100);
  assert.equal(o.phaseAt(1_000_000_000n), before);
  // one more second at -100 ppm: +1 s - 100 µs (within the 2^-40 quantization of the rate)
  assert.equal(o.phaseAt(2_000_000_000n) - before, 999_900_000n);
});

test('wander is a seeded random walk: same seed, same walk', () => {
  const walk = (seed: number) => {
    const o = new Oscillator({ ppm: 0, wanderSigmaPpm: 0.5 }, new Prng(seed));
    const xs: number[] = [];
    for (let i = 1; i <= 50; i++) {
      o.wanderStep(BigInt(i) * 1_000_000_000n);
      xs.push(o.ppm);
    }
    return xs;
  };
  assert.deepEqual(walk(3), walk(3));
  assert.notDeepEqual(walk(3), walk(4));
  // each step adds one normal(0, σ) draw of the oscillator's stream to the ppm; the rate is held as
  // round(ppm × 1e-6 × 2^64) units of 2^-64 and reported back from that
  const draws = new Prng(3);
  let ppm = 0;
  const want = Array.from({ length: 50 }, () => {
    ppm += draws.normal(0, 0.5);
    return (Number(BigInt(Math.round(ppm * 1e-6 * 2 ** 64))) / 2 ** 64) * 1e6;
  });
  assert.deepEqual(walk(3), want);
});

test('host TSC counts at its nominal frequency in oscillator time; MONOTONIC_RAW scales it back', () => {
  const h = new Host({ name: 'h', oscillator: { ppm: 0 }, tsc, ntp: false }, new Prng(1), 0n);
  assert.equal(h.rdtsc(1_000_000_000n), 2_596_136_000n);
  assert.equal(h.monotonicRaw(1_000_000_000n), 1_000_000_000n);
  const fast = new Host({ name: 'f', oscillator: { ppm: 50 }, tsc, ntp: false }, new Prng(1), 0n);
  // 50 ppm fast: after 1 s of true time the TSC shows 1.00005 s worth of cycles
  // phase 1,000,050,000 ns × 2,596,136 kHz = 2,596,265,806.8 cycles, floored
  assert.equal(fast.rdtsc(1_000_000_000n), 2_596_265_806n);
});

test('host clocks: NTP-synced REALTIME is true time; free-running REALTIME drifts with the crystal', () => {
  const epoch = 1_767_225_600_000_000_000n; // 2026-01-01T00:00:00Z
  const synced = new Host({ name: 's', oscillator: { ppm: 20 }, tsc, ntp: true }, new Prng(1), epoch);
  assert.equal(synced.realtime(DAY), epoch + DAY);
  assert.equal(synced.monotonic(DAY), DAY);
  const free = new Host({ name: 'u', oscillator: { ppm: 20 }, tsc, ntp: false, initialRealtimeErrorNs: 5_000_000n }, new Prng(1), epoch);
  const err = free.realtime(DAY) - (epoch + DAY);
  // 20 ppm of a day: phase(DAY) = DAY + round(86,400e9 × 20e-6) = DAY + 1,728,000,000 ns (the 2^-64 rate is off by
  // < 1e-6 ns here); the TSC, (DAY + 1.728e9) × 2,596,136 / 10^6, is an exact integer and MONOTONIC_RAW scales it back
  // exactly, so REALTIME is off by the initial 5 ms plus exactly 1.728 s.
  assert.equal(err, 5_000_000n + 1_728_000_000n);
  assert.equal(free.realtimeSeconds(0n), (epoch + 5_000_000n) / 1_000_000_000n);
  assert.throws(() => new Host({ name: 'z', oscillator: { ppm: 0 }, tsc: { ...tsc, freqKhz: 0 }, ntp: true }, new Prng(1), 0n), /positive/);
});
