// One plain-language line per event, from the numbers the guest showed and what the VMM did.
import type { Ns } from '../core/index.ts';
import { formatDuration } from '../core/index.ts';

const MS = 1_000_000n;

/** "60.000 s behind", "2.000 s ahead", "unchanged" (within 1 ms). */
export function realtimeChange(before: Ns, after: Ns): string {
  const d = after - before;
  if (d > -MS && d < MS) return 'REALTIME unchanged';
  return `REALTIME moved ${formatDuration(d < 0n ? -d : d)} ${d < 0n ? 'back' : 'ahead'} (now ${formatOffset(after)})`;
}

export function formatOffset(ns: Ns): string {
  if (ns > -MS && ns < MS) return 'right within 1 ms';
  return `${formatDuration(ns < 0n ? -ns : ns)} ${ns < 0n ? 'behind' : 'ahead'}`;
}

/** How guest MONOTONIC took a gap of `gap` ns in which it advanced `advance`. */
export function monotonicSaw(gap: Ns, advance: Ns, what: string): string {
  if (advance < MS) return `MONOTONIC did not see the ${what}`;
  const d = advance - gap;
  if (d > -MS && d < MS) return `MONOTONIC saw the ${what}`;
  return `MONOTONIC advanced ${formatDuration(advance)} across the ${formatDuration(gap)} ${what}`;
}
