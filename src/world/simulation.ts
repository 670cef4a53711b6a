// Runs a scenario: builds hosts and VMs, boots each VM's guest kernel model on its VMM profile, drives
// pauses and time sync (guest agent or NTP) with the event engine, samples every guest's clocks
// against true time, and returns a summary plus a timeline. Pure: same scenario, same result.
import { Engine } from '../core/engine.ts';
import { Prng } from '../core/prng.ts';
import { NSEC_PER_SEC, type Ns } from '../core/time.ts';
import { TraceRecorder } from '../core/trace.ts';
import { parseDuration } from '../core/units.ts';
import { NtpKernelClient } from '../guest/ntp-client.ts';
import { bootVm, type BootedVm } from '../vmm/boot-vm.ts';
import { kernelPreset } from '../vmm/kernels.ts';
import { VmLifecycle } from '../vmm/lifecycle.ts';
import { machineProfile } from '../vmm/profiles.ts';
import { InputError } from '../core/errors.ts';
import { Host } from './host.ts';
import type { Scenario } from './scenario.ts';

export interface TimelineRow {
  /** True time since the start, ns. */
  t: Ns;
  vm: string;
  /** Guest CLOCK_REALTIME minus true UTC, ns. */
  guestOffsetNs: Ns;
  /** Guest CLOCK_MONOTONIC minus true time since the VM was created, ns. */
  monotonicLagNs: Ns;
  /** Host CLOCK_REALTIME minus true UTC, ns. */
  hostOffsetNs: Ns;
}

export interface PauseSummary {
  at_s: number;
  duration_s: number;
  /** Guest REALTIME offset just before the pause and right after resume, ns. */
  offset_before_ns: string;
  offset_after_resume_ns: string;
  /** How far guest CLOCK_MONOTONIC advanced across the pause, ns. */
  monotonic_advance_ns: string;
  /** Guest offset when the sync (if any) had acted: agent set-time or the first NTP poll after resume. */
  offset_after_sync_ns: string | null;
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
  pauses: PauseSummary[];
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

interface VmRun {
  cfg: Scenario['vms'][number];
  index: number;
  host: Host;
  boot: BootedVm | null;
  lifecycle: VmLifecycle | null;
  createdAt: Ns;
  stats: { initial: Ns; last: Ns; prev: Ns; maxAbs: Ns; prevT: Ns; lastT: Ns; seen: boolean };
  pauses: PauseSummary[];
}

function buildHost(h: Scenario['hosts'][number], prng: Prng, epochNs: Ns): Host {
  return new Host(
    {
      name: h.name,
      oscillator: {
        ppm: h.oscillator.ppm,
        wanderSigmaPpm: h.oscillator.wander_sigma_ppm,
        wanderIntervalNs: parseDuration(h.oscillator.wander_interval),
      },
      tsc: { freqKhz: h.tsc.freq_khz, constant: h.tsc.constant, nonstop: h.tsc.nonstop, invariant: h.tsc.invariant },
      ntp: h.ntp,
      initialRealtimeErrorNs: BigInt(Math.round(h.realtime_error * 1e9)),
    },
    prng,
    epochNs,
  );
}

export function simulate(s: Scenario, opts: SimulationOptions = {}): SimulationResult {
  const trace = opts.trace ?? TraceRecorder.off;
  const engine = new Engine();
  const prng = new Prng(s.seed);
  const epochNs = BigInt(Date.parse(s.start)) * 1_000_000n;
  const duration = parseDuration(s.duration);
  const interval = parseDuration(s.sample_interval);
  const truth = (t: Ns) => epochNs + t;

  const hosts = new Map<string, Host>();
  const ppmStart = new Map<string, number>();
  for (const h of s.hosts) {
    const host = buildHost(h, prng, epochNs);
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
  const offsetOf = (r: VmRun, t: Ns): Ns => r.boot!.guest.clockGettime('realtime') - truth(t);
  const sampleVm = (r: VmRun, t: Ns) => {
    const g = r.boot!.guest;
    const off = g.clockGettime('realtime') - truth(t);
    timeline.push({
      t,
      vm: r.cfg.name,
      guestOffsetNs: off,
      monotonicLagNs: g.clockGettime('monotonic') - (t - r.createdAt),
      hostOffsetNs: r.host.realtime(t) - truth(t),
    });
    const st = r.stats;
    if (!st.seen) {
      st.initial = off;
      st.seen = true;
    }
    st.prev = st.last;
    st.prevT = st.lastT;
    st.last = off;
    st.lastT = t;
    const a = off < 0n ? -off : off;
    if (a > st.maxAbs) st.maxAbs = a;
  };
  const canRead = (r: VmRun) => r.boot?.entered && !(r.lifecycle?.paused ?? false);
  const ntpClients = new Map<VmRun, NtpKernelClient>();

  const runs: VmRun[] = s.vms.map((cfg, index) => {
    const host = hosts.get(cfg.host)!;
    const where = (key: string) => `vms[${index}].${key}`;
    const profile = machineProfile(cfg.profile, where('profile'));
    const kernel = kernelPreset(cfg.kernel, where('kernel'));
    const r: VmRun = {
      cfg,
      index,
      host,
      boot: null,
      lifecycle: null,
      createdAt: 0n,
      stats: { initial: 0n, last: 0n, prev: 0n, maxAbs: 0n, prevT: 0n, lastT: 0n, seen: false },
      pauses: [],
    };
    const bootAt = parseDuration(cfg.boot_at);
    if (bootAt > duration) return r;
    engine.at(bootAt, () => {
      r.createdAt = engine.now;
      r.boot = bootVm({
        profile,
        kernel,
        cmdline: cfg.cmdline,
        host: { tscKhz: host.tsc.freqKhz, ppm: host.oscillator.ppm, invariantTsc: host.tsc.invariant },
        hostRdtsc: () => host.rdtsc(engine.now),
        hostUptimeNs: 0n, // the world's host TSC counts from 0 at the scenario's start
        hostRealtime: () => host.realtime(engine.now), // what the VMM's RTC (and kvmtool's time()) read
        scheduler: engine,
        epochNs,
        ...(cfg.vcpus !== undefined ? { vcpus: cfg.vcpus } : {}),
        ...(cfg.kvmclock_at_init !== undefined ? { kvmclockAtInitNs: parseDuration(cfg.kvmclock_at_init) } : {}),
        updateIntervalNs: parseDuration(cfg.update_interval),
        vcpuEntryIntervalNs: parseDuration(cfg.update_interval),
        trace,
      });
      if (cfg.pauses.length > 0) r.lifecycle = new VmLifecycle(r.boot);
      engine.at(r.boot.kernelEntryAt, () => sampleVm(r, engine.now));
      if (cfg.sync.method === 'ntp') startNtp(r);
    });
    schedulePauses(r);
    return r;
  });

  function startNtp(r: VmRun): void {
    const sync = r.cfg.sync;
    const client = new NtpKernelClient({
      scheduler: engine,
      adjtimex: (txc) => r.boot!.guest.adjtimex(txc),
      // An ideal server at true UTC, reached with a symmetric 1 ms round trip.
      measure: () => ({ offsetNs: truth(engine.now) - r.boot!.guest.clockGettime('realtime'), delayNs: 1_000_000n }),
      pollExp: sync.ntp_poll_exp,
      stepThresholdNs: parseDuration(sync.ntp_step_threshold),
    });
    // chronyd/ntpd start in userspace once the kernel has booted
    engine.at(r.boot!.kernelEntryAt + 5n * NSEC_PER_SEC, () => {
      if (!r.lifecycle?.paused) client.start();
    });
    ntpClients.set(r, client);
  }

  function schedulePauses(r: VmRun): void {
    for (const p of r.cfg.pauses) {
      const at = parseDuration(p.at);
      const len = parseDuration(p.duration);
      if (at > duration) continue;
      const summary: PauseSummary = {
        at_s: Number(at) / 1e9,
        duration_s: Number(len) / 1e9,
        offset_before_ns: '0',
        offset_after_resume_ns: '0',
        monotonic_advance_ns: '0',
        offset_after_sync_ns: null,
      };
      let monoBefore = 0n;
      engine.at(at, () => {
        if (!r.boot?.entered)
          throw new InputError(`pause at ${p.at} comes before the guest kernel has started`, 'scenario', `vms[${r.index}].pauses`);
        summary.offset_before_ns = String(offsetOf(r, engine.now));
        monoBefore = r.boot.guest.clockGettime('monotonic');
        ntpClients.get(r)?.stop();
        r.lifecycle!.pause(at + len);
        if (trace.on) trace.instant(engine.now, r.cfg.name, 'qmp_stop', ['vm_stop']);
        r.pauses.push(summary);
      });
      if (at + len > duration) continue;
      engine.at(at + len, () => {
        r.lifecycle!.resume();
        if (trace.on) trace.instant(engine.now, r.cfg.name, 'qmp_cont', ['vm_start']);
        r.boot!.guest.update(); // the first tick after resume accumulates the clocksource
        summary.offset_after_resume_ns = String(offsetOf(r, engine.now));
        summary.monotonic_advance_ns = String(r.boot!.guest.clockGettime('monotonic') - monoBefore);
        sampleVm(r, engine.now);
        const sync = r.cfg.sync;
        if (sync.method === 'agent') {
          // The management layer's guest-set-time with the host's time: qemu-ga settimeofday()s the guest
          // (qga/commands-posix.c qmp_guest_set_time).
          engine.after(parseDuration(sync.agent_delay), () => {
            if (r.lifecycle!.paused) return;
            r.boot!.guest.settimeofday(r.host.realtime(engine.now));
            if (trace.on) trace.instant(engine.now, r.cfg.name, 'do_settimeofday64', ['qmp_guest_set_time', '__x64_sys_clock_settime']);
            summary.offset_after_sync_ns = String(offsetOf(r, engine.now));
            sampleVm(r, engine.now);
          });
        } else if (sync.method === 'ntp') {
          // The daemon's next poll comes one poll interval after it wakes up again.
          const client = ntpClients.get(r)!;
          engine.after(BigInt(2 ** sync.ntp_poll_exp) * NSEC_PER_SEC, () => {
            if (r.lifecycle!.paused) return;
            client.start();
            summary.offset_after_sync_ns = String(offsetOf(r, engine.now));
            sampleVm(r, engine.now);
          });
        }
      });
    }
  }

  let samples = 0;
  const sampler = engine.timer(() => {
    samples++;
    for (const r of runs) if (canRead(r) && r.stats.lastT !== engine.now) sampleVm(r, engine.now);
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
        final_realtime_offset_ns: String(host.realtime(duration) - truth(duration)),
      };
    }),
    vms: runs.map((r) => {
      const st = r.stats;
      const span = st.lastT - st.prevT;
      const g = r.boot?.entered ? r.boot.guest : null;
      return {
        name: r.cfg.name,
        host: r.cfg.host,
        profile: r.cfg.profile,
        kernel: r.cfg.kernel,
        clocksource: g ? g.currentClocksource().trim() : '',
        wall_clock_source: g ? g.wallClockSource : '',
        sync: r.cfg.sync.method,
        boot_at_s: Number(parseDuration(r.cfg.boot_at)) / 1e9,
        initial_offset_ns: String(st.initial),
        final_offset_ns: String(st.last),
        max_abs_offset_ns: String(st.maxAbs),
        drift_ppm: span > 0n && st.prevT > 0n ? Math.round((Number(st.last - st.prev) / Number(span)) * 1e6 * 1e6) / 1e6 : 0,
        pauses: r.pauses,
      };
    }),
  };
  return { summary, timeline };
}

/** Timeline as CSV: one row per VM per sample; offsets in ns (exact integers). */
export function timelineCsv(rows: readonly TimelineRow[]): string {
  const out = ['t_s,vm,guest_offset_ns,monotonic_lag_ns,host_offset_ns'];
  for (const r of rows) {
    const s = r.t / NSEC_PER_SEC;
    const frac = (r.t % NSEC_PER_SEC).toString().padStart(9, '0');
    out.push(`${s}.${frac},${r.vm},${r.guestOffsetNs},${r.monotonicLagNs},${r.hostOffsetNs}`);
  }
  return out.join('\n') + '\n';
}
