import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kvmGetTimeScale, kvmclockScale, divFrac } from '../../src/hypervisor/index.ts';
import { pvclockReadCycles, pvclockScaleDelta } from '../../src/core/index.ts';

test('kvm_get_time_scale for the recorded 2,596,136 kHz host gives tsc_shift -1, mul 3,308,738,291 (real KVM)', () => {
  assert.deepEqual(kvmclockScale(2_596_136), { shift: -1, mul: 3_308_738_291 });
});

test('kvm_get_time_scale for 1 GHz: tps32 doubled once, mul = 2^31, shift +1 (hand-derived)', () => {
  // tps64 = 1e9 is not > 2*scaled, fits 32 bits; tps32 (1e9) <= scaled (1e9) and bit 31 clear → tps32 <<= 1, shift 1;
  // mul = (1e9 << 32) / 2e9 = 2^31.
  assert.deepEqual(kvmclockScale(1_000_000), { shift: 1, mul: 2 ** 31 });
});

test('kvm_get_time_scale for a 3 GHz TSC: one right shift, mul = floor(1e9 * 2^32 / 1.5e9) (hand-derived)', () => {
  // tps64 = 3e9 > 2e9 → 1.5e9, shift -1; 1.5e9 > 1e9 so no left shifts; mul = floor(2^32 * 2/3) = 2863311530.
  assert.deepEqual(kvmclockScale(3_000_000), { shift: -1, mul: 2_863_311_530 });
});

test('the guest-TSC-from-ns scale (user_tsc_khz*1000, NSEC_PER_SEC) converts 1 s to 2,596,135,999 cycles (mul truncated)', () => {
  // By hand: tps64 = 1e9 fits and is not > 2 * scaled; tps32 = 1e9 <= scaled 2,596,136,000 with bit 31 clear → 2e9, shift 1;
  // 2e9 <= scaled, bit 31 still clear → 4e9, shift 2; 4e9 > scaled: stop. mul = (2596136000 << 32) / 4e9 = 2787579803
  // (…803.99 truncated). 1 s: (1e9 << 2) * 2787579803 >> 32 = 2596135999 (the truncated mul loses the last cycle).
  const s = kvmGetTimeScale(2_596_136_000n, 1_000_000_000n);
  assert.deepEqual(s, { shift: 2, mul: 2_787_579_803 });
  assert.equal(pvclockScaleDelta(1_000_000_000n, s.mul, s.shift), 2_596_135_999n);
});

test('div_frac is (a << 32) / b truncated', () => {
  assert.equal(divFrac(1n, 3n), 1431655765);
  assert.equal(divFrac(1_000_000_000n, 1_298_068_000n), Math.floor((1e9 * 2 ** 32) / 1_298_068_000));
});

test('the recorded pvclock record read at KVM_GET_CLOCK host_tsc gives exactly KVM_GET_CLOCK clock 833,118', () => {
  // Recorded on kvm-pvm: record {tsc_timestamp 13910120611063, system_time 629045, mul 3308738291, shift -1};
  // KVM_GET_CLOCK {clock 833118, flags 0xe, host_tsc 13910121140865}.
  // By hand: delta = 529802; >>1 = 264901; 264901 * 3308738291 = 876488082024191; >>32 = 204073;
  // 629045 + 204073 = 833118.
  const rec = { tscTimestamp: 13_910_120_611_063n, systemTime: 629_045n, tscToSystemMul: 3_308_738_291, tscShift: -1 };
  assert.equal(pvclockReadCycles(rec, 13_910_121_140_865n), 833_118n);
  // One cycle earlier the read is 1 ns lower (264900 * mul >> 32 = 204072): 833117 is the value at host_tsc - 1.
  assert.equal(pvclockReadCycles(rec, 13_910_121_140_864n), 833_117n);
});

test('pvclock_scale_delta shifts before multiplying (left shift wraps at 64 bits like the u64 in C)', () => {
  assert.equal(pvclockScaleDelta(3n, 2 ** 31, 1), 3n); // (3<<1) * 2^31 >> 32 = 3
  assert.equal(pvclockScaleDelta(3n, 2 ** 31, -1), 0n); // (3>>1) * 2^31 >> 32 = 0 (1/2 truncated)
  assert.equal(pvclockScaleDelta(1n << 63n, 2 ** 31, 1), 0n); // 2^64 wraps to 0
});
