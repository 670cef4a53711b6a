import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clocksCalcMultShift,
  clocksourceDelta,
  clocksourceMask,
  cyc2ns,
  hex,
  mulU64U32Shr,
  mulU64U64Shr,
  s64,
  s8,
  u64,
  U64_MAX,
} from '../../src/core/u64.ts';

test('mul_u64_u32_shr keeps the full 96-bit product before shifting', () => {
  // (2^64-1)(2^32-1) = 2^96 - 2^64 - 2^32 + 1; >> 32 = 2^64 - 2^32 - 1 (the +1 is shifted out)
  assert.equal(mulU64U32Shr(U64_MAX, 0xffffffff, 32), 0xfffffffeffffffffn);
  // 2^40 * m >> 32 = 256 m
  assert.equal(mulU64U32Shr(1n << 40n, 3308738291, 32), 256n * 3308738291n);
  assert.equal(mulU64U32Shr(0n, 0xffffffff, 32), 0n);
  assert.equal(mulU64U32Shr(U64_MAX, 0, 0), 0n);
  // shift 0 truncates the product to 64 bits, as the C cast does
  assert.equal(mulU64U32Shr(1n << 63n, 2, 0), 0n);
  // mul is taken as u32: 2^32 + 3 acts as 3
  assert.equal(mulU64U32Shr(10n, 0x1_0000_0003n, 0), 30n);
});

test('mul_u64_u64_shr uses a 128-bit product', () => {
  assert.equal(mulU64U64Shr(U64_MAX, U64_MAX, 64), U64_MAX - 1n); // (2^64-1)^2 >> 64 = 2^64 - 2
  assert.equal(mulU64U64Shr(3n << 60n, 1n << 48n, 48), 3n << 60n); // ratio 1.0 in 16.48 fixed point
  assert.equal(mulU64U64Shr(1000n, (1n << 48n) + (1n << 47n), 48), 1500n); // ratio 1.5
});

test('clocksource_cyc2ns wraps the u64 product like the C code', () => {
  assert.equal(cyc2ns(1n << 39n, 1 << 24, 24), 1n << 39n); // product 2^63 still fits
  assert.equal(cyc2ns(1n << 40n, 1 << 24, 24), 0n); // product 2^64 wraps to 0 before the shift
  assert.equal(cyc2ns(0n, 123456, 10), 0n);
  // 2^63 * 2 = 2^64 ≡ 0 in u64: a too-large delta yields garbage, exactly as in the kernel
  assert.equal(cyc2ns(1n << 63n, 2, 0), 0n);
  // 1000 cycles of a 1 GHz counter with mult 2^23, shift 23 → 1000 ns
  assert.equal(cyc2ns(1000n, 1 << 23, 23), 1000n);
});

test('clocksource_delta survives counter wrap at the mask', () => {
  const m32 = clocksourceMask(32);
  assert.equal(m32, 0xffffffffn);
  assert.equal(clocksourceDelta(5n, 0xfffffffen, m32), 7n);
  assert.equal(clocksourceDelta(0n, U64_MAX, clocksourceMask(64)), 1n);
  const m24 = clocksourceMask(24); // ACPI PM timer
  assert.equal(clocksourceDelta(0x10n, 0xfffff0n, m24), 0x20n);
  assert.throws(() => clocksourceMask(0));
  assert.throws(() => clocksourceMask(65));
});

test("clocks_calc_mult_shift reproduces the mult/shift behind real kernels' tsc lines", () => {
  // Hand derivation for a 2,596,136 kHz TSC registered in kHz (scale 1000, maxsec 600 s):
  // tmp = (600000 * 2596136) >> 32 = 362 → 9 bits → sftacc = 23; the largest shift with mult < 2^23 is 24,
  // mult = (10^6 << 24 + 2596136/2) / 2596136 = 6462379.
  assert.deepEqual(clocksCalcMultShift(2596136, 1_000_000, 600_000), { mult: 6462379, shift: 24 });
  // Real guests printed max_cycles 0x256bfa33b32 (2,596,136 kHz) and 0x256bf8268dd (2,596,134 kHz):
  // max_cycles = U64_MAX / (mult + mult*11/100) (clocks_calc_max_nsecs).
  for (const [khz, maxCycles] of [
    [2596136, 0x256bfa33b32n],
    [2596134, 0x256bf8268ddn],
  ] as const) {
    const { mult } = clocksCalcMultShift(khz, 1_000_000, 600_000);
    assert.equal(U64_MAX / (BigInt(mult) + BigInt(Math.floor((mult * 11) / 100))), maxCycles);
  }
  // 1 GHz → ns is the identity: mult = 2^shift
  const id = clocksCalcMultShift(1_000_000_000, 1_000_000_000, 600);
  assert.equal(id.mult, 2 ** id.shift);
  assert.throws(() => clocksCalcMultShift(0, 1, 1), /positive/);
});

test('u64/s64/s8 reinterpretation and hex formatting', () => {
  assert.equal(u64(-1n), U64_MAX);
  assert.equal(s64(U64_MAX), -1n);
  assert.equal(s8(0xff), -1);
  assert.equal(s8(0x7f), 127);
  assert.equal(hex(0x256bfa33b32n), '0x256bfa33b32');
  assert.equal(hex(-1n), '0xffffffffffffffff');
});
