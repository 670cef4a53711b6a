// Run a scenario with tracing on and hand back its events with every source named after the scenario's
// VMs ("vm-agent/vcpu0", "vm-agent/pit"), filtered by event name and VM as `timevisor trace` asks.
import { InputError } from '../core/index.ts';
import { type TraceEvent, TraceRecorder } from '../core/index.ts';
import type { Scenario } from '../world/index.ts';
import { type SimulationResult, simulate } from '../world/index.ts';
import { eventPath } from './kernel-events.ts';

export interface TraceRunOptions {
  /** Comma-separated event or function names, `*` as a wildcard; an event matches if any frame does. */
  filter?: string;
  vm?: string;
  limit?: number;
  onProgress?: (fraction: number) => void;
}

export interface TraceRun {
  result: SimulationResult;
  events: TraceEvent[];
  /** Scenario VM names in scenario order (trace_pipe pids and Perfetto tracks follow it). */
  vmOrder: string[];
  dropped: number;
}

/**
 * The scenario names of VMs booted without one: bootVm numbers them vm#0, vm#1, … in boot order, and
 * simulate() boots them at boot_at, ties in scenario order (the engine keeps insertion order).
 */
export function bootOrderNames(s: Scenario): Map<string, string> {
  const duration = s.duration;
  const booted = s.vms
    .map((v, i) => ({ name: v.name, at: v.boot_at, i }))
    .filter((v) => v.at <= duration)
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.i - b.i));
  return new Map(booted.map((v, n) => [`vm#${n}`, v.name]));
}

export function nameMatcher(filter: string | undefined, where = '--filter'): ((name: string) => boolean) | null {
  if (filter === undefined) return null;
  const parts = filter
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new InputError('expected one or more event names (comma-separated, * as a wildcard)', where);
  const res = parts.map((p) => {
    if (!/^[\w*.-]+$/.test(p)) throw new InputError(`"${p}" is not an event name (letters, digits, _ . - and *)`, where);
    return new RegExp(`^${p.replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`);
  });
  return (name) => res.some((r) => r.test(name));
}

export function runTrace(s: Scenario, opts: TraceRunOptions = {}): TraceRun {
  const vmOrder = s.vms.map((v) => v.name);
  if (opts.vm !== undefined && !vmOrder.includes(opts.vm))
    throw new InputError(`no VM named "${opts.vm}" in scenario "${s.name}" (it has ${vmOrder.join(', ')})`, '--vm');
  const match = nameMatcher(opts.filter);
  const recorder = new TraceRecorder({ enabled: true, limit: opts.limit ?? 2_000_000 });
  const result = simulate(s, { trace: recorder, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
  // once simulate() passes its VMs' names to bootVm, no source is numbered and this maps nothing
  const names = bootOrderNames(s);
  const events: TraceEvent[] = [];
  for (const ev of recorder.recorded) {
    const [head, ...rest] = ev.source.split('/');
    const vm = names.get(head!);
    const named = vm === undefined ? ev : { ...ev, source: [vm, ...rest].join('/') };
    if (opts.vm !== undefined && named.source.split('/')[0] !== opts.vm) continue;
    if (match && !match(ev.name) && !eventPath(ev).some(match)) continue;
    events.push(named);
  }
  return { result, events, vmOrder, dropped: recorder.droppedCount };
}
