// The simulated twins of the lab's experiments, for the machine the lab runs: QEMU `-machine pc`, TCG,
// `-cpu qemu64`, one vCPU. Boot uses the guest model (vmm profile `qemu-tcg`). The vmm's pause/resume
// lifecycle models KVM VMMs only, so the TCG pause semantics, and the exact RTC arithmetic of QEMU's
// mc146818 (which the guest model simplifies), are written out here, small and explicit, each with its
// source. docs/fidelity.md (## lab) lists every difference measured against the real guest.
import { Engine } from '../core/engine.ts';
import type { Ns } from '../core/time.ts';
import { bootVm, guestReport, kernelPreset, machineProfile } from '../vmm/index.ts';

const NS = 1_000_000_000n;

// ---------------------------------------------------------------------------------------------- boot

export interface BootSide {
  boot_log: string[];
  available_clocksource: string;
  current_clocksource: string;
  clockevent_device: string;
  boot_offset_s: number;
}

/**
 * The RTC arithmetic that sets the boot wall clock.
 * - QEMU hw/rtc/mc146818rtc.c: rtc_set_date_from_host() seeds base_rtc = the host's time in whole seconds
 *   and last_update = the host clock (rtc_clock = host) in ns at the same instant; get_guest_rtc_ns() is
 *   base_rtc·10⁹ + (now − last_update), read in whole seconds. So the RTC ticks at last_update + k s, and
 *   at each tick it shows floor(host time at that tick).
 * - Linux drivers/rtc/class.c rtc_hctosys(): tv_sec = RTC seconds, tv_nsec = NSEC_PER_SEC >> 1 (the
 *   "best guess is to add 0.5s" for the truncated value), then do_settimeofday64().
 * `rtcTickHostNs` is any host instant at which the RTC's seconds ticked over (QEMU start, or a tick seen
 * through QMP). Returns the guest's REALTIME − host REALTIME right after hctosys, ns: in (−1.5 s, +0.5 s].
 */
export function rtcBootOffsetNs(rtcTickHostNs: Ns, hostAtReadNs: Ns): Ns {
  const floorDiv = (a: bigint, b: bigint) => (a >= 0n ? a / b : -((-a + b - 1n) / b));
  const shown = floorDiv(rtcTickHostNs, NS) + floorDiv(hostAtReadNs - rtcTickHostNs, NS);
  return shown * NS + NS / 2n - hostAtReadNs;
}

/** Distance from a host instant to the nearest RTC tick, ns (how close the boot read came to a flip). */
export function distanceToRtcTickNs(rtcTickHostNs: Ns, hostNs: Ns): Ns {
  const r = (((hostNs - rtcTickHostNs) % NS) + NS) % NS;
  return r < NS - r ? r : NS - r;
}

/**
 * The guest model's prediction for this machine: the vmm's `qemu-tcg` profile (QEMU pc, TCG, qemu64)
 * booting the `debian12` kernel preset (Linux 6.1, as the lab's Debian kernel), with the model's host
 * clock starting at the host time QEMU was started. Boot log lines lose their printk stamps so they can
 * be compared with the real ones by text.
 */
export function modelBootQemuTcg(hostStartNs: Ns, settleNs: Ns = 3n * NS): BootSide & { boot_wall_clock_source: string } {
  const engine = new Engine();
  const b = bootVm({ profile: machineProfile('qemu-tcg'), kernel: kernelPreset('debian12'), scheduler: engine, epochNs: hostStartNs });
  try {
    engine.run(b.kernelEntryAt + settleNs);
    const r = guestReport(b);
    const hostNow = hostStartNs + engine.now;
    return {
      boot_log: r.boot_log,
      available_clocksource: r.available_clocksource.trim(),
      current_clocksource: r.current_clocksource.trim(),
      clockevent_device: r.clockevent_device.trim(),
      boot_offset_s: Number(b.guest.timekeeper.get('realtime') - hostNow) / 1e9,
      boot_wall_clock_source: r.wall_clock_source,
    };
  } finally {
    b.vm.destroy();
  }
}

// --------------------------------------------------------------------------------------------- pause

export type SyncMode = 'none' | 'agent' | 'ntp';

export interface PauseSide {
  realtime_lag_after_resume_s: number;
  monotonic_advance_during_pause_s: number;
  boottime_advance_during_pause_s: number;
  error_after_sync_s: number;
  sync_done_at_s: number | null;
}

export interface PauseModelInput {
  /** Host time between the STOP and RESUME events, ns. */
  pauseNs: Ns;
  /** Guest REALTIME − host REALTIME just before the pause, ns (the twin starts from the real state). */
  offsetBeforeNs: Ns;
  sync: SyncMode;
  /** chronyd poll interval in the guest, s (the lab configures minpoll = maxpoll = −1: 0.5 s). */
  ntpPollS?: number;
}

/**
 * QEMU stop/cont: under TCG, vm_stop → cpu_disable_ticks freezes the guest TSC (softmmu/cpu-timers.c) and
 * QEMU_CLOCK_VIRTUAL (HPET, PIT, APIC timer) stops; under KVM, hw/i386/kvm/clock.c saves the kvmclock on
 * stop and restores it on cont. Either way the guest's clocksource does not advance while paused, so
 * MONOTONIC and BOOTTIME (no suspend happened inside the guest) see nothing and REALTIME falls behind by
 * the pause length.
 * Sync: qga guest-set-time (qga/commands-posix.c) calls settimeofday() with µs, truncating the ns the host
 * sent; the twin takes delivery as instantaneous. chronyd with `makestep 0.1 -1` steps at its first poll
 * after the resume (a poll timer on the frozen monotonic clock comes due ≤ one poll interval later).
 */
export function modelPause(inp: PauseModelInput): PauseSide {
  const lagNs = inp.pauseNs;
  const afterResume = inp.offsetBeforeNs - lagNs;
  let error: Ns;
  let done: number | null;
  switch (inp.sync) {
    case 'none':
      error = afterResume;
      done = null;
      break;
    case 'agent':
      error = 0n; // settimeofday's µs truncation (< 1 µs) is below what the report rounds to
      done = 0;
      break;
    case 'ntp':
      error = 0n;
      done = inp.ntpPollS ?? 0.5;
      break;
  }
  return {
    realtime_lag_after_resume_s: Number(lagNs) / 1e9,
    monotonic_advance_during_pause_s: 0,
    boottime_advance_during_pause_s: 0,
    error_after_sync_s: Number(error) / 1e9,
    sync_done_at_s: done,
  };
}
