// Durations written the way people write them in scenario files: "500ms", "15s", "1d", or plain
// seconds as a number.
import { InputError } from './errors.ts';
import { secondsToNs, type Ns } from './time.ts';

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  min: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
  w: 604_800_000_000_000n,
  y: 31_536_000_000_000_000n, // 365 days
};

/** Parse "90s", "1.5h", "250us", "2d" or a bare number of seconds into exact ns. */
export function parseDuration(v: string | number, where = 'duration'): Ns {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new InputError(`expected a non-negative duration, got ${v}`, where);
    return secondsToNs(v);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|min|m|h|d|w|y)?\s*$/.exec(v);
  if (!m) throw new InputError(`expected a duration like "500ms", "15s", "1d" or a number of seconds, got "${v}"`, where);
  const unit = UNIT_NS[m[2] ?? 's']!;
  const [whole, frac = ''] = m[1]!.split('.');
  const scale = 10n ** BigInt(frac.length);
  return ((BigInt(whole!) * scale + BigInt(frac || '0')) * unit) / scale;
}

/** Human form of a duration in ns: "1d 2h", "15 s", "250 µs". */
export function formatDuration(ns: Ns): string {
  const a = ns < 0n ? -ns : ns;
  const sign = ns < 0n ? '-' : '';
  if (a >= 86_400_000_000_000n) return `${sign}${(Number(a) / 86_400e9).toFixed(2)} d`;
  if (a >= 3_600_000_000_000n) return `${sign}${(Number(a) / 3_600e9).toFixed(2)} h`;
  if (a >= 1_000_000_000n) return `${sign}${(Number(a) / 1e9).toFixed(3)} s`;
  if (a >= 1_000_000n) return `${sign}${(Number(a) / 1e6).toFixed(3)} ms`;
  if (a >= 1_000n) return `${sign}${(Number(a) / 1e3).toFixed(3)} µs`;
  return `${sign}${a} ns`;
}
