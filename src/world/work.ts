// How much work a scenario asks for, estimated before anything runs: engine events, timeline rows and
// memory. A scenario that could not finish in reasonable time or fit in memory is refused up front,
// naming the field that drives the cost and the estimate, instead of running for hours or dying of heap.
import { InputError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import type { ResolvedScenario } from './resolve.ts';

/** Engine events a run may take: ~2·10^9 is hours of wall time at the guest model's rate (docs/performance.md). */
export const MAX_EVENTS = 2e9;
/** Timeline rows held in memory (≈ 200 B each) when they are not streamed to a file. */
export const MAX_ROWS_IN_MEMORY = 5e6;
/** Timeline rows written to a file (≈ 60 B each on disk). */
export const MAX_ROWS_ON_DISK = 1e8;
/** Heap the run may need: a VM costs ≈ 80 KB (measured with 2,000 VMs), Node's default heap is ≈ 4 GiB. */
export const MAX_HEAP_BYTES = 3 * 2 ** 30;
export const BYTES_PER_VM = 80_000;
const BYTES_PER_ROW = 200;

export interface WorkEstimate {
  events: number;
  rows: number;
  heapBytes: number;
  /** The scenario path that contributes most events, and its share. */
  eventsDrivenBy: string;
}

const seconds = (ns: Ns): number => Number(ns) / 1e9;

export function estimateWork(r: ResolvedScenario, rowsInMemory = true): WorkEstimate {
  const dur = seconds(r.durationNs);
  let events = 0;
  let top = { path: 'duration', events: 0 };
  const add = (path: string, n: number) => {
    events += n;
    if (n > top.events) top = { path, events: n };
  };
  for (const [i, h] of r.hosts.entries()) {
    const { wanderSigmaPpm = 0, wanderIntervalNs = 0n } = h.config.oscillator;
    if (wanderSigmaPpm > 0 && wanderIntervalNs > 0n) add(`hosts[${i}].oscillator.wander_interval`, dur / seconds(wanderIntervalNs));
  }
  let rows = 0;
  const shared = new Set(r.hosts.filter((h) => h.cpuShare).map((h) => h.name));
  for (const vm of r.vms) {
    const alive = Math.max(0, dur - seconds(vm.bootAtNs));
    // per update interval: a vCPU entry (KVM's clock/steal requests) and the timekeeper's update, which the
    // guest's tick_sched_timer takes from its LAPIC timer: the hrtimer, the VM entry held to the TSC deadline,
    // and for an interrupt a few ns early the reprogrammed second one (4); on shared host CPUs each vCPU's entry
    // and the interrupt deferred until the thread runs (at most one each); a wired tick runs on every vCPU's own
    // LAPIC (3 more per secondary vCPU, and its deferred interrupt)
    const hosts = [vm.host, ...vm.snapshots.map((sn) => sn.restoreOn ?? vm.host), ...vm.migrations.map((m) => m.to)];
    const nrVcpus = vm.vcpus ?? vm.profile.defaultVcpus;
    const secondaryTicks = vm.directOneshotTick ? 0 : 3 * (nrVcpus - 1);
    const deferred = hosts.some((h) => shared.has(h)) ? nrVcpus + (vm.directOneshotTick ? 1 : nrVcpus) : 0;
    add(`vms[${vm.index}].update_interval`, ((5 + secondaryTicks + deferred) * alive) / seconds(vm.updateIntervalNs));
    rows += alive / seconds(r.sampleIntervalNs) + 2 * vm.pauses.length + 1;
  }
  add('sample_interval', dur / seconds(r.sampleIntervalNs));
  const heapBytes = r.vms.length * BYTES_PER_VM + (rowsInMemory ? rows * BYTES_PER_ROW : 0);
  return { events, rows, heapBytes, eventsDrivenBy: top.path };
}

const fmt = (n: number): string =>
  n >= 1e9 ? `${(n / 1e9).toFixed(1)}·10^9` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}·10^6` : String(Math.round(n));

/** Refuse a scenario whose estimated work cannot finish or fit; `where` names the scenario file. */
export function checkWork(r: ResolvedScenario, where: string, opts: { rowsInMemory: boolean }): WorkEstimate {
  const w = estimateWork(r, opts.rowsInMemory);
  if (w.events > MAX_EVENTS)
    throw new InputError(
      `the run would take about ${fmt(w.events)} engine events (limit ${fmt(MAX_EVENTS)}, hours of wall time): shorten duration or lengthen ${w.eventsDrivenBy}`,
      where,
      w.eventsDrivenBy,
    );
  const maxRows = opts.rowsInMemory ? MAX_ROWS_IN_MEMORY : MAX_ROWS_ON_DISK;
  if (w.rows > maxRows)
    throw new InputError(
      `the timeline would have about ${fmt(w.rows)} rows (limit ${fmt(maxRows)}${opts.rowsInMemory ? ' in memory; --out streams it to disk' : ' on disk'}): lengthen sample_interval`,
      where,
      'sample_interval',
    );
  if (w.heapBytes > MAX_HEAP_BYTES)
    throw new InputError(
      `${r.vms.length} VMs need about ${(w.heapBytes / 2 ** 30).toFixed(1)} GiB of memory (limit ${MAX_HEAP_BYTES / 2 ** 30} GiB): split the fleet into several scenarios`,
      where,
      'vms',
    );
  return w;
}
