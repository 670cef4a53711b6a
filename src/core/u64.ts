// Exact unsigned 64-bit arithmetic as the kernel writes it. Every function returns a value in [0, 2^64).
// Where the C code lets a u64 product wrap, these wrap too: the point is bit-for-bit agreement.
import type { Cycles, Ns } from './time.ts';

export const U64_MAX = (1n << 64n) - 1n;
export const U32_MAX = 0xffff_ffffn;

/** Truncate to u64 (two's complement wrap, as a C cast to u64 does). */
export function u64(x: bigint): bigint {
  return BigInt.asUintN(64, x);
}

/** Truncate to u32. */
export function u32(x: bigint): bigint {
  return BigInt.asUintN(32, x);
}

/** Reinterpret a u64 as s64. */
export function s64(x: bigint): bigint {
  return BigInt.asIntN(64, x);
}

/** Reinterpret as s8 (the pvclock tsc_shift field). */
export function s8(x: number): number {
  return (x << 24) >> 24;
}

/** mask(bits) as CLOCKSOURCE_MASK(bits) in include/linux/clocksource.h. */
export function clocksourceMask(bits: number): bigint {
  if (bits < 1 || bits > 64) throw new RangeError(`mask bits out of range: ${bits}`);
  return bits === 64 ? U64_MAX : (1n << BigInt(bits)) - 1n;
}

/**
 * mul_u64_u32_shr(a, mul, shift) from include/linux/math64.h: the full 96-bit product a*mul
 * shifted right, truncated to u64 (the kernel computes it through a 128-bit intermediate).
 */
export function mulU64U32Shr(a: bigint, mul: number | bigint, shift: number): bigint {
  return u64((u64(a) * u32(BigInt(mul))) >> BigInt(shift));
}

/** mul_u64_u64_shr(a, mul, shift) from include/linux/math64.h (128-bit product). */
export function mulU64U64Shr(a: bigint, mul: bigint, shift: number): bigint {
  return u64((u64(a) * u64(mul)) >> BigInt(shift));
}

/** div_u64 / do_div: truncating u64 division. */
export function divU64(a: bigint, b: bigint): bigint {
  if (b === 0n) throw new RangeError('division by zero');
  return u64(a) / u64(b);
}

/**
 * clocksource_delta() from kernel/time/timekeeping_internal.h: the masked difference of two
 * counter readings, so a counter that wraps at its mask still yields the elapsed cycles.
 */
export function clocksourceDelta(now: Cycles, last: Cycles, mask: bigint): Cycles {
  return (now - last) & mask;
}

/**
 * clocksource_cyc2ns() from include/linux/clocksource.h: ((u64)cycles * mult) >> shift.
 * The product is a plain u64 multiply in C, so it wraps for large deltas; so does this.
 */
export function cyc2ns(cycles: Cycles, mult: number, shift: number): Ns {
  return u64(u64(cycles) * BigInt(mult)) >> BigInt(shift);
}

/**
 * clocks_calc_mult_shift() from kernel/time/clocksource.c: the largest shift (≤ 32) whose mult
 * still keeps maxsec seconds of `from`-Hz input from overflowing 64 bits after multiplication.
 * Converts `from` units to `to` units: out = (in * mult) >> shift.
 */
export function clocksCalcMultShift(from: number, to: number, maxsec: number): { mult: number; shift: number } {
  if (!(from > 0) || !(to > 0)) throw new RangeError(`clocks_calc_mult_shift: from and to must be positive (${from}, ${to})`);
  const fromB = BigInt(from);
  let tmp = u64(BigInt(maxsec) * fromB) >> 32n;
  let sftacc = 32n;
  while (tmp !== 0n) {
    tmp >>= 1n;
    sftacc--;
  }
  let sft = 32n;
  for (; sft > 0n; sft--) {
    tmp = u64(BigInt(to) << sft);
    tmp = u64(tmp + fromB / 2n);
    tmp = tmp / fromB;
    if (tmp >> sftacc === 0n) break;
  }
  return { mult: Number(u32(tmp)), shift: Number(sft) };
}

/** Format a u64 as the kernel's "%#llx"/"0x%llx" prints it. */
export function hex(x: bigint): string {
  return '0x' + u64(x).toString(16);
}
