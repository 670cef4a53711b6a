// `timevisor kvm lapic --mode oneshot|periodic|tsc-deadline`: the micro-guest arms KVM's in-kernel LAPIC
// timer (x2APIC MSRs; TSC-deadline through MSR 0x6e0) and counts its interrupts; rate and lateness on
// the host clock. The twin runs the LAPIC timer model (devices/lapic-timer.ts) with the same register
// writes, the guest's handler taking TWIN_HANDLER_NS before it re-arms.
import { Engine } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { TraceRecorder } from '../core/index.ts';
import { noIrq } from '../devices/index.ts';
import { LapicTimer, MSR_IA32_TSC_DEADLINE, X2APIC_LVTT, X2APIC_TDCR, X2APIC_TMICT } from '../devices/index.ts';
import { formatCounts, HostTrace, probesFor, twinCounts } from './bpftrace.ts';
import { spanPeriods, TWIN_HANDLER_NS, TWIN_PAST_LAST_NS } from './exp-pit.ts';
import { buildGuest } from './guest-build.ts';
import { LiveKvm } from './kvm.ts';
import type { CpuidPolicy } from './cpuid.ts';
import { LiveMachine, MB } from './vmm.ts';

export type LapicMode = 'oneshot' | 'periodic' | 'tsc-deadline';
const MODE_BITS: Record<LapicMode, number> = { oneshot: 0, periodic: 1, 'tsc-deadline': 2 };

export interface LapicOptions {
  mode: LapicMode;
  /** Timer period (one-shot and TSC-deadline: from each re-arm). */
  periodUs: number;
  seconds: number;
  trace?: boolean;
  cpuid?: (tscKhz: number) => CpuidPolicy;
}

export interface LapicSide {
  interrupts: number;
  /** Interrupts per second over the window. */
  rateHz: number;
  /** Mean time between interrupts minus the programmed period (the re-arm and delivery cost). */
  meanExcessNs: Ns;
  traceCounts?: Record<string, number>;
}

export interface LapicReport {
  mode: LapicMode;
  periodNs: Ns;
  seconds: number;
  tscKhz: number;
  live: LapicSide & {
    latenessNs: { p50: Ns; p99: Ns; max: Ns };
    /** With --trace, periodic mode: periods from the host's first to last apic_timer_fn, plus one. */
    timerSpanPeriods?: number | null;
    otherTimers?: string[];
    /** With --trace: BPF program runs the kernel skipped (see HostTraceResult.bpfMisses). */
    bpfMisses?: number;
  };
  twin: LapicSide;
  trace?: { note: string | null; host: string; twin: string };
}

export function parseLapicMode(v: string): LapicMode {
  if (v === 'oneshot' || v === 'periodic' || v === 'tsc-deadline') return v;
  throw new InputError(`expected oneshot, periodic or tsc-deadline, got "${v}"`, '--mode');
}

const sortN = (xs: Ns[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

function side(times: readonly Ns[], start: Ns, windowNs: Ns, periodNs: Ns): LapicSide {
  const inWin = times.filter((t) => t > start && t <= start + windowNs);
  const n = inWin.length;
  const span = n > 1 ? inWin[n - 1]! - inWin[0]! : 0n;
  return {
    interrupts: n,
    rateHz: Number((BigInt(n) * 1_000_000_000_000n) / windowNs) / 1000,
    meanExcessNs: n > 1 ? span / BigInt(n - 1) - periodNs : 0n,
  };
}

export async function lapicExperiment(o: LapicOptions): Promise<LapicReport> {
  if (!Number.isFinite(o.periodUs) || o.periodUs < 50 || o.periodUs > 1_000_000)
    throw new InputError(`expected a period in 50..1000000 µs, got "${o.periodUs}"`, '--period-us');
  const periodNs = BigInt(Math.round(o.periodUs * 1000));
  const windowNs = BigInt(Math.round(o.seconds * 1e9));
  const k = LiveKvm.open();
  let trace: HostTrace | null = null;
  try {
    trace = o.trace ? await HostTrace.start(probesFor('lapic', process.pid, { msr6e0: o.mode === 'tsc-deadline' })) : null;
    const m = new LiveMachine(k, { guest: buildGuest('lapic'), params: [MODE_BITS[o.mode]], ...(o.cpuid ? { cpuid: o.cpuid } : {}) });
    const tscKhz = m.vcpu.getTscKhz(); // the guest TSC's rate: TSC-deadline deltas are in its cycles
    m.setParam(1, o.mode === 'tsc-deadline' ? Number((periodNs * BigInt(tscKhz)) / 1_000_000n) : Number(periodNs));
    m.start();
    await m.waitForLine(/^lapic started$/, 10_000);
    const start = m.markTimes[0]!;
    await new Promise((r) => setTimeout(r, Math.max(0, Number(start + windowNs - process.hrtime.bigint()) / 1e6 + 20)));
    await m.stop();
    const ticks = m.tickTimes;
    if (m.mailbox(MB.count) < ticks.length) throw new Error('the guest reported more interrupts than it counted');
    const live = side(ticks, start, windowNs, periodNs);
    // periodic: interrupt k is due at start + k·period; the others are re-armed from the handler, so
    // each interval's excess over the period is its lateness
    const late = ticks.map((t, i) =>
      o.mode === 'periodic' ? t - start - BigInt(i + 1) * periodNs : t - (i === 0 ? start : ticks[i - 1]!) - periodNs,
    );
    const s = sortN(late);
    const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))] ?? 0n;
    k.close(); // the LAPIC timer dies with the VM
    const tc = trace ? await trace.stop() : null;
    trace = null;
    // the twin runs until 100 µs after the host's last apic_timer_fn (or until the VM closed)
    const lastExpiry = tc?.scalars.get('last_apic_timer_fn');
    const runNs = lastExpiry !== undefined ? lastExpiry - start + TWIN_PAST_LAST_NS : process.hrtime.bigint() - start;
    const tscDeadlineCpuid = m.cpuidPolicy?.tscDeadlineTimer ?? true;
    const twin = simulateLapic({
      mode: o.mode,
      periodNs,
      seconds: o.seconds,
      tscKhz,
      stopNs: m.stoppedAt - start,
      runNs,
      tscDeadlineCpuid,
    });
    const keys = ['apic_timer_fn', 'kvm_hv_timer_state', ...(o.mode === 'tsc-deadline' ? ['kvm_msr'] : [])];
    // start_sw_timer traces kvm_hv_timer_state (arch/x86/kvm/lapic.c); kvm-pvm has no hv timer
    const tw = twinCounts(twin.events.recorded, keys, { kvm_hv_timer_state: ['start_sw_timer', 'start_hv_timer'] });
    return {
      mode: o.mode,
      periodNs,
      seconds: o.seconds,
      tscKhz,
      live: {
        ...live,
        latenessNs: { p50: q(0.5), p99: q(0.99), max: q(1) },
        ...(tc
          ? {
              traceCounts: Object.fromEntries(tc.counts),
              timerSpanPeriods: o.mode === 'periodic' ? spanPeriods(tc.scalars, 'apic_timer_fn', periodNs) : null,
              otherTimers: tc.ambiguous,
              bpfMisses: tc.bpfMisses,
            }
          : {}),
      },
      twin: { ...twin.side, ...(tc ? { traceCounts: Object.fromEntries(tw) } : {}) },
      ...(tc ? { trace: { note: tc.note, host: formatCounts(tc.counts), twin: formatCounts(tw) } } : {}),
    };
  } finally {
    trace?.kill();
    k.close();
  }
}

/**
 * The twin: the same register writes on the LAPIC timer model, the handler re-arming TWIN_HANDLER_NS
 * after each interrupt. kvm-pvm has no VMX preemption timer, so the model runs its software hrtimer
 * (apic_timer_fn); guest writes of MSR 0x6e0 are counted as kvm_msr events.
 */
export function simulateLapic(o: {
  mode: LapicMode;
  periodNs: Ns;
  seconds: number;
  tscKhz: number;
  stopNs?: Ns;
  runNs?: Ns;
  /** CPUID.1:ECX[24] as the guest sees it (KVM allows TSC-deadline mode only then). */
  tscDeadlineCpuid?: boolean;
}): {
  side: LapicSide;
  events: TraceRecorder;
} {
  const engine = new Engine();
  const trace = new TraceRecorder({ enabled: true });
  const times: Ns[] = [];
  const tsc = () => (engine.now * BigInt(o.tscKhz)) / 1_000_000n;
  const deltaTsc = (o.periodNs * BigInt(o.tscKhz)) / 1_000_000n;
  const wrmsr = (msr: number, v: bigint) => {
    if (msr === MSR_IA32_TSC_DEADLINE) trace.instant(engine.now, 'twin/vcpu', 'kvm_msr', [], { ecx: msr });
    lapic.msrWrite(msr, v);
  };
  const arm = () => {
    if (o.mode === 'tsc-deadline') wrmsr(MSR_IA32_TSC_DEADLINE, tsc() + deltaTsc);
    else wrmsr(X2APIC_TMICT, o.periodNs);
  };
  const lapic: LapicTimer = new LapicTimer({
    scheduler: engine,
    irq: noIrq,
    tscKhz: o.tscKhz,
    tsc,
    trace,
    name: 'twin/lapic',
    tscDeadlineCpuid: o.tscDeadlineCpuid ?? true,
    deliver: () => {
      if (o.stopNs !== undefined && engine.now >= o.stopNs) return; // a stopped vCPU handles nothing
      times.push(engine.now);
      if (o.mode !== 'periodic') engine.after(TWIN_HANDLER_NS, arm);
    },
  });
  lapic.setRunState('halted');
  wrmsr(X2APIC_TDCR, 0xbn);
  wrmsr(X2APIC_LVTT, BigInt((MODE_BITS[o.mode] << 17) | 0x40));
  arm();
  const windowNs = BigInt(Math.round(o.seconds * 1e9));
  engine.run(o.runNs ?? windowNs);
  return { side: side(times, 0n, windowNs, o.periodNs), events: trace };
}
