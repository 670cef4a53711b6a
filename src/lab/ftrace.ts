// Import of the guest kernel's function_graph trace (kernel/trace/trace_functions_graph.c output format)
// into timevisor's trace format: an entry "f() {" opens a span, "}" closes it, "f();" is a leaf call.
// Each call becomes an event named after the kernel function with its call chain as path, so
// TraceRecorder.stackCounts() gives the same "a;b;c count" layout as the simulation's traces.
import { TraceRecorder } from '../core/index.ts';

export interface FtraceImport {
  recorder: TraceRecorder;
  /** Lines that looked like trace lines but were not understood (kept for honesty, not silently dropped). */
  skipped: string[];
  calls: number;
}

// [abstime |] cpu) [task-pid] duration | function text
const LINE = /^\s*(?:(\d+)\.(\d+)\s*\|\s*)?(\d+)\)\s*(.*?)\|\s(.*)$/;

function parseTs(sec: string | undefined, frac: string | undefined, fallback: bigint): bigint {
  if (sec === undefined || frac === undefined) return fallback;
  const f = (frac + '000000000').slice(0, 9);
  return BigInt(sec) * 1_000_000_000n + BigInt(f);
}

function parseDurationUs(col: string): number | null {
  const m = /(\d+\.\d+)\s*us/.exec(col);
  return m ? Number(m[1]) : null;
}

/** Import function_graph text (the content of /sys/kernel/tracing/trace) into a recorder. */
export function importFunctionGraph(text: string | readonly string[], source = 'guest/ftrace'): FtraceImport {
  const lines = typeof text === 'string' ? text.split('\n') : text;
  const recorder = new TraceRecorder({ enabled: true });
  const skipped: string[] = [];
  const stack: string[] = [];
  let calls = 0;
  let seq = 0n;
  for (const raw of lines) {
    if (!raw.trim() || raw.trimStart().startsWith('#')) continue;
    const m = LINE.exec(raw);
    if (!m) {
      skipped.push(raw);
      continue;
    }
    const ts = parseTs(m[1], m[2], seq++);
    const cpu = Number(m[3]);
    const dur = parseDurationUs(m[4]!);
    const fn = m[5]!.trim();
    let c: RegExpExecArray | null;
    if ((c = /^([\w.$]+)\(\)\s*\{$/.exec(fn))) {
      recorder.begin(ts, source, c[1]!, [...stack], { cpu });
      stack.push(c[1]!);
      calls++;
    } else if ((c = /^([\w.$]+)\(\);$/.exec(fn))) {
      recorder.instant(ts, source, c[1]!, [...stack], dur === null ? { cpu } : { cpu, duration_us: dur });
      calls++;
    } else if (/^\}/.test(fn)) {
      const name = stack.pop();
      if (name !== undefined) recorder.end(ts, source, name, [...stack], dur === null ? { cpu } : { cpu, duration_us: dur });
    } else if (/^\/\*|^=>|^-{3,}|^<idle>|^\S+-\d+\s+=>/.test(fn)) {
      // comments (trace_printk, /* name */ after "}"), task switch markers: not calls
    } else {
      skipped.push(raw);
    }
  }
  return { recorder, skipped, calls };
}

/** Stack counts as sorted "a;b;c count" lines (the layout the simulation's traces print). */
export function formatStackCounts(counts: Map<string, number>): string[] {
  return [...counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([k, v]) => `${k} ${v}`);
}
