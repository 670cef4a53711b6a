// The serial line protocol between the lab's /init (init.ts) and the host. The guest writes lines that
// start with "@tv ": "@tv ready", "@tv ok <cmd>", "@tv error <text>", "@tv chrony <log line>",
// "@tv qga <log line>", and blocks "@tv begin <kind> [id]" … "@tv end <kind> [id]" holding the raw output
// of a reader (timer_list, adjtimex, dmesg, ftrace). Everything else on the port is console noise
// (kernel messages before init silenced printk) and is kept as the console log.
import { InputError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';

export type SerialMessage =
  | { kind: 'line'; tag: string; text: string /** host time the line arrived (with a clock) */; at?: bigint }
  | { kind: 'block'; tag: string; id: string; lines: string[] /** host time its first line arrived */; firstLineAt?: bigint };

/** Splits the serial byte stream into protocol messages; console lines go to `console`. */
export class LineProtocolParser {
  readonly console: string[] = [];
  private partial = '';
  private block: { tag: string; id: string; lines: string[]; firstLineAt?: bigint } | null = null;

  constructor(
    private readonly onMessage: (m: SerialMessage) => void,
    /** Host clock used to stamp when a block's first line (or a tagged line) arrives (the guest reads, then prints at once). */
    private readonly now: (() => bigint) | null = null,
  ) {}

  push(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const raw of lines) this.line(raw.replace(/\r/g, ''));
  }

  private line(l: string): void {
    const at = l.indexOf('@tv ');
    if (at < 0) {
      if (this.block) {
        if (this.block.lines.length === 0 && this.now) this.block.firstLineAt = this.now();
        this.block.lines.push(l);
      } else this.console.push(l);
      return;
    }
    const body = l.slice(at + 4);
    const sp = body.indexOf(' ');
    const tag = sp < 0 ? body : body.slice(0, sp);
    const rest = sp < 0 ? '' : body.slice(sp + 1);
    if (tag === 'begin') {
      const [kind = '', id = ''] = rest.split(' ');
      this.block = { tag: kind, id, lines: [] };
    } else if (tag === 'end' && this.block) {
      const b = this.block;
      this.block = null;
      this.onMessage({
        kind: 'block',
        tag: b.tag,
        id: b.id,
        lines: b.lines,
        ...(b.firstLineAt !== undefined ? { firstLineAt: b.firstLineAt } : {}),
      });
    } else {
      this.onMessage({ kind: 'line', tag, text: rest, ...(this.now ? { at: this.now() } : {}) });
    }
  }
}

/** One sample of the guest's clocks, all from one read of /proc/timer_list (plus adjtimex right after). */
export interface GuestClockSample {
  /** CLOCK_MONOTONIC (ktime_get), ns. */
  monotonicNs: Ns;
  /** CLOCK_REALTIME = monotonic + offs_real, ns. */
  realtimeNs: Ns;
  /** CLOCK_BOOTTIME = monotonic + offs_boot, ns. */
  boottimeNs: Ns;
  /** adjtimex(2): status word, offset (µs), freq (scaled ppm, 2^-16), return value (TIME_OK=0 … TIME_ERROR=5). */
  adjtimex: { status: number; offsetUs: number; freq: number; maxerror: number; esterror: number; timeUs: bigint; ret: number };
  /** /proc/uptime first field, s (10 ms granularity). */
  uptimeS: number;
}

/**
 * Parse a clock block: `grep -E '^now at|get_time|offset' /proc/timer_list`, busybox `adjtimex` and
 * /proc/uptime. Base offsets are taken from the first CPU's hrtimer bases (timer_list prints them in base
 * order: ktime_get, ktime_get_real, ktime_get_boottime, ktime_get_clocktai).
 */
export function parseClockBlock(lines: readonly string[]): GuestClockSample {
  let now: bigint | null = null;
  const offsets = new Map<string, bigint>();
  let pendingGetTime: string | null = null;
  const adj: Record<string, string> = {};
  let uptime = NaN;
  for (const l of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^now at (\d+) nsecs/.exec(l))) now = BigInt(m[1]!);
    else if ((m = /\.get_time:\s+(\S+)/.exec(l))) pendingGetTime = m[1]!;
    else if ((m = /\.offset:\s+(-?\d+) nsecs/.exec(l)) && pendingGetTime) {
      if (!offsets.has(pendingGetTime)) offsets.set(pendingGetTime, BigInt(m[1]!));
      pendingGetTime = null;
    } else if ((m = /^\s*(?:-\w\s+)?([a-z.\s_]+?):\s+(-?\d+)/.exec(l))) adj[m[1]!.trim()] = m[2]!;
    else if ((m = /^(\d+\.\d+)\s+\d+\.\d+$/.exec(l.trim()))) uptime = Number(m[1]);
  }
  const real = offsets.get('ktime_get_real');
  const boot = offsets.get('ktime_get_boottime');
  if (now === null || real === undefined || boot === undefined) {
    throw new InputError(`clock report incomplete (now=${now}, offs_real=${real}, offs_boot=${boot})`, 'guest serial');
  }
  const num = (k: string) => Number(adj[k] ?? NaN);
  return {
    monotonicNs: now,
    realtimeNs: now + real,
    boottimeNs: now + boot,
    adjtimex: {
      status: num('status'),
      offsetUs: num('offset'),
      freq: num('freq.adjust'),
      maxerror: num('maxerror'),
      esterror: num('esterror'),
      timeUs: BigInt(adj['time.tv_sec'] ?? '0') * 1_000_000n + BigInt(adj['time.tv_usec'] ?? '0'),
      ret: num('return value'),
    },
    uptimeS: uptime,
  };
}

/** key=value lines of the `sys` block. */
export function parseKeyValues(lines: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of lines) {
    const eq = l.indexOf('=');
    if (eq > 0) out[l.slice(0, eq)] = l.slice(eq + 1).trim();
  }
  return out;
}
