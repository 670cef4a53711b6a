// Chrome trace-event JSON (the "JSON Object Format" of the Trace Event Format document, which
// ui.perfetto.dev and chrome://tracing open): a process per host and per VM, a thread (track) per host
// CPU, vCPU and device, counters for each guest's REALTIME offset and steal, instant events for pause,
// resume, migration and sync. Timestamps are microseconds; displayTimeUnit "ns" keeps ns precision on screen.
import type { TraceEvent } from '../core/index.ts';
import type { TimelineRow } from '../world/index.ts';
import { kernelEvent } from './kernel-events.ts';
import { hostTask, parseSource, qemuPid } from './pipe.ts';

export interface ChromeTraceEvent {
  name: string;
  ph: 'i' | 'B' | 'E' | 'C' | 'M';
  ts: number;
  pid: number;
  tid: number;
  cat?: string;
  s?: 'g' | 'p' | 't';
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ns' | 'ms';
  otherData: Record<string, string>;
}

const HOST_PID = 1;
/** Lifecycle events get a process-wide marker (scope "p") so they cross every track of the VM. */
// (QEMU's own names for snapshot and migration, for the world's moves once they emit them)
const LIFECYCLE = new Set([
  'qmp_stop',
  'qmp_cont',
  'do_settimeofday64',
  'kvm_vm_ioctl_set_clock',
  'qemu_savevm_state',
  'qemu_loadvm_state',
  'qmp_migrate',
  'migration_completion',
]);
const DEVICE_TID = { pit: 50, rtc: 51, cmos: 51, hpet: 52, 'acpi-pm': 53, 'pm-timer': 53 } as Record<string, number>;

const us = (ns: bigint): number => Number(ns) / 1000;

function jsonArgs(a: TraceEvent['args']): Record<string, unknown> | undefined {
  if (!a) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) out[k] = typeof v === 'bigint' ? v.toString() : v;
  return out;
}

export function chromeTrace(events: readonly TraceEvent[], timeline: readonly TimelineRow[], vmOrder: readonly string[]): ChromeTrace {
  const out: ChromeTraceEvent[] = [];
  const meta = (pid: number, tid: number, kind: 'process_name' | 'thread_name', name: string) =>
    out.push({ name: kind, ph: 'M', ts: 0, pid, tid, args: { name } });
  const threads = new Set<string>();
  const thread = (pid: number, tid: number, name: string) => {
    const key = `${pid}/${tid}`;
    if (threads.has(key)) return;
    threads.add(key);
    meta(pid, tid, 'thread_name', name);
  };
  meta(HOST_PID, 0, 'process_name', 'host');
  vmOrder.forEach((vm, i) => meta(qemuPid(i), 0, 'process_name', `${vm} (qemu-system-x86)`));
  const steal = new Map<string, bigint>();

  for (const ev of events) {
    const src = parseSource(ev.source, vmOrder);
    const k = kernelEvent(ev.name);
    const task = hostTask(k.context, src);
    const device = ev.source.split('/')[1];
    let pid: number;
    let tid: number;
    // host interrupt and kworker context run on a host CPU, whatever VM they serve
    if (src.vmIndex < 0 || k.context === 'hardirq' || k.context === 'kworker') {
      pid = HOST_PID;
      tid = task.cpu;
      thread(pid, tid, `CPU ${task.cpu}`);
    } else if (device !== undefined && DEVICE_TID[device] !== undefined) {
      pid = qemuPid(src.vmIndex);
      tid = pid + DEVICE_TID[device]!;
      thread(pid, tid, device);
    } else {
      pid = qemuPid(src.vmIndex);
      tid = task.pid;
      thread(pid, tid, task.comm);
    }
    const base = { name: ev.name, ts: us(ev.ts), pid, tid, cat: k.context };
    const args = jsonArgs(ev.args);
    if (ev.ph === 'i') out.push({ ...base, ph: 'i', s: LIFECYCLE.has(ev.name) ? 'p' : 't', ...(args ? { args } : {}) });
    else out.push({ ...base, ph: ev.ph, ...(args ? { args } : {}) });
    if (ev.name === 'record_steal_time' && src.vm !== null && typeof ev.args?.steal === 'bigint') {
      const key = `${src.vm}/${src.vcpu ?? 0}`;
      if (steal.get(key) !== ev.args.steal) {
        steal.set(key, ev.args.steal);
        out.push({
          name: `steal vcpu${src.vcpu ?? 0} (ms)`,
          ph: 'C',
          ts: us(ev.ts),
          pid,
          tid: 0,
          args: { steal: Number(ev.args.steal) / 1e6 },
        });
      }
    }
  }
  for (const r of timeline) {
    const i = vmOrder.indexOf(r.vm);
    if (i < 0) continue;
    out.push({
      name: 'guest REALTIME − true (ms)',
      ph: 'C',
      ts: us(r.t),
      pid: qemuPid(i),
      tid: 0,
      args: { offset: Number(r.guestOffsetNs) / 1e6 },
    });
  }
  // the format does not require order, but a stable one makes files diffable
  out.sort((a, b) => (a.ph === 'M' ? -1 : 0) - (b.ph === 'M' ? -1 : 0) || a.ts - b.ts);
  return { traceEvents: out, displayTimeUnit: 'ns', otherData: { generator: 'timevisor trace' } };
}
