// Runs a scenario: builds its world (hosts, VMs on their VMM profiles), drives pauses and time sync
// with the event engine, samples every guest's clocks against true time, and returns a summary plus a
// timeline. Pure: same scenario, same result. The parts live in their own modules: resolve (scenario →
// options), world (hosts, VM boot), pauses, sync (agent, NTP), sampling, summary.
import type { TraceRecorder } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { type GuestReport, guestReport, VmLifecycle } from '../vmm/index.ts';
import { scheduleHostSteps, scheduleMigrations, scheduleSnapshots } from './moves.ts';
import { schedulePauses } from './pauses.ts';
import { type ResolvedScenario, resolveScenario } from './resolve.ts';
import { nextSampleAt, type TimelineRow } from './sampling.ts';
import type { Scenario } from './scenario.ts';
import { buildSummary, type SimulationSummary } from './summary.ts';
import { guestSync, USERSPACE_START_NS } from './sync.ts';
import { VmRun } from './vm-run.ts';
import { checkWork } from './work.ts';
import { World } from './world.ts';

export { TIMELINE_CSV_HEADER, type TimelineRow, timelineCsv, timelineCsvRow } from './sampling.ts';
export type { HostSummary, PauseSummary, SimulationSummary, VmEvent, VmSummary } from './summary.ts';

export interface SimulationResult {
  summary: SimulationSummary;
  /** Every sample, in order (empty when SimulationOptions.onRow took them). */
  timeline: TimelineRow[];
  /** Per VM, its REALTIME offsets thinned to at most 512 points (for sparklines and plots). */
  series: Record<string, { t: Ns[]; offsetNs: Ns[] }>;
  /** With SimulationOptions.guestReportAfterNs: each VM's guest report that long after its kernel entry. */
  guests?: Record<string, GuestReport>;
}

export interface SimulationOptions {
  trace?: TraceRecorder;
  /** Called now and then with the fraction done (0..1), for progress on a terminal. */
  onProgress?: (fraction: number) => void;
  /** Each timeline row as it is sampled, instead of keeping the timeline in memory (streaming to a file). */
  onRow?: (row: TimelineRow) => void;
  /** Also take each VM's guest report (what `timevisor guest` prints) this long after its kernel entry. */
  guestReportAfterNs?: Ns;
  /** Periodic guest work in quiet spans (Engine.quietSpans; default true). False: every expiry event by
   *  event, the reference the fast paths are tested against (same bytes either way). */
  quietSpans?: boolean;
}

export function simulate(s: Scenario | ResolvedScenario, opts: SimulationOptions = {}): SimulationResult {
  const resolved = 'durationNs' in s ? s : resolveScenario(s);
  checkWork(resolved, resolved.name, { rowsInMemory: opts.onRow === undefined });
  const world = new World(resolved, opts.trace);
  const { engine } = world;
  if (opts.quietSpans !== undefined) engine.quietSpans = opts.quietSpans;
  const duration = resolved.durationNs;
  const timeline: TimelineRow[] = [];
  const emit = opts.onRow ?? ((row: TimelineRow) => void timeline.push(row));
  const guests: Record<string, GuestReport> = {};

  const runs = resolved.vms.map((vm) => {
    const run = new VmRun(vm, world.host(vm.host), world, emit);
    if (vm.bootAtNs > duration) return run;
    const sync = guestSync(world, run);
    engine.at(vm.bootAtNs, () => {
      run.createdAt = engine.now;
      run.boot = world.bootVm(vm);
      if (vm.pauses.length + vm.snapshots.length + vm.migrations.length > 0) run.lifecycle = new VmLifecycle(run.boot);
      engine.at(run.boot.kernelEntryAt, () => run.sample(engine.now));
      if (vm.initialOffsetNs !== undefined) {
        // vms[].initial_offset: the guest's REALTIME error as userspace starts (before its sync daemon does)
        const off = vm.initialOffsetNs;
        engine.at(run.boot.kernelEntryAt + USERSPACE_START_NS, () => {
          if (run.readable) run.boot!.guest.settimeofday(world.truth(engine.now) + off);
        });
      }
      sync?.onBoot();
      if (opts.guestReportAfterNs !== undefined) {
        const b = run.boot;
        engine.at(b.kernelEntryAt + opts.guestReportAfterNs, () => (guests[vm.name] = guestReport(b)));
      }
    });
    schedulePauses(world, run, sync);
    scheduleSnapshots(world, run, sync);
    scheduleMigrations(world, run, sync);
    return run;
  });
  scheduleHostSteps(world, runs);

  let samples = 0;
  // asked twice per sample (the span's runParticipant, then the sampler's callback): the same BigInt both times
  const nextSampleOf = nextSampleAt(resolved.sampleIntervalNs, duration);
  let askedAt: Ns = -1n;
  let answer: Ns | null = null;
  const nextSample = (at: Ns): Ns | null => {
    if (at !== askedAt) {
      askedAt = at;
      answer = nextSampleOf(at);
    }
    return answer;
  };
  const sampler = engine.timer(() => {
    samples++;
    for (const r of runs) if (r.readable && r.stats.lastT !== engine.now) r.sample(engine.now);
    const next = nextSample(engine.now);
    if (next !== null) sampler.armAt(next);
    if (opts.onProgress) opts.onProgress(Number(engine.now) / Number(duration));
  });
  sampler.armAt(0n);
  // a sample only reads the guests' clocks: it runs inside a VM's quiet span (src/guest/boot.ts runQuiet)
  engine.quietParticipant(sampler, nextSample);
  engine.run(duration);

  const summary = buildSummary(world, runs, samples);
  const series = Object.fromEntries(runs.map((r) => [r.vm.name, { t: r.series.t, offsetNs: r.series.v }]));
  world.release(); // nothing reads the VMs after this: their RAM goes to the next simulate() in this thread
  return opts.guestReportAfterNs !== undefined ? { summary, timeline, series, guests } : { summary, timeline, series };
}
