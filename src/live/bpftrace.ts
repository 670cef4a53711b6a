// `--trace`: the host's real bpftrace (Debian package bpftrace, root) on KVM's and the timer core's
// tracepoints while a live experiment runs, filtered to this process's VM, and its counts in bpftrace's
// own `@[key]: N` layout, so they print beside the twin's trace counts (twinCounts) in the same form.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { UnavailableError } from '../core/index.ts';
import type { TraceEvent } from '../core/index.ts';

const TRACEFS = '/sys/kernel/tracing';
/** kill(STOP_PID, 0) from this process tells the script to exit (no such process: the call only fails). */
const STOP_PID = 2_147_483_646;

/** Why --trace cannot run here, or null. */
export function bpftraceMissing(): string | null {
  if (process.getuid?.() !== 0) return 'bpftrace needs root';
  const r = spawnSync('bpftrace', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return 'bpftrace not found (Debian package bpftrace)';
  return null;
}

/** bpftrace attaches tracepoints through tracefs; mount it where the kernel documents it if absent. */
function ensureTracefs(): string | null {
  if (existsSync(`${TRACEFS}/events`)) return null;
  const r = spawnSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { encoding: 'utf8' });
  if (r.status !== 0) throw new UnavailableError('tracefs is not mounted', `mount -t tracefs nodev ${TRACEFS}: ${(r.stderr || '').trim()}`);
  return `mounted tracefs at ${TRACEFS}`;
}

/** One counted probe: its bpftrace clause, counting into @["key"]. */
export interface Probe {
  key: string;
  clause: string;
}

/** The probes an experiment counts, filtered to process `pid` (its vCPU threads and its kvm-pit kthread). */
export function probesFor(kind: 'pit' | 'lapic' | 'kvmclock' | 'rtc', pid: number, opts: { msr6e0?: boolean } = {}): Probe[] {
  const own = `pid == ${pid}`;
  // Timer expiries are counted per hrtimer, filtered by callback only: a BPF program that fires while
  // another runs on the same CPU is skipped (bpf_prog_active), so a hot hrtimer_start probe to learn
  // our hrtimer's address would lose expiries. stop() keeps the one hrtimer (ours, unless another VM
  // on this host runs the same timer: then it reports them all).
  const timerOf = (fn: string, key: string): Probe[] => [
    {
      key,
      clause: `tracepoint:timer:hrtimer_expire_entry /args->function == kaddr("${fn}")/ { @n_${key}[args->hrtimer] = count(); if (@first_${key}[args->hrtimer] == 0) { @first_${key}[args->hrtimer] = nsecs; } @last_${key}[args->hrtimer] = nsecs; }`,
    },
  ];
  switch (kind) {
    case 'pit':
      return [
        ...timerOf('pit_timer_fn', 'pit_timer_fn'),
        // pit_do_work raises then lowers GSI 0 from the kvm-pit/<pid> kthread: count the raises
        {
          key: 'kvm_set_irq',
          clause: `tracepoint:kvm:kvm_set_irq /comm == "kvm-pit/${pid}" && args->gsi == 0 && args->level == 1/ { @["kvm_set_irq"] = count(); }`,
        },
      ];
    case 'lapic':
      return [
        ...timerOf('apic_timer_fn', 'apic_timer_fn'),
        { key: 'kvm_hv_timer_state', clause: `tracepoint:kvm:kvm_hv_timer_state /${own}/ { @["kvm_hv_timer_state"] = count(); }` },
        // only where the guest writes MSR 0x6e0: this probe runs on every MSR exit (the guest's EOIs), and
        // each run is a window in which a timer expiry's program is skipped
        ...(opts.msr6e0
          ? [
              {
                key: 'kvm_msr',
                clause: `tracepoint:kvm:kvm_msr /${own} && args->write == 1 && args->ecx == 0x6e0/ { @["kvm_msr"] = count(); }`,
              },
            ]
          : []),
      ];
    case 'kvmclock':
      return [
        {
          key: 'kvm_msr',
          clause: `tracepoint:kvm:kvm_msr /${own} && args->write == 1 && args->ecx == 0x4b564d01/ { @["kvm_msr"] = count(); }`,
        },
        { key: 'kvm_pvclock_update', clause: `tracepoint:kvm:kvm_pvclock_update /${own}/ { @["kvm_pvclock_update"] = count(); }` },
        { key: 'kvm_write_tsc_offset', clause: `tracepoint:kvm:kvm_write_tsc_offset /${own}/ { @["kvm_write_tsc_offset"] = count(); }` },
        {
          key: 'kvm_update_master_clock',
          clause: `tracepoint:kvm:kvm_update_master_clock /${own}/ { @["kvm_update_master_clock"] = count(); }`,
        },
      ];
    case 'rtc':
      return [{ key: 'kvm_pio', clause: `tracepoint:kvm:kvm_pio /${own} && args->port == 0x71/ { @["kvm_pio"] = count(); }` }];
  }
}

export interface HostTraceResult {
  counts: Map<string, number>;
  /** first_KEY / last_KEY: the timer's first and last expiry (host CLOCK_MONOTONIC ns). */
  scalars: Map<string, bigint>;
  /** Timers whose expiries were counted under one key, when there was more than one (another VM). */
  ambiguous: string[];
  /**
   * Runs the kernel skipped across bpftrace's programs (fdinfo recursion_misses): a program that fires
   * while another BPF program runs on the same CPU is not run (bpf_prog_active), so its event is not counted.
   */
  bpfMisses: number;
  note: string | null;
}

/** A running bpftrace; stop() ends it and parses its maps. */
export class HostTrace {
  private out = '';
  private err = '';
  private readonly exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly keys: string[],
    private readonly note: string | null,
  ) {
    child.stdout!.on('data', (d) => (this.out += d));
    child.stderr!.on('data', (d) => (this.err += d));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(probes: Probe[]): Promise<HostTrace> {
    const missing = bpftraceMissing();
    if (missing) throw new UnavailableError('cannot trace the host', missing);
    const note = ensureTracefs();
    // BEGIN runs once every other probe is attached (bpftrace prints "Attaching N probes..." before);
    // END prints a sentinel before bpftrace prints its maps: without it the counts were never printed.
    // The script exits from inside when this process calls kill(STOP_PID, 0): SIGINT to bpftrace was
    // seen to hang for a minute on a loaded host.
    const script = [
      'BEGIN { printf("timevisor: attached\\n"); }',
      ...probes.map((p) => p.clause),
      `tracepoint:syscalls:sys_enter_kill /pid == ${process.pid} && args->pid == ${STOP_PID} && args->sig == 0/ { exit(); }`,
      // and when this process's main thread exits (killed by a signal included): never an orphan tracer
      `tracepoint:sched:sched_process_exit /pid == ${process.pid} && tid == ${process.pid}/ { exit(); }`,
      'END { printf("timevisor: end\\n"); }',
    ].join('\n');
    const child = spawn('bpftrace', ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const t = new HostTrace(
      child,
      probes.filter((p) => p.key).map((p) => p.key),
      note,
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new UnavailableError('bpftrace did not attach', t.err.trim().split('\n').at(-1) ?? 'timeout')),
        20_000,
      );
      const check = () => {
        if (t.out.includes('timevisor: attached')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      void t.exited.then((code) => {
        clearTimeout(timer);
        const lines = t.err.split('\n').filter((l) => l.trim() && !/RLIMIT_MEMLOCK/.test(l));
        reject(
          new UnavailableError('bpftrace failed', lines.find((l) => /ERROR/.test(l))?.trim() ?? lines.at(-1)?.trim() ?? `exit ${code}`),
        );
      });
    });
    return t;
  }

  /** Sum of recursion_misses over bpftrace's loaded programs (read while they are still loaded). */
  private recursionMisses(): number {
    let n = 0;
    const dir = `/proc/${this.child.pid}/fdinfo`;
    try {
      for (const fd of readdirSync(dir)) {
        const m = /^recursion_misses:\s+(\d+)$/m.exec(readFileSync(`${dir}/${fd}`, 'utf8'));
        if (m) n += Number(m[1]);
      }
    } catch {
      // the fd went away while we read: counted what was there
    }
    return n;
  }

  async stop(): Promise<HostTraceResult> {
    const bpfMisses = this.recursionMisses();
    try {
      process.kill(STOP_PID, 0);
    } catch {
      // ESRCH, as intended: the probe saw the call
    }
    // a script that has not exited after 20 s gets SIGINT, after a minute SIGKILL (then no counts)
    const int = setTimeout(() => this.child.kill('SIGINT'), 20_000);
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 60_000);
    await this.exited;
    clearTimeout(int);
    clearTimeout(kill);
    if (!this.out.includes('timevisor: end'))
      throw new UnavailableError('bpftrace ended without printing its counts', this.err.trim().split('\n').at(-1) ?? 'killed after 60 s');
    const counts = new Map<string, number>(this.keys.map((k) => [k, 0]));
    for (const m of this.out.matchAll(/^@\[(.+)\]: (\d+)$/gm)) counts.set(m[1]!, Number(m[2]));
    const scalars = new Map<string, bigint>();
    const ambiguous: string[] = [];
    const perTimer = new Map<string, Map<string, bigint>>();
    for (const m of this.out.matchAll(/^@(n|first|last)_(\w+)\[(\w+)\]: (\d+)$/gm)) {
      const [kind, key, timer, v] = [m[1]!, m[2]!, m[3]!, BigInt(m[4]!)];
      if (!perTimer.has(key)) perTimer.set(key, new Map());
      if (kind === 'n') perTimer.get(key)!.set(timer, v);
      else scalars.set(`${kind}_${key}@${timer}`, v);
    }
    for (const [key, timers] of perTimer) {
      if (timers.size > 1) ambiguous.push(`${key}: ${[...timers].map(([t, n]) => `${t} ${n}`).join(', ')}`);
      // the busiest timer is ours when there is only one; with several, the report says so
      const [timer, n] = [...timers].sort((a, b) => (a[1] > b[1] ? -1 : 1))[0]!;
      counts.set(key, Number(n));
      for (const kind of ['first', 'last']) {
        const v = scalars.get(`${kind}_${key}@${timer}`);
        if (v !== undefined) scalars.set(`${kind}_${key}`, v);
      }
    }
    return { counts, scalars, ambiguous, bpfMisses, note: this.note };
  }

  /** Kill without reading (error paths). */
  kill(): void {
    this.child.kill('SIGKILL');
  }
}

/**
 * Count a twin's trace events for the keys the host trace counts. A key counts the events of its own
 * name, or of the model functions `aliases` lists for it (the model names KVM's functions, the host
 * names their tracepoints: kvm_pvclock_update is traced in kvm_guest_time_update).
 */
export function twinCounts(events: readonly TraceEvent[], keys: string[], aliases: Record<string, string[]> = {}): Map<string, number> {
  const byName = new Map<string, string>();
  for (const k of keys) for (const n of aliases[k] ?? [k]) byName.set(n, k);
  const m = new Map<string, number>(keys.map((k) => [k, 0]));
  for (const e of events) {
    const k = byName.get(e.name);
    if (k !== undefined) m.set(k, m.get(k)! + 1);
  }
  return m;
}

/** bpftrace's map layout: `@[key]: N`, one per line, in key order. */
export function formatCounts(counts: Map<string, number>): string {
  return [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `@[${k}]: ${v}`)
    .join('\n');
}
