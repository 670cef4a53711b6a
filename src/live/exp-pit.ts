// `timevisor kvm pit`: the micro-guest programs PIT channel 0 (mode 2, divisor = round(1193182 / hz)) on
// KVM's in-kernel PIT and counts IRQ0; delivered vs expected ticks in the first `seconds` after the count
// was loaded (the guest marks it with a port write), with or without busy host threads
// competing, and the kvm-pit/<pid> kthread that pit_do_work runs on. Its twin runs the device model of
// KVM's PIT (devices/pit.ts) for the same time in the simulation.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Engine } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import { NSEC_PER_SEC, type Ns } from '../core/index.ts';
import { TraceRecorder } from '../core/index.ts';
import { RecordingIrq } from '../devices/index.ts';
import { PIT_FREQ } from '../devices/index.ts';
import { KvmPit } from '../hypervisor/index.ts';
import { formatCounts, HostTrace, probesFor, twinCounts } from './bpftrace.ts';
import { buildGuest } from './guest-build.ts';
import { LiveKvm } from './kvm.ts';
import { startBusy, stopBusy } from './load.ts';
import { readPitState } from './pit-state.ts';
import type { CpuidPolicy } from './cpuid.ts';
import { LiveMachine, MB } from './vmm.ts';

export interface PitOptions {
  hz: number;
  seconds: number;
  reinject: boolean;
  /** Busy host threads competing for the CPUs while the guest runs. */
  busy: number;
  trace?: boolean;
  cpuid?: (tscKhz: number) => CpuidPolicy;
}

export interface PitSide {
  /**
   * IRQ0s the guest got for the periods that ended in the window: with reinject on, the first `expected`
   * it handled before the stop (the k-th answers the k-th expiry, however late); off, those inside the window.
   */
  delivered: number;
  /** PIT periods that ended in the window. */
  expected: number;
  /** pit_timer_fn expiries and kvm_set_irq raises over the whole run (load to VM close). */
  traceCounts?: Record<string, number>;
}

export interface PitReport {
  hz: number;
  divisor: number;
  /** create_pit_timer's interval: divisor * 1e9 / 1193182, truncated. */
  periodNs: Ns;
  seconds: number;
  reinject: boolean;
  busy: number;
  live: PitSide & {
    /** IRQ0s the guest handled inside the window (what its tick count read at the window's end). */
    inWindow: number;
    /** With --trace: PIT periods from the host's first to last pit_timer_fn, plus one (= expiries if one per period). */
    timerSpanPeriods?: number | null;
    /** With --trace: other hrtimers running pit_timer_fn on this host (another VM's PIT), if any. */
    otherTimers?: string[];
    /** With --trace: BPF program runs the kernel skipped (HostTraceResult.bpfMisses). */
    bpfMisses?: number;
    /** Host time from each PIT expiry (load + k·period) to the guest's TICK_PORT write for it. */
    latenessNs: { p50: Ns; p99: Ns; max: Ns };
    /** Channel 0 as KVM_GET_PIT2 reported it. */
    channel0: { mode: number; count: number };
    /** The kthread pit_do_work ran on, as /proc shows it. */
    kvmPitThread: string | null;
    /** What the twin simulates (ns after the load): with --trace, to TWIN_PAST_LAST_NS past the host's last pit_timer_fn. */
    runNs: Ns;
    /** When the vCPU was stopped (ns after the load): no EOI after it. */
    stopNs: Ns;
  };
  twin: PitSide;
  trace?: { note: string | null; host: string; twin: string };
}

/** Periods from the first to the last expiry of `key`'s timer, plus one, or null. */
export function spanPeriods(scalars: Map<string, bigint>, key: string, periodNs: Ns): number | null {
  const [a, b] = [scalars.get(`first_${key}`), scalars.get(`last_${key}`)];
  return a === undefined || b === undefined ? null : Number((b - a + periodNs / 2n) / periodNs) + 1;
}

export function pitDivisor(hz: number): number {
  if (!Number.isFinite(hz) || hz < 19 || hz > 10_000) throw new InputError(`expected a rate in 19..10000 Hz, got "${hz}"`, '--hz');
  return Math.round(Number(PIT_FREQ) / hz);
}

/** The kernel thread KVM created for this process's PIT (kvm_create_pit: "kvm-pit/%d"). */
export function findKvmPitThread(pid = process.pid): string | null {
  const want = `kvm-pit/${pid}`;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === want) return `${want} (pid ${d})`;
    } catch {
      // the task went away while we looked
    }
  }
  return null;
}

const quantile = (xs: Ns[], q: number): Ns => {
  if (xs.length === 0) return 0n;
  const s = [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** The live run. */
export async function livePit(o: PitOptions): Promise<
  Omit<PitReport, 'twin' | 'trace'> & {
    traceCounts?: Map<string, number>;
    traceNote?: string | null;
    timerSpanPeriods?: number | null;
    ambiguous?: string[];
    bpfMisses?: number;
  }
> {
  const divisor = pitDivisor(o.hz);
  const periodNs = (BigInt(divisor) * NSEC_PER_SEC) / PIT_FREQ;
  const windowNs = BigInt(Math.round(o.seconds * 1e9));
  const k = LiveKvm.open();
  let trace: HostTrace | null = null;
  let busy: ChildProcess[] = [];
  try {
    trace = o.trace ? await HostTrace.start(probesFor('pit', process.pid)) : null;
    busy = await startBusy(o.busy, o.seconds * 1000 + 3000);
    const m = new LiveMachine(k, {
      guest: buildGuest('pit'),
      params: [divisor],
      pit: { reinject: o.reinject },
      ...(o.cpuid ? { cpuid: o.cpuid } : {}),
    });
    m.start();
    await m.waitForLine(/^pit started$/, 10_000);
    const ch0 = readPitState(m.vm).channels[0]!;
    // KVM_GET_PIT2 leaves channel 0's count_load_time at 0 (its hrtimer keeps the time): the guest's
    // MARK_PORT write right after loading the count is the start, a few emulated instructions late.
    const load = m.markTimes[0]!;
    const expected = Number(windowNs / periodNs);
    await new Promise((r) => setTimeout(r, Math.max(0, Number(load + windowNs - process.hrtime.bigint()) / 1e6 + 50)));
    // with reinject on, give a backlog of pending ticks up to a second to drain (one per EOI)
    for (let i = 0; o.reinject && i < 100 && m.tickTimes.length < expected; i++) await new Promise((r) => setTimeout(r, 10));
    await m.stop();
    const stopNs = m.stoppedAt - load;
    const kvmPitThread = findKvmPitThread();
    const inWindow = m.tickTimes.filter((t) => t > load && t <= load + windowNs).length;
    // reinject on: the k-th IRQ0 answers the k-th expiry, so the periods of the window got theirs if the
    // guest handled that many before the stop; off: no pairing, only what came inside the window counts
    const delivered = o.reinject ? Math.min(m.tickTimes.length, expected) : inWindow;
    const total = m.mailbox(MB.count);
    // Lateness: with reinject on, tick k (1-based) answers expiry k; with it off a dropped tick breaks
    // that pairing, so each tick is set against the nearest expiry. The mark is a few µs after the real
    // load, so a punctual tick can read slightly negative.
    const lateness = m.tickTimes.map((t, i) => {
      const since = t - load;
      const k = o.reinject ? BigInt(i + 1) : (since + periodNs / 2n) / periodNs;
      return since - k * periodNs;
    });
    k.close(); // destroys the PIT
    const tc = trace ? await trace.stop() : null;
    trace = null;
    // the twin runs until 100 µs after the host's last pit_timer_fn (or until the VM closed)
    const lastExpiry = tc?.scalars.get('last_pit_timer_fn');
    const runNs = lastExpiry !== undefined ? lastExpiry - load + TWIN_PAST_LAST_NS : process.hrtime.bigint() - load;
    if (total < m.tickTimes.length) throw new Error(`guest counted ${total} IRQ0s but reported ${m.tickTimes.length}`);
    return {
      hz: o.hz,
      divisor,
      periodNs,
      seconds: o.seconds,
      reinject: o.reinject,
      busy: o.busy,
      live: {
        delivered,
        expected,
        inWindow,
        latenessNs: { p50: quantile(lateness, 0.5), p99: quantile(lateness, 0.99), max: quantile(lateness, 1) },
        channel0: { mode: ch0.mode, count: ch0.count },
        kvmPitThread,
        runNs,
        stopNs,
      },
      ...(tc
        ? {
            traceCounts: tc.counts,
            traceNote: tc.note,
            timerSpanPeriods: spanPeriods(tc.scalars, 'pit_timer_fn', periodNs),
            ambiguous: tc.ambiguous,
            bpfMisses: tc.bpfMisses,
          }
        : {}),
    };
  } finally {
    trace?.kill(); // an error before the counts were read: bpftrace must not outlive us
    stopBusy(busy);
    k.close();
  }
}

/** The in-kernel PIT as the twin builds it: KVM's (src/hypervisor/kvm-pit.ts, arch/x86/kvm/i8254.c). */
function twinKvmPit(engine: Engine, irq: RecordingIrq, reinject: boolean, trace: TraceRecorder): KvmPit {
  return new KvmPit({ scheduler: engine, irq, reinject, trace, name: 'twin/pit' });
}

/**
 * The twin runs to the host's last timer callback plus this: the host's expiry is at or before its
 * callback, and the twin's, counted from the guest's mark, a few µs after the real load.
 */
export const TWIN_PAST_LAST_NS = 100_000n;

/** Time the twin's guest takes from IRQ0 to its EOI (a dozen emulated instructions at ~0.5 µs). */
export const TWIN_HANDLER_NS = 10_000n;

/** The twin: the guest's port writes at t = 0, its handler EOIs TWIN_HANDLER_NS after each IRQ0. */
export function simulatePit(o: { hz: number; seconds: number; reinject: boolean; runNs?: Ns; stopNs?: Ns }): PitSide & {
  events: TraceRecorder;
} {
  const divisor = pitDivisor(o.hz);
  const windowNs = BigInt(Math.round(o.seconds * 1e9));
  const engine = new Engine();
  const trace = new TraceRecorder({ enabled: true });
  const irq = new RecordingIrq();
  const pit = twinKvmPit(engine, irq, o.reinject, trace);
  const delivered: Ns[] = [];
  const stopNs = o.stopNs ?? null;
  irq.onChange = (level) => {
    if (!level || (stopNs !== null && engine.now >= stopNs)) return; // a stopped vCPU takes no interrupt
    delivered.push(engine.now);
    engine.after(TWIN_HANDLER_NS, () => {
      irq.ack();
      pit.ackIrq();
    });
  };
  // the guest: mode 2, lobyte/hibyte (pit.S)
  pit.portWrite(0x43, 1, 0x34);
  pit.portWrite(0x40, 1, divisor & 0xff);
  pit.portWrite(0x40, 1, divisor >> 8);
  const periodNs = (BigInt(divisor) * NSEC_PER_SEC) / PIT_FREQ;
  engine.run(o.runNs ?? windowNs);
  return {
    delivered: delivered.filter((t) => t <= windowNs).length,
    expected: Number(windowNs / periodNs),
    events: trace,
  };
}

export async function pitExperiment(o: PitOptions): Promise<PitReport> {
  const live = await livePit(o);
  const twin = simulatePit({ ...o, runNs: live.live.runNs, stopNs: live.live.stopNs });
  const keys = ['kvm_set_irq', 'pit_timer_fn'];
  const tw = twinCounts(twin.events.recorded, keys);
  const { traceCounts, traceNote, timerSpanPeriods, ambiguous, bpfMisses, ...rest } = live;
  return {
    ...rest,
    live: {
      ...rest.live,
      ...(traceCounts
        ? {
            traceCounts: Object.fromEntries(traceCounts),
            timerSpanPeriods: timerSpanPeriods ?? null,
            otherTimers: ambiguous ?? [],
            bpfMisses: bpfMisses ?? 0,
          }
        : {}),
    },
    twin: { delivered: twin.delivered, expected: twin.expected, traceCounts: Object.fromEntries(tw) },
    ...(traceCounts ? { trace: { note: traceNote ?? null, host: formatCounts(traceCounts), twin: formatCounts(tw) } } : {}),
  };
}
