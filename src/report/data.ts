// The results a report is made from: a run's summary and timeline, either in memory or read back from a
// `run --out DIR` (summary.json + timeline.csv). Bad directories are InputErrors naming the file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../core/index.ts';
import type { SimulationSummary, TimelineRow } from '../world/index.ts';

/** What a report is made from: a run's summary and its whole timeline. */
export interface RunData {
  summary: SimulationSummary;
  timeline: readonly TimelineRow[];
}

export const TIMELINE_HEADER = 't_s,vm,guest_offset_ns,monotonic_lag_ns,host_offset_ns';

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(
      code === 'ENOENT' ? 'no such file (expected the output of `timevisor run --out DIR`)' : `cannot read: ${code}`,
      path,
    );
  }
}

/** "12.000000001" seconds → ns, exactly. */
function secondsToNs(s: string): bigint {
  const [whole, frac = ''] = s.split('.');
  return BigInt(whole!) * 1_000_000_000n + BigInt((frac + '000000000').slice(0, 9));
}

export function parseTimelineCsv(text: string, where = 'timeline.csv'): TimelineRow[] {
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines[0] !== TIMELINE_HEADER) throw new InputError(`line 1: expected the header "${TIMELINE_HEADER}"`, where);
  const rows: TimelineRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.split(',');
    if (f.length !== 5 || !/^\d+(\.\d+)?$/.test(f[0]!) || !f.slice(2).every((x) => /^-?\d+$/.test(x)))
      throw new InputError(`line ${i + 1}: expected t_s,vm and three integer ns columns, got "${lines[i]}"`, where);
    rows.push({
      t: secondsToNs(f[0]!),
      vm: f[1]!,
      guestOffsetNs: BigInt(f[2]!),
      monotonicLagNs: BigInt(f[3]!),
      hostOffsetNs: BigInt(f[4]!),
    });
  }
  return rows;
}

export function readRunDir(dir: string): RunData {
  const sp = join(dir, 'summary.json');
  let summary: SimulationSummary;
  try {
    summary = JSON.parse(readText(sp)) as SimulationSummary;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`not valid JSON: ${(e as Error).message}`, sp);
  }
  if (!summary || typeof summary !== 'object' || !Array.isArray(summary.vms) || !Array.isArray(summary.hosts))
    throw new InputError('expected a run summary with "hosts" and "vms" arrays', sp);
  const tp = join(dir, 'timeline.csv');
  return { summary, timeline: parseTimelineCsv(readText(tp), tp) };
}
