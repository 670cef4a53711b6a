// The clocksource watchdog (kernel/time/clocksource.c clocksource_watchdog): every
// WATCHDOG_INTERVAL each watched clocksource's elapsed time is compared with the watchdog's; a
// difference beyond both uncertainty margins marks it unstable, a clean pass makes a continuous
// one valid for high resolution mode.
//
// Fast-forward (docs/architecture.md: periodic work nobody observes is advanced analytically). Between two
// scheduler events nothing changes the counters' rates or the pvclock record, so every interval of
// such a quiet span has the same skew up to a few counts of rounding. Once two consecutive
// intervals inside a span passed with a margin wider than that rounding, every later interval of
// the span passes too: the watchdog then sleeps to the last grid point before the next event and
// reads both clocks there for real (the "last" interval), so the state it carries on with, the
// pvclock last_value the reads leave behind and everything it prints are the ones the event-by-event
// watchdog produces. Any interval that holds an event is checked event by event, and so is every
// interval while a vCPU may wait for a host CPU (an overcommitted host): each check then runs when its
// vCPU next runs, late by what the host's schedule says for that vCPU's thread.
//
// The timer rotates over the CPUs: clocksource_start_watchdog queues it on the first online CPU and every
// run re-queues it with add_timer_on(&watchdog_timer, next_cpu), next_cpu = cpumask_next(this CPU) wrapping
// to the first. It is a timer-wheel timer, so it runs from that CPU's timer softirq: when that vCPU takes its
// next timer interrupt (an idle NOHZ CPU programs its clockevent for the timer), i.e. when it next runs. The
// clocks are read as the boot CPU reads them (per-CPU TSC/pvclock differences are not checked here).
//
// The schedule does not slide: clocksource_watchdog() re-arms with `watchdog_timer.expires +=
// WATCHDOG_INTERVAL (+ extra_wait)` and add_timer_on() (kernel/time/clocksource.c, every version since
// v2.6.2x; extra_wait only after a WD_READ_SKIP, which instant reads here never give), so a late run is
// followed by one due on the original grid; an expiry already past fires on the next jiffy (timer wheel:
// an expired timer goes to the bucket of base->clk). The timer wheel's rounding of expiries to its level
// granularity (up to 8 jiffies for half a second) and the jiffy phase are not modelled: grid points are
// start + k · WATCHDOG_INTERVAL in ns, moved later by the whole jiffies the guest clock stood still while
// the vCPU was stopped (jiffies follow the guest's clock, not the host's).
import type { Engine, Scheduler, Timer } from '../core/index.ts';
import type { Cycles, Ns } from '../core/index.ts';
import { hex } from '../core/index.ts';
import {
  CLOCK_SOURCE_IS_CONTINUOUS,
  CLOCK_SOURCE_RESELECT,
  CLOCK_SOURCE_UNSTABLE,
  CLOCK_SOURCE_VALID_FOR_HRES,
  CLOCK_SOURCE_WATCHDOG,
  type Clocksource,
} from './clocksource.ts';
import type { ClocksourceCore } from './clocksources.ts';

const PAD = '                      ';

interface WdState {
  wdLast: Cycles;
  csLast: Cycles;
  /** Skew of the last interval checked, when it passed with room for any interval of its span. */
  skew: Ns | null;
}

/** Counts of rounding one counter reading can carry (nested floors: host TSC, scaling, pvclock). */
const ROUNDING_COUNTS = 8;
/** Extra ns of rounding allowed per interval on top of the counters' own (conversions, phase). */
const ROUNDING_SLACK_NS = 1000n;

/** The earliest pending scheduler event, when the scheduler can tell (the simulation engine can). */
type NextEventTime = () => Ns | null;

export interface WatchdogOptions {
  /** Advance quiet spans analytically (default); false runs every WATCHDOG_INTERVAL as an event. */
  fastForward?: boolean;
  /** GuestPlatform.counterEpoch: without it the watchdog never fast-forwards. */
  counterEpoch?: () => number;
  /** Kernels since v6.3 skip the check when an interval ran longer than WATCHDOG_INTERVAL_MAX_NS. */
  longIntervalSkip?: boolean;
  /** Whether vCPU `cpu` runs now, and when it next does (GuestPlatform.vcpuRunning/nextVcpuRun). */
  vcpuRunning?: (cpu: number) => boolean;
  nextVcpuRun?: (cpu: number) => Ns;
  /** Whether vCPU `cpu` runs at every instant until the next scheduler event (GuestPlatform.vcpuAlwaysRuns);
   *  absent with vcpuRunning given: it may wait, so no fast-forward. */
  vcpuAlwaysRuns?: (cpu: number) => boolean;
  /** Online CPUs the timer rotates over (default 1). */
  cpus?: number;
  /** The guest's CLOCK_MONOTONIC (what its jiffies follow): a late run finds how long the guest clock stood still. */
  guestNs?: () => Ns;
}

export class ClocksourceWatchdog {
  private readonly timer: Timer;
  private readonly state = new Map<Clocksource, WdState>();
  readonly intervalNs: Ns;
  private checksRun = 0;
  /** Advance quiet spans analytically; false: every interval is a scheduler event (for tests). */
  fastForward: boolean;
  /** Intervals covered by fast-forwards (not run as events). */
  fastForwarded = 0;
  /** Fast-forwards that found a counter changed without a scheduler event (then checked as one long interval). */
  fastForwardMisses = 0;
  private readonly nextEventTime: NextEventTime | null;
  private readonly counterEpoch: (() => number) | null;
  private readonly vcpuRunning: ((cpu: number) => boolean) | null;
  private readonly longIntervalSkip: boolean;
  private readonly intervalMaxNs: Ns;
  /** watchdog_max_interval: the longest skipped interval reported so far. */
  private maxInterval = 0n;
  private readonly nextVcpuRun: ((cpu: number) => Ns) | null;
  private readonly vcpuAlwaysRuns: (cpu: number) => boolean;
  private readonly nrCpus: number;
  /** The CPU the timer is queued on (add_timer_on). */
  private cpu = 0;
  /** clocksource_watchdog() runs per CPU (fast-forwarded ones counted where they would have run). */
  readonly checksOnCpu: number[];
  /** Next foreign event after the last check (the end of the quiet span), null when unknown. */
  private quietUntil: Ns | null = null;
  private quietEpoch = 0;
  /** Consecutive intervals inside the current quiet span that passed with room and changed nothing. */
  private streak = 0;
  /** Set while sleeping through a span: the last real check's time and the intervals skipped. */
  private skip: { from: Ns; intervals: number } | null = null;
  /** watchdog_timer.expires, in ns: the grid point this run is due at (late runs do not move it). */
  private expires: Ns = 0n;
  /** TICK_NSEC: when an expiry is already past, the timer fires on the next jiffy. */
  private readonly tickNs: Ns;
  private readonly guestNs: (() => Ns) | null;
  /** Host and guest time of the last check that ran. */
  private lastRun: { host: Ns; guest: Ns } | null = null;

  constructor(
    private readonly core: ClocksourceCore,
    private readonly sched: Scheduler,
    hz: number,
    private readonly log: (line: string) => void,
    /** cs->mark_unstable callbacks (tsc_cs_mark_unstable). */
    private readonly onUnstable: (cs: Clocksource) => void,
    private readonly onHresValid: () => void,
    opts: WatchdogOptions = {},
  ) {
    // WATCHDOG_INTERVAL = HZ >> 1 jiffies
    this.intervalNs = (BigInt(hz >> 1) * 1_000_000_000n) / BigInt(hz);
    // TICK_NSEC = (NSEC_PER_SEC + HZ/2) / HZ (include/vdso/jiffies.h)
    this.tickNs = (1_000_000_000n + BigInt(hz >> 1)) / BigInt(hz);
    this.timer = sched.timer(() => this.run());
    this.fastForward = opts.fastForward ?? true;
    this.counterEpoch = opts.counterEpoch ?? null;
    this.vcpuRunning = opts.vcpuRunning ?? null;
    this.longIntervalSkip = opts.longIntervalSkip ?? false;
    // WATCHDOG_INTERVAL_MAX_NS = 2 * WATCHDOG_INTERVAL * (NSEC_PER_SEC / HZ)
    this.intervalMaxNs = 2n * this.intervalNs;
    this.nextVcpuRun = opts.nextVcpuRun ?? null;
    this.guestNs = opts.guestNs ?? null;
    this.vcpuAlwaysRuns = opts.vcpuAlwaysRuns ?? (() => this.vcpuRunning === null);
    this.nrCpus = Math.max(1, opts.cpus ?? 1);
    this.checksOnCpu = new Array<number>(this.nrCpus).fill(0);
    const engine = sched as Partial<Pick<Engine, 'nextEventTime'>>;
    this.nextEventTime = typeof engine.nextEventTime === 'function' ? () => engine.nextEventTime!.call(sched) : null;
  }

  /** clocksource_start_watchdog(): runs while there is a watchdog and something to watch. */
  start(): void {
    if (this.timer.pending || !this.core.watchdog || this.core.watchdogList.length === 0) return;
    // watchdog_timer.expires = jiffies + WATCHDOG_INTERVAL; add_timer_on(&watchdog_timer, cpumask_first(cpu_online_mask))
    this.expires = this.sched.now + this.intervalNs;
    this.cpu = 0;
    this.lastRun = null;
    this.timer.armAt(this.expires);
  }

  /** The CPU whose timer softirq runs the next check. */
  get targetCpu(): number {
    return this.cpu;
  }

  private run(): void {
    const cpu = this.cpu;
    if (this.vcpuRunning && !this.vcpuRunning(cpu)) {
      // A kernel timer on a stopped vCPU fires when the vCPU runs again: after a pause the next check
      // spans the whole pause (so a TSC that ran on while kvmclock was restored shows the pause as skew).
      const at = this.nextVcpuRun?.(cpu);
      if (at !== undefined && at > this.sched.now) this.timer.armAt(at);
      else this.timer.armIn(this.intervalNs);
      return;
    }
    const now = this.sched.now;
    if (this.guestNs && this.lastRun && now > this.expires) {
      // The expiry is in jiffies, which follow the guest's clock: time the guest clock stood still while the
      // vCPU was stopped (kvmclock saved and restored around a pause or snapshot) moves the grid later by as
      // many whole jiffies; a clock that ran on (the TSC, KVM_CLOCK_REALTIME) leaves the grid in place.
      const frozen = now - this.lastRun.host - (this.guestNs() - this.lastRun.guest);
      const ticks = (frozen + this.tickNs / 2n) / this.tickNs;
      if (ticks > 0n) {
        this.expires += ticks * this.tickNs;
        this.lastRun = { host: this.lastRun.host + ticks * this.tickNs, guest: this.lastRun.guest };
        if (this.expires > now) {
          this.timer.armAt(this.expires);
          return;
        }
      }
    }
    const skip = this.skip;
    this.skip = null;
    const wd = this.core.watchdog;
    if (!wd) return;
    if (this.guestNs) this.lastRun = { host: now, guest: this.guestNs() };
    // The interval just ended lies inside the quiet span seen at the last check.
    const inSpan = this.quietUntil !== null && now < this.quietUntil && this.epoch() === this.quietEpoch;
    if (skip) {
      this.checksRun += skip.intervals - 1;
      this.fastForwarded += skip.intervals - 1;
      const n = this.nrCpus;
      this.countSkipped((((cpu - (skip.intervals - 1)) % n) + n) % n, skip.intervals - 1);
    }
    this.checksRun++;
    this.checksOnCpu[cpu]!++;
    let quiet = inSpan;
    const list = this.core.watchdogList;
    for (const cs of list.length === 1 ? [list[0]!] : [...list]) {
      if (cs.has(CLOCK_SOURCE_UNSTABLE)) continue;
      const csnow = cs.read();
      const wdnow = wd.read();
      const st = this.state.get(cs);
      if (!cs.has(CLOCK_SOURCE_WATCHDOG) || !st) {
        cs.flags |= CLOCK_SOURCE_WATCHDOG;
        this.state.set(cs, { wdLast: wdnow, csLast: csnow, skew: null });
        quiet = false;
        continue;
      }
      if (skip && st.skew !== null) {
        if (inSpan && this.spanAgrees(cs, wd, st, csnow, wdnow, skip.intervals)) {
          // every interval of the span passed (see the header): carry on from this reading
          st.wdLast = wdnow;
          st.csLast = csnow;
          continue;
        }
        // a counter changed without a scheduler event: what a late timer sees, one long interval
        this.fastForwardMisses++;
        this.fastForward = false;
      }
      const wdNsec = wd.cyc2ns((wdnow - st.wdLast) & wd.mask);
      const csNsec = cs.cyc2ns((csnow - st.csLast) & cs.mask);
      const wdLast = st.wdLast;
      const csLast = st.csLast;
      st.wdLast = wdnow;
      st.csLast = csnow;
      if (this.longIntervalSkip) {
        // kernel/time/clocksource.c (v6.3+): a stretched interval (late softirq, or a vCPU that did not
        // run — e.g. a paused VM) is not judged, since fixed margins cannot cover it
        const interval = csNsec > wdNsec ? csNsec : wdNsec;
        if (interval > this.intervalMaxNs) {
          if (interval > 2n * this.maxInterval) {
            this.maxInterval = interval;
            this.log(`clocksource: Long readout interval, skipping watchdog check: cs_nsec: ${csNsec} wd_nsec: ${wdNsec}`);
          }
          st.skew = null;
          quiet = false;
          continue;
        }
      }
      const md = cs.uncertaintyMarginNs + wd.uncertaintyMarginNs;
      const skew = csNsec - wdNsec;
      const room = md - roundingNs(cs) - roundingNs(wd);
      st.skew = skew <= room && -skew <= room ? skew : null;
      if (st.skew === null) quiet = false;
      if (skew > md || -skew > md) {
        this.log(
          `clocksource: timekeeping watchdog on CPU${cpu}: Marking clocksource '${cs.name}' as unstable because the skew is too large:`,
        );
        this.log(
          `clocksource: ${PAD}'${wd.name}' wd_nsec: ${wdNsec} wd_now: ${hex(wdnow).slice(2)} wd_last: ${hex(wdLast).slice(2)} mask: ${hex(wd.mask).slice(2)}`,
        );
        this.log(
          `clocksource: ${PAD}'${cs.name}' cs_nsec: ${csNsec} cs_now: ${hex(csnow).slice(2)} cs_last: ${hex(csLast).slice(2)} mask: ${hex(cs.mask).slice(2)}`,
        );
        this.log(
          `clocksource: ${PAD}Clocksource '${cs.name}' skewed ${skew} ns (${skew / 1_000_000n} ms) over watchdog '${wd.name}' interval of ${wdNsec} ns (${wdNsec / 1_000_000n} ms)`,
        );
        const curr = this.core.curr;
        this.log(
          curr === cs
            ? `clocksource: ${PAD}'${cs.name}' is current clocksource.`
            : curr
              ? `clocksource: ${PAD}'${curr.name}' (not '${cs.name}') is current clocksource.`
              : `clocksource: ${PAD}No current clocksource.`,
        );
        cs.flags &= ~(CLOCK_SOURCE_VALID_FOR_HRES | CLOCK_SOURCE_WATCHDOG);
        cs.flags |= CLOCK_SOURCE_UNSTABLE;
        this.onUnstable(cs);
        this.core.markUnstable(cs);
        this.state.delete(cs);
        continue;
      }
      if (!cs.has(CLOCK_SOURCE_VALID_FOR_HRES) && cs.has(CLOCK_SOURCE_IS_CONTINUOUS) && wd.has(CLOCK_SOURCE_IS_CONTINUOUS)) {
        quiet = false;
        cs.flags |= CLOCK_SOURCE_VALID_FOR_HRES;
        if (!this.core.finishedBooting) continue;
        if (cs !== this.core.curr) {
          cs.flags |= CLOCK_SOURCE_RESELECT;
          this.core.select();
        } else {
          this.onHresValid();
        }
      }
    }
    if (this.core.watchdogList.length === 0) return;
    this.streak = quiet ? this.streak + 1 : 0;
    this.armNext(now);
  }

  /** clocksource_watchdog() runs so far, counting the grid points a fast-forward is sleeping through. */
  get checks(): number {
    const skip = this.skip;
    if (!skip) return this.checksRun;
    const passed = Number((this.sched.now - skip.from) / this.intervalNs);
    return this.checksRun + Math.min(passed, skip.intervals - 1);
  }

  private allVcpusRun(): boolean {
    for (let c = 0; c < this.nrCpus; c++) if (!this.vcpuAlwaysRuns(c)) return false;
    return true;
  }

  /** `m` checks fast-forwarded, one per CPU in turn from `from`. */
  private countSkipped(from: number, m: number): void {
    const n = this.nrCpus;
    const each = Math.floor(m / n);
    for (let k = 0; k < n; k++) this.checksOnCpu[(from + k) % n]! += each + (k < m % n ? 1 : 0);
  }

  private epoch(): number {
    return this.counterEpoch ? this.counterEpoch() : 0;
  }

  /**
   * Arm the next run: the next grid point, or — after two quiet intervals that passed with room —
   * the last grid point before the next scheduler event. Called last in run(), while this timer is
   * not pending, so the earliest pending event is someone else's.
   */
  private armNext(now: Ns): void {
    const I = this.intervalNs;
    const due = this.expires;
    // the span's checks are on the grid only if every vCPU they rotate over runs throughout it (the schedule
    // changes only at events)
    const next = this.fastForward && this.counterEpoch && this.nextEventTime && this.allVcpusRun() ? this.nextEventTime() : null;
    // an event still due now (after this one) may schedule anything: no span
    this.quietUntil = next !== null && next > now ? next : null;
    this.quietEpoch = this.epoch();
    // a quiet span's checks all run on time (every vCPU always runs), so `now` is on the grid
    if (this.quietUntil !== null && this.streak >= 2 && now === due) {
      const intervals = Number((this.quietUntil - 1n - now) / I);
      if (intervals >= 2) {
        this.skip = { from: now, intervals };
        this.expires = due + BigInt(intervals) * I;
        // the skipped checks run on the next intervals − 1 CPUs in turn; the last one is due on the one after
        this.cpu = (this.cpu + intervals) % this.nrCpus;
        this.timer.armAt(this.expires);
        return;
      }
    }
    // watchdog_timer.expires += WATCHDOG_INTERVAL: the grid, not the late run, times the next check;
    // add_timer_on(&watchdog_timer, next_cpu): the next online CPU, wrapping to the first
    this.cpu = (this.cpu + 1) % this.nrCpus;
    this.expires = due + I;
    this.timer.armAt(this.expires > now ? this.expires : now + this.tickNs);
  }

  /**
   * The span's average skew (one long delta of each clock, unwrapped) agrees with the last checked
   * interval's within the rounding bound: the counters really were affine in between. A counter whose
   * mask the span's delta may exceed cannot tell, and relies on the counter epoch alone.
   */
  private spanAgrees(cs: Clocksource, wd: Clocksource, st: WdState, csnow: Cycles, wdnow: Cycles, intervals: number): boolean {
    const spanNs = BigInt(intervals) * this.intervalNs;
    if (wraps(cs, spanNs) || wraps(wd, spanNs)) return true;
    const n = BigInt(intervals);
    const csTotal = (((csnow - st.csLast) & cs.mask) * BigInt(cs.mult)) >> BigInt(cs.shift);
    const wdTotal = (((wdnow - st.wdLast) & wd.mask) * BigInt(wd.mult)) >> BigInt(wd.shift);
    const drift = csTotal - wdTotal - n * st.skew!;
    const bound = n * (roundingNs(cs) + roundingNs(wd)) + 2n;
    return drift <= bound && -drift <= bound;
  }
}

const roundingCache = new WeakMap<Clocksource, { mult: number; shift: number; ns: Ns }>();

/** How far one interval's delta of `cs` can stray from the affine value, ns (counts of rounding). */
function roundingNs(cs: Clocksource): Ns {
  const c = roundingCache.get(cs);
  if (c && c.mult === cs.mult && c.shift === cs.shift) return c.ns;
  const perCount = (BigInt(cs.mult) + (1n << BigInt(cs.shift)) - 1n) >> BigInt(cs.shift); // ceil ns per count
  const ns = BigInt(ROUNDING_COUNTS) * perCount + ROUNDING_SLACK_NS;
  roundingCache.set(cs, { mult: cs.mult, shift: cs.shift, ns });
  return ns;
}

/** Whether a delta of `cs` over `spanNs` may exceed its mask (counting at up to twice its registered
 *  rate): the masked long delta is then ambiguous. */
function wraps(cs: Clocksource, spanNs: Ns): boolean {
  if (cs.freqHz === 0n) return true;
  return (spanNs * cs.freqHz * 2n) / 1_000_000_000n >= cs.mask;
}
