// Host CPU sharing and timer interrupts (issue 12) as a table, for `run`'s human report and the HTML report:
// one row per VM where they are not trivial (steal, or a timer interrupt late, lost or reinjected), and only
// the columns that are not zero in every such row.
import { formatDuration } from '../core/index.ts';
import type { SimulationSummary } from '../world/index.ts';

type VmFigures = SimulationSummary['vms'][number];

export interface SharingTable {
  head: string[];
  rows: string[][];
  /** What each shown column means, one sentence each. */
  legend: string[];
}

/** Null when no VM waited for a CPU or had a late, lost or reinjected timer interrupt. */
export function sharingTable(vms: readonly VmFigures[]): SharingTable | null {
  // summaries written before issue 12 lack the fields: they count as 0
  const n = (x: string | undefined) => BigInt(x ?? '0');
  const shown = vms.filter((v) => n(v.steal_ns) + n(v.ticks_lost) + n(v.ticks_reinjected) + n(v.max_timer_lateness_ns) > 0n);
  if (shown.length === 0) return null;
  const any = (f: (v: VmFigures) => string | undefined) => shown.some((v) => n(f(v)) > 0n);
  const lateness = any((v) => v.max_timer_lateness_ns);
  const lost = any((v) => v.ticks_lost);
  const reinjected = any((v) => v.ticks_reinjected);
  const dur = (x: string | undefined) => formatDuration(n(x));
  const cols: [string, (v: VmFigures) => string][] = [['vm', (v) => v.name]];
  const legend: string[] = [];
  if (any((v) => v.steal_ns)) {
    cols.push(['steal', (v) => dur(v.steal_ns)]);
    legend.push("steal: time the guest's vCPUs waited for a host CPU, its /proc/stat steal summed over vCPUs");
  }
  if (lateness || lost || reinjected) cols.push(['timer irqs', (v) => String(n(v.timer_irqs))]);
  if (lost) {
    cols.push(['lost', (v) => String(n(v.ticks_lost))]);
    legend.push('lost: timer ticks the guest never saw, coalesced with one still pending or skipped by its tick');
  }
  if (reinjected) {
    cols.push(['reinjected', (v) => String(n(v.ticks_reinjected))]);
    legend.push("reinjected: KVM PIT ticks delivered late, one per the guest's EOI");
  }
  if (lateness) {
    cols.push(
      ['late p50', (v) => dur(v.timer_lateness_ns?.p50)],
      ['late p99', (v) => dur(v.timer_lateness_ns?.p99)],
      ['late max', (v) => dur(v.max_timer_lateness_ns)],
    );
    legend.push("late: a timer interrupt's wait from its request to the guest taking it");
  }
  return { head: cols.map((c) => c[0]), rows: shown.map((v) => cols.map((c) => c[1](v))), legend };
}
