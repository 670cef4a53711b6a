// Runs a scenario: builds hosts and VMs, drives them with the event engine, samples every VM's clock
// offset from true time, and returns a summary plus a timeline. Pure: same scenario, same result.
import { Engine } from '../core/engine.ts';
import { Prng } from '../core/prng.ts';
import { NSEC_PER_SEC, type Ns } from '../core/time.ts';
import { TraceRecorder } from '../core/trace.ts';
import { parseDuration } from '../core/units.ts';
import { FirstGuestClock, type BootWallClock, type FirstGuestClocksource } from './first-guest.ts';
import { Host } from './host.ts';
import type { Scenario } from './scenario.ts';

export interface TimelineRow {
  /** True time since the start, ns. */
  t: Ns;
  vm: string;
  /** Guest CLOCK_REALTIME minus true UTC, ns. */
  guestOffsetNs: Ns;
  /** Host CLOCK_REALTIME minus true UTC, ns. */
  hostOffsetNs: Ns;
}

export interface VmSummary {
  name: string;
  host: string;
  clocksource: FirstGuestClocksource;
  wall_clock: BootWallClock;
  boot_at_s: number;
  initial_offset_ns: string;
  final_offset_ns: string;
  max_abs_offset_ns: string;
  /** Mean rate of the guest clock against true time over the run, ppm. */
  drift_ppm: number;
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

export interface SimulationResult {
  summary: SimulationSummary;
  timeline: TimelineRow[];
}

export interface SimulationOptions {
  trace?: TraceRecorder;
  /** Called now and then with the fraction done (0..1), for progress on a terminal. */
  onProgress?: (fraction: number) => void;
}

function pickClocksource(vm: Scenario['vms'][number], host: Host): FirstGuestClocksource {
  if (vm.clocksource !== 'auto') return vm.clocksource;
  // A KVM guest with an invariant TSC ends up on tsc (kvm-clock's rating drops to 299); else kvm-clock.
  return host.tsc.invariant ? 'tsc' : 'kvm-clock';
}

function pickWallClock(vm: Scenario['vms'][number]): BootWallClock {
  if (vm.wall_clock !== 'auto') return vm.wall_clock;
  return vm.profile === 'qemu-tcg' || /\bno-kvmclock\b/.test(vm.cmdline) ? 'rtc' : 'kvmclock';
}

export function simulate(s: Scenario, opts: SimulationOptions = {}): SimulationResult {
  const trace = opts.trace ?? TraceRecorder.off;
  const engine = new Engine();
  const prng = new Prng(s.seed);
  const epochNs = BigInt(Date.parse(s.start)) * 1_000_000n;
  const duration = parseDuration(s.duration);
  const interval = parseDuration(s.sample_interval);

  const hosts = new Map<string, Host>();
  const ppmStart = new Map<string, number>();
  for (const h of s.hosts) {
    const host = new Host(
      {
        name: h.name,
        oscillator: { ppm: h.oscillator.ppm, wanderSigmaPpm: h.oscillator.wander_sigma_ppm, wanderIntervalNs: parseDuration(h.oscillator.wander_interval) },
        tsc: { freqKhz: h.tsc.freq_khz, constant: h.tsc.constant, nonstop: h.tsc.nonstop, invariant: h.tsc.invariant },
        ntp: h.ntp,
        initialRealtimeErrorNs: BigInt(Math.round(h.realtime_error * 1e9)),
      },
      prng,
      epochNs,
    );
    hosts.set(h.name, host);
    ppmStart.set(h.name, host.oscillator.ppm);
    if (host.oscillator.wanderSigmaPpm > 0) {
      const step = host.oscillator.wanderIntervalNs;
      const timer = engine.timer(() => {
        host.oscillator.wanderStep(engine.now);
        if (trace.on) trace.instant(engine.now, host.name, 'oscillator_wander', ['host'], { ppm: host.oscillator.ppm });
        timer.armIn(step);
      });
      timer.armIn(step);
    }
  }

  const timeline: TimelineRow[] = [];
  const sampleVm = (vm: { cfg: Scenario['vms'][number]; host: Host; clock: FirstGuestClock; stats: { initial: Ns; last: Ns; maxAbs: Ns; firstT: Ns; lastT: Ns; seen: boolean } }, t: Ns) => {
    const truth = epochNs + t;
    const off = vm.clock.realtime(t) - truth;
    timeline.push({ t, vm: vm.cfg.name, guestOffsetNs: off, hostOffsetNs: vm.host.realtime(t) - truth });
    const st = vm.stats;
    if (!st.seen) {
      st.initial = off;
      st.firstT = t;
      st.seen = true;
    }
    st.last = off;
    st.lastT = t;
    const a = off < 0n ? -off : off;
    if (a > st.maxAbs) st.maxAbs = a;
  };

  const vms = s.vms.map((vm) => {
    const host = hosts.get(vm.host)!;
    const clock = new FirstGuestClock(host, pickClocksource(vm, host), pickWallClock(vm));
    const bootAt = parseDuration(vm.boot_at);
    const stats = { initial: 0n, last: 0n, maxAbs: 0n, firstT: 0n, lastT: 0n, seen: false };
    const entry = { cfg: vm, host, clock, bootAt, stats };
    if (bootAt <= duration) {
      engine.at(bootAt, () => {
        clock.boot(engine.now);
        sampleVm(entry, engine.now);
        if (trace.on) trace.instant(engine.now, vm.name, clock.wallClock === 'rtc' ? 'mach_get_cmos_time' : 'kvm_get_wallclock', ['start_kernel', 'timekeeping_init', 'read_persistent_clock64']);
      });
    }
    return entry;
  });

  let samples = 0;
  const sample = () => {
    samples++;
    for (const vm of vms) if (vm.clock.isBooted && vm.stats.lastT !== engine.now) sampleVm(vm, engine.now);
  };
  const sampler = engine.timer(() => {
    sample();
    const next = engine.now + interval;
    if (next <= duration) sampler.armAt(next);
    else if (engine.now < duration) sampler.armAt(duration);
    if (opts.onProgress) opts.onProgress(Number(engine.now) / Number(duration));
  });
  sampler.armAt(0n);
  engine.run(duration);

  const summary: SimulationSummary = {
    scenario: s.name,
    seed: s.seed,
    start: s.start,
    duration_s: Number(duration) / 1e9,
    samples,
    events_dispatched: engine.eventsDispatched,
    hosts: s.hosts.map((h) => {
      const host = hosts.get(h.name)!;
      return {
        name: h.name,
        tsc_khz: h.tsc.freq_khz,
        ppm_start: ppmStart.get(h.name)!,
        ppm_end: host.oscillator.ppm,
        ntp: h.ntp,
        final_realtime_offset_ns: String(host.realtime(duration) - (epochNs + duration)),
      };
    }),
    vms: vms.map((vm) => {
      const st = vm.stats;
      const span = st.lastT - st.firstT;
      return {
        name: vm.cfg.name,
        host: vm.cfg.host,
        clocksource: vm.clock.clocksource,
        wall_clock: vm.clock.wallClock,
        boot_at_s: Number(vm.bootAt) / 1e9,
        initial_offset_ns: String(st.initial),
        final_offset_ns: String(st.last),
        max_abs_offset_ns: String(st.maxAbs),
        drift_ppm: span > 0n ? Math.round((Number(st.last - st.initial) / Number(span)) * 1e6 * 1e6) / 1e6 : 0,
      };
    }),
  };
  return { summary, timeline };
}

/** Timeline as CSV: one row per VM per sample; offsets in ns (exact integers). */
export function timelineCsv(rows: readonly TimelineRow[]): string {
  const out = ['t_s,vm,guest_offset_ns,host_offset_ns'];
  for (const r of rows) {
    const s = r.t / NSEC_PER_SEC;
    const frac = (r.t % NSEC_PER_SEC).toString().padStart(9, '0');
    out.push(`${s}.${frac},${r.vm},${r.guestOffsetNs},${r.hostOffsetNs}`);
  }
  return out.join('\n') + '\n';
}
