// The run's summary: per host and per VM, what summary.json holds (integer ns as strings).
import { VMCLOCK_COUNTER_X86_TSC, vmclockReadNs } from '../core/index.ts';
import { dmesgLines, type LogLine } from '../guest/index.ts';
import { vmgenidChanges } from './moves.ts';
import { runKvmclockTest, type WarpCount } from '../vmm/index.ts';
import type { VmRun } from './vm-run.ts';
import type { World } from './world.ts';

export interface PauseSummary {
  at_s: number;
  duration_s: number;
  /** Guest REALTIME offset just before the pause and right after resume, ns (null: still paused at the end). */
  offset_before_ns: string;
  offset_after_resume_ns: string | null;
  /** How far guest CLOCK_MONOTONIC advanced across the pause, ns (null: still paused at the end). */
  monotonic_advance_ns: string | null;
  /** Guest offset when the sync (if any) had acted: agent set-time or the first NTP poll after resume. */
  offset_after_sync_ns: string | null;
}

/** One thing that happened to a VM's clocks, with what the guest saw and a plain-language verdict. */
export interface VmEvent {
  kind: 'pause' | 'snapshot' | 'restore' | 'migration' | 'host_step' | 'sync';
  at_s: number;
  /** Guest REALTIME minus true UTC before and after, ns (null where there is no after: a save, a stop past the end). */
  offset_before_ns: string;
  offset_after_ns: string | null;
  /** How far guest CLOCK_MONOTONIC advanced across the event, ns (null where it does not apply). */
  monotonic_advance_ns: string | null;
  /** Restores and migrations of a VM with a VMGenID device: whether the guest saw a new generation. */
  vmgenid_changed?: boolean;
  verdict: string;
}

export interface VmSummary {
  name: string;
  host: string;
  profile: string;
  kernel: string;
  clocksource: string;
  wall_clock_source: string;
  sync: string;
  boot_at_s: number;
  initial_offset_ns: string;
  final_offset_ns: string;
  max_abs_offset_ns: string;
  /** Rate of the guest clock against true time over the last sample interval, ppm. */
  drift_ppm: number;
  /** The guest's /proc/stat steal summed over its vCPUs, ns: host CPU time its vCPU threads waited for. */
  steal_ns: string;
  pauses: PauseSummary[];
  events: VmEvent[];
  final_clocksource: string;
  /** With a VMClock device: what the guest reads in it at the end (precise: its time minus true UTC). */
  vmclock?: { disruption_marker: string; vm_generation_counter: string; clock_status: number; time_offset_ns: string | null };
  /** With a VMGenID device: how many new generations the guest saw (each reseeded its CRNG). */
  vmgenid_changes?: number;
  /** What the guest kernel printed after boot (dmesg lines after its first 3 s), e.g. the watchdog's verdicts. */
  kernel_log: string[];
  /** With sync method chrony: `chronyc tracking` at the end of the run. */
  chrony?: ChronyTrackingSummary;
  /** With sync method chrony: the clock updates chronyd made (steps, and the slews it started). */
  chrony_updates?: ChronyEventSummary[];
  /** Timer interrupts the guest took (PIT IRQ0, LAPIC timer), count as a string. */
  timer_irqs: string;
  /** Timer ticks lost: interrupts coalesced with one still pending, and periods a one-shot tick device skipped. */
  ticks_lost: string;
  /** PIT ticks KVM reinjected after the guest acknowledged the previous one. */
  ticks_reinjected: string;
  /** Longest wait from a timer interrupt's request to the guest taking it, ns. */
  max_timer_lateness_ns: string;
  /** Distribution of that wait over every timer interrupt taken, ns; nearest-rank percentiles (the smallest value
   *  with at least ceil(p/100·n) values ≤ it), exact (log2-bucketed past 4096 distinct values). */
  timer_lateness_ns: { p50: string; p90: string; p99: string; max: string };
  /** With vms[].kvmclock_test: the cross-vCPU kvmclock check on this VM's vCPUs and host (src/vmm/kvmclock-test.ts). */
  kvmclock_warps?: KvmclockWarpsSummary;
  /** With vms[].rdtsc_exiting: what the trapping did (vCPU 0) and what a clock_gettime costs. */
  rdtsc_exiting?: RdtscExitingSummary;
}

/** kvm-unit-tests kvmclock_test's figures per reader: warps, stalls, the worst warp (ns, negative). */
export interface WarpSummary {
  warps: number;
  stalls: number;
  worst_warp_ns: string;
}

export interface KvmclockWarpsSummary {
  vcpus: number;
  reads: number;
  master_clock: boolean;
  tsc_stable: boolean;
  host_tsc_unstable: boolean;
  /** PVCLOCK_RAW_CYCLE_BIT: no last_value guard. */
  raw: WarpSummary;
  /** The kernel's read: the last_value guard unless the record has PVCLOCK_TSC_STABLE_BIT. */
  monotonic: WarpSummary;
}

export interface RdtscExitingSummary {
  exit_cost_ns: string;
  offset_compensation: boolean;
  rate_per_s: number;
  /** Exit time taken out of vCPU 0's TSC offset by the end (offset compensation), ns at the TSC's rate. */
  tsc_hidden_ns: string;
  /** clock_gettime(CLOCK_MONOTONIC) on the final clocksource: real cost and what the guest's clocks measure of it. */
  clock_gettime_ns: number;
  clock_gettime_measured_ns: number;
}

/** `chronyc tracking`'s figures, seconds and ppm with chronyc's signs (system_time_s: + = clock fast). */
export interface ChronyTrackingSummary {
  reference_id: string;
  stratum: number;
  system_time_s: number;
  last_offset_s: number;
  rms_offset_s: number;
  frequency_ppm: number;
  residual_freq_ppm: number;
  skew_ppm: number;
  root_delay_s: number;
  root_dispersion_s: number;
  update_interval_s: number;
  leap_status: string;
  updates: number;
}

export interface ChronyEventSummary {
  /** Scenario time of the update, seconds. */
  at_s: number;
  kind: 'step' | 'slew';
  /** Offset corrected, seconds (+: the clock was fast). */
  offset_s: number;
  frequency_ppm: number;
}

/** At most this many chrony events are listed per VM (the count says how many there were). */
const MAX_EVENTS = 1000;

function chronySummary(r: VmRun): Pick<VmSummary, 'chrony' | 'chrony_updates'> {
  const c = r.chronyd;
  if (!c) return {};
  const t = c.tracking();
  const start = Number(c.startAt) / 1e9;
  return {
    chrony: {
      reference_id: t.referenceId,
      stratum: t.stratum,
      system_time_s: t.systemTime,
      last_offset_s: t.lastOffset,
      rms_offset_s: t.rmsOffset,
      frequency_ppm: t.frequencyPpm,
      residual_freq_ppm: t.residualFreqPpm,
      skew_ppm: t.skewPpm,
      root_delay_s: t.rootDelay,
      root_dispersion_s: t.rootDispersion,
      update_interval_s: t.updateInterval,
      leap_status: t.leapStatus,
      updates: c.reference.updates,
    },
    chrony_updates: c.adjustments
      .slice(0, MAX_EVENTS)
      .map((a) => ({ at_s: start + a.sinceStart, kind: a.kind, offset_s: a.offset, frequency_ppm: a.freqPpm })),
  };
}

export interface HostSummary {
  name: string;
  tsc_khz: number;
  ppm_start: number;
  ppm_end: number;
  ntp: boolean;
  final_realtime_offset_ns: string;
}

export interface SimulationSummary {
  scenario: string;
  seed: number;
  start: string;
  duration_s: number;
  samples: number;
  events_dispatched: number;
  hosts: HostSummary[];
  vms: VmSummary[];
}

function hostSummary(world: World, name: string): HostSummary {
  const host = world.host(name);
  const end = world.scenario.durationNs;
  return {
    name,
    tsc_khz: host.tsc.freqKhz,
    ppm_start: world.ppmStart.get(name)!,
    ppm_end: host.oscillator.ppm,
    ntp: host.ntp,
    final_realtime_offset_ns: String(host.realtime(end) - world.truth(end)),
  };
}

/** kernel_log's lines: those stamped after 3 s (dmesg's whole µs, as `[    3.000001]`). */
const KERNEL_LOG_AFTER_US = 3_000_000n;

/** What the guest kernel printed after boot: its dmesg lines stamped after 3 s, only those formatted. */
export function kernelLogAfterBoot(log: readonly LogLine[]): string[] {
  return dmesgLines(log.filter((l) => l.t / 1000n > KERNEL_LOG_AFTER_US));
}

function vmclockSummary(r: VmRun): Pick<VmSummary, 'vmclock'> {
  const dev = r.boot?.vm.vmclock;
  if (!dev || !r.boot?.entered) return {};
  const rec = dev.read();
  const t = r.boot.opts.scheduler.now;
  const read = rec.counterId === VMCLOCK_COUNTER_X86_TSC ? vmclockReadNs(rec, r.boot.vm.guestTsc()) : null;
  return {
    vmclock: {
      disruption_marker: String(rec.disruptionMarker),
      vm_generation_counter: String(rec.vmGenerationCounter),
      clock_status: rec.clockStatus,
      time_offset_ns: read === null ? null : String(read - (r.boot.opts.epochNs ?? 0n) - t),
    },
  };
}

function vmgenidSummary(r: VmRun): Pick<VmSummary, 'vmgenid_changes'> {
  const n = vmgenidChanges(r);
  return n === null ? {} : { vmgenid_changes: n };
}

function warpSummary(c: WarpCount): WarpSummary {
  return { warps: c.warps, stalls: c.stalls, worst_warp_ns: String(c.worstNs) };
}

function kvmclockWarpsSummary(world: World, r: VmRun): Pick<VmSummary, 'kvmclock_warps'> {
  const t = r.vm.kvmclockTest;
  if (!t || r.vm.profile.accel !== 'kvm') return {};
  const h = world.resolvedHost(r.vm.host);
  const res = runKvmclockTest({
    host: { tscKhz: h.cpu.tscKhz, ...(h.tscSkewNs ? { tscSkewNs: h.tscSkewNs } : {}), tscReliable: h.tscSkew?.tscReliable ?? false },
    vcpus: r.vm.vcpus ?? r.vm.profile.defaultVcpus,
    reads: t.reads,
    readIntervalNs: t.readIntervalNs,
    wakeIntervalNs: t.wakeIntervalNs,
    ...(r.vm.rdtscExiting ? { rdtscExiting: r.vm.rdtscExiting } : {}),
  });
  return {
    kvmclock_warps: {
      vcpus: res.vcpus,
      reads: res.reads,
      master_clock: res.masterClock,
      tsc_stable: res.tscStable,
      host_tsc_unstable: res.hostTscUnstable,
      raw: warpSummary(res.raw),
      monotonic: warpSummary(res.monotonic),
    },
  };
}

function rdtscExitingSummary(r: VmRun): Pick<VmSummary, 'rdtsc_exiting'> {
  const x = r.vm.rdtscExiting;
  const v = r.boot?.vm.vcpus[0];
  if (!x || !v) return {};
  const khz = BigInt(v.virtualTscKhz || r.boot!.vm.host.tscKhz);
  const mono = r.boot?.entered ? r.boot.guest.vdso().find((c) => c.clock === 'CLOCK_MONOTONIC') : undefined;
  return {
    rdtsc_exiting: {
      exit_cost_ns: String(x.exitCostNs),
      offset_compensation: x.offsetCompensation,
      rate_per_s: x.ratePerSec,
      tsc_hidden_ns: String((v.rdtscCompensation() * 1_000_000n) / khz),
      clock_gettime_ns: mono?.ns ?? 0,
      clock_gettime_measured_ns: mono?.measuredNs ?? 0,
    },
  };
}

function vmSummary(world: World, r: VmRun): VmSummary {
  const st = r.stats;
  const g = r.boot?.entered ? r.boot.guest : null;
  return {
    name: r.vm.name,
    host: r.vm.host,
    profile: r.vm.profile.name,
    kernel: r.vm.kernel.name,
    clocksource: g ? g.currentClocksource().trim() : '',
    wall_clock_source: g ? g.wallClockSource : '',
    sync: r.vm.sync.method,
    boot_at_s: Number(r.vm.bootAtNs) / 1e9,
    initial_offset_ns: String(st.initial),
    final_offset_ns: String(st.last),
    max_abs_offset_ns: String(st.maxAbs),
    drift_ppm: st.driftPpm(),
    steal_ns: String(g?.steal?.cpus.reduce((sum, c) => sum + c.steal, 0n) ?? 0n),
    pauses: r.pauses,
    events: r.events,
    final_clocksource: g ? g.currentClocksource().trim() : '',
    ...vmclockSummary(r),
    ...vmgenidSummary(r),
    kernel_log: g ? kernelLogAfterBoot(g.log) : [],
    ...chronySummary(r),
    ...timerIrqSummary(r),
    ...kvmclockWarpsSummary(world, r),
    ...rdtscExitingSummary(r),
  };
}

/** The VM's timer interrupts (issue 12): see VmDevices.timerIrqStats. */
function timerIrqSummary(
  r: VmRun,
): Pick<VmSummary, 'timer_irqs' | 'ticks_lost' | 'ticks_reinjected' | 'max_timer_lateness_ns' | 'timer_lateness_ns'> {
  const st = r.boot?.vm.devices.timerIrqStats();
  const skipped = r.boot?.entered ? r.boot.guest.periodicTick.ticksLost : 0;
  return {
    timer_irqs: String(st?.timerIrqs ?? 0),
    ticks_lost: String((st?.ticksLost ?? 0) + skipped),
    ticks_reinjected: String(st?.ticksReinjected ?? 0),
    max_timer_lateness_ns: String(st?.maxLatenessNs ?? 0n),
    timer_lateness_ns: {
      p50: String(st?.lateness.percentile(50) ?? 0n),
      p90: String(st?.lateness.percentile(90) ?? 0n),
      p99: String(st?.lateness.percentile(99) ?? 0n),
      max: String(st?.lateness.max ?? 0n),
    },
  };
}

export function buildSummary(world: World, runs: readonly VmRun[], samples: number): SimulationSummary {
  const s = world.scenario;
  return {
    scenario: s.name,
    seed: s.seed,
    start: s.start,
    duration_s: Number(s.durationNs) / 1e9,
    samples,
    events_dispatched: world.engine.eventsDispatched,
    hosts: s.hosts.map((h) => hostSummary(world, h.name)),
    vms: runs.map((r) => vmSummary(world, r)),
  };
}
