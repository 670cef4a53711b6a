// Call paths counted the way a bpftrace session prints its maps on exit: `@[a, b, c]: N` for a tuple key,
// or with --stacks the kstack layout (one frame a line, innermost first, indented four spaces). bpftrace
// prints a map sorted by value, smallest first; equal values here keep key order so output is stable.
import type { TraceEvent } from '../core/index.ts';
import { eventPath } from './kernel-events.ts';

export interface PathCount {
  /** Outermost first, the event's own name last. */
  path: string[];
  count: number;
}

export function countPaths(events: Iterable<TraceEvent>): PathCount[] {
  const counts = new Map<string, PathCount>();
  for (const ev of events) {
    if (ev.ph === 'E') continue;
    const path = [...eventPath(ev), ev.name];
    const key = path.join('\0');
    const c = counts.get(key);
    if (c) c.count++;
    else counts.set(key, { path, count: 1 });
  }
  return [...counts.values()].sort((a, b) => a.count - b.count || cmp(a.path.join(','), b.path.join(',')));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** bpftrace's map print: `@[a, b]: N` lines, or kstack blocks with `stacks`. */
export function formatPathCounts(counts: readonly PathCount[], opts: { stacks?: boolean } = {}): string {
  const out: string[] = [];
  for (const c of counts) {
    if (opts.stacks) {
      out.push('@[');
      for (const f of [...c.path].reverse()) out.push(`    ${f}`);
      out.push(`]: ${c.count}`);
      out.push('');
    } else {
      out.push(`@[${c.path.join(', ')}]: ${c.count}`);
    }
  }
  return out.join('\n') + (out.length && !opts.stacks ? '\n' : '');
}
