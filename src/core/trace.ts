// One trace recorder that every model emits into. An event is named after the kernel, KVM or QEMU
// function it stands for (pit_timer_fn, kvm_guest_time_update, ...) and carries its parent path (the
// call chain above it, outermost first), the component that emitted it and the time base it was seen on.
//
// Off by default and close to free when off: callers test `trace.on` (a plain boolean field) before
// building any arguments, so a disabled recorder costs one property load per call site.
import type { Ns } from './time.ts';

export type TraceArgs = Record<string, string | number | boolean | bigint | null>;

export interface TraceEvent {
  /** Reference ("true") time of the event, ns. */
  ts: Ns;
  /** Function the event stands for, e.g. "kvm_guest_time_update". */
  name: string;
  /** Call chain above `name`, outermost first, e.g. ["vcpu_enter_guest", "kvm_guest_time_update"]' parents. */
  path: readonly string[];
  /** Emitting component, e.g. "host0/vm0/vcpu0" or "vm0/pit". */
  source: string;
  /** 'i' instant, 'B' begin of a span, 'E' end of a span (Perfetto/Chrome trace phases). */
  ph: 'i' | 'B' | 'E';
  args?: TraceArgs;
}

export interface TraceSink {
  push(ev: TraceEvent): void;
}

export class TraceRecorder {
  /** Check before emitting: `if (trace.on) trace.instant(...)`. */
  on: boolean;
  private readonly events: TraceEvent[] = [];
  private readonly limit: number;
  private dropped = 0;
  private readonly filter: ((name: string) => boolean) | null;

  constructor(opts: { enabled?: boolean; limit?: number; filter?: (name: string) => boolean } = {}) {
    this.on = opts.enabled ?? false;
    this.limit = opts.limit ?? 1_000_000;
    this.filter = opts.filter ?? null;
  }

  /** A recorder that is off and stays off: the default for models built without tracing. */
  static readonly off: TraceRecorder = Object.freeze(new TraceRecorder()) as TraceRecorder;

  instant(ts: Ns, source: string, name: string, path: readonly string[] = [], args?: TraceArgs): void {
    this.record({ ts, name, path, source, ph: 'i', ...(args ? { args } : {}) });
  }

  begin(ts: Ns, source: string, name: string, path: readonly string[] = [], args?: TraceArgs): void {
    this.record({ ts, name, path, source, ph: 'B', ...(args ? { args } : {}) });
  }

  end(ts: Ns, source: string, name: string, path: readonly string[] = [], args?: TraceArgs): void {
    this.record({ ts, name, path, source, ph: 'E', ...(args ? { args } : {}) });
  }

  private record(ev: TraceEvent): void {
    if (!this.on) return;
    if (this.filter && !this.filter(ev.name)) return;
    if (this.events.length >= this.limit) {
      this.dropped++;
      return;
    }
    this.events.push(ev);
  }

  /** Events recorded so far, in emission order. */
  get recorded(): readonly TraceEvent[] {
    return this.events;
  }

  /** Events not kept because the limit was reached. */
  get droppedCount(): number {
    return this.dropped;
  }

  clear(): void {
    this.events.length = 0;
    this.dropped = 0;
  }

  /**
   * Count events by full stack (path + name), as `perf script | stackcollapse` and ftrace's
   * function_graph summaries are read: "a;b;c count".
   */
  stackCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const ev of this.events) {
      if (ev.ph === 'E') continue;
      const key = [...ev.path, ev.name].join(';');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  }
}
