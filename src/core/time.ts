// The two time types used everywhere: nanoseconds of some time base, and cycles of some counter.
// Both are unsigned 64-bit quantities in the kernel; here they are exact BigInts.
export type Ns = bigint;
export type Cycles = bigint;

export const NSEC_PER_USEC = 1_000n;
export const NSEC_PER_MSEC = 1_000_000n;
export const NSEC_PER_SEC = 1_000_000_000n;
export const NS_PER_SEC = 1e9;

/** A source of the current time of one time base (true time, a host's clock, a guest's clock). */
export type Clock = () => Ns;

/** Seconds (a JavaScript number, possibly fractional) to exact nanoseconds, rounded to nearest. */
export function secondsToNs(s: number): Ns {
  if (!Number.isFinite(s)) throw new RangeError(`not a finite number of seconds: ${s}`);
  const whole = Math.trunc(s);
  const frac = Math.round((s - whole) * 1e9);
  return BigInt(whole) * NSEC_PER_SEC + BigInt(frac);
}

/** Nanoseconds to seconds as a number (for reporting; loses sub-ns precision beyond 2^53 ns). */
export function nsToSeconds(ns: Ns): number {
  const s = ns / NSEC_PER_SEC;
  const rem = ns - s * NSEC_PER_SEC;
  return Number(s) + Number(rem) / 1e9;
}
