// Events as the kernel's trace_pipe prints them (kernel/trace/trace_output.c trace_print_context and
// trace_print_lat_fmt): "%16s-%-7d [%03d] <flags> %5llu.%06lu: <event>: <fields>". The task is the host
// thread the work runs on: QEMU's vCPU threads ("CPU n/KVM", named by QEMU's qemu_thread_create), the
// in-kernel PIT's kthread ("kvm-pit/<qemu pid>"), a kworker for KVM's delayed work, QEMU's main thread.
import type { TraceEvent } from '../core/index.ts';
import { type EventContext, kernelEvent } from './kernel-events.ts';

export interface HostTask {
  comm: string;
  pid: number;
  cpu: number;
  /** irqs-off, need-resched, hardirq/softirq, preempt depth, migrate-disable (5 columns since Linux 5.16). */
  flags: string;
}

/** Where a source lives: the VM it belongs to (its index in the scenario) and the vCPU, if any. */
export interface SourceInfo {
  vm: string | null;
  vmIndex: number;
  vcpu: number | null;
}

export function parseSource(source: string, vmOrder: readonly string[]): SourceInfo {
  const [head, tail] = source.split('/', 2) as [string, string | undefined];
  const vmIndex = vmOrder.indexOf(head);
  const m = tail ? /^vcpu(\d+)$/.exec(tail) : null;
  return { vm: vmIndex >= 0 ? head : null, vmIndex, vcpu: m ? Number(m[1]) : null };
}

/** A QEMU process per VM, its vCPU threads right after it (pids are made up but stable per scenario). */
export function qemuPid(vmIndex: number): number {
  return 4100 + 100 * vmIndex;
}

export function hostTask(ctx: EventContext, src: SourceInfo): HostTask {
  // events the models emit without a VM name (the guest model's printk) get a QEMU of their own, pid 4000
  const pid = src.vmIndex >= 0 ? qemuPid(src.vmIndex) : 4000;
  const vcpu = src.vcpu ?? 0;
  switch (ctx) {
    case 'vcpu':
    case 'guest':
      // vcpu_enter_guest runs its requests with preemption and interrupts off
      return { comm: `CPU ${vcpu}/KVM`, pid: pid + 1 + vcpu, cpu: vcpu, flags: ctx === 'vcpu' ? 'd..1.' : '.....' };
    case 'hardirq':
      return { comm: '<idle>', pid: 0, cpu: 0, flags: 'd.h1.' };
    case 'kvm-pit':
      return { comm: `kvm-pit/${pid}`, pid: pid + 90, cpu: 0, flags: '.....' };
    case 'kworker':
      return { comm: 'kworker/0:1', pid: 61, cpu: 0, flags: '.....' };
    case 'qemu':
      return { comm: 'qemu-system-x86', pid, cpu: 1, flags: '.....' };
    case 'model':
      return { comm: 'timevisor', pid: 1, cpu: 0, flags: '.....' };
  }
}

/** Seconds.microseconds as trace_print_time prints them ("%5llu.%06lu"). */
export function traceTimestamp(ts: bigint): string {
  const us = ts / 1000n;
  return `${String(us / 1_000_000n).padStart(5)}.${String(us % 1_000_000n).padStart(6, '0')}`;
}

/** One model event as trace_pipe lines. */
export function tracePipeLines(ev: TraceEvent, vmOrder: readonly string[]): string[] {
  if (ev.ph === 'E') return [];
  const k = kernelEvent(ev.name);
  const t = hostTask(k.context, parseSource(ev.source, vmOrder));
  const head = `${t.comm.padStart(16)}-${String(t.pid).padEnd(7)} [${String(t.cpu).padStart(3, '0')}] ${t.flags} ${traceTimestamp(ev.ts)}: `;
  // the function tracer prints "func <-parent" with no event name in front
  return k.render(ev).map((r) => (r.event === 'function' ? head + r.text : `${head}${r.event}: ${r.text}`));
}
