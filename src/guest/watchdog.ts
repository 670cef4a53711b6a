// The clocksource watchdog (kernel/time/clocksource.c clocksource_watchdog): every
// WATCHDOG_INTERVAL each watched clocksource's elapsed time is compared with the watchdog's; a
// difference beyond both uncertainty margins marks it unstable, a clean pass makes a continuous
// one valid for high resolution mode.
import type { Scheduler, Timer } from '../core/engine.ts';
import type { Cycles, Ns } from '../core/time.ts';
import { hex } from '../core/u64.ts';
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
}

export class ClocksourceWatchdog {
  private readonly timer: Timer;
  private readonly state = new Map<Clocksource, WdState>();
  readonly intervalNs: Ns;
  checks = 0;

  constructor(
    private readonly core: ClocksourceCore,
    private readonly sched: Scheduler,
    hz: number,
    private readonly log: (line: string) => void,
    /** cs->mark_unstable callbacks (tsc_cs_mark_unstable). */
    private readonly onUnstable: (cs: Clocksource) => void,
    private readonly onHresValid: () => void,
  ) {
    // WATCHDOG_INTERVAL = HZ >> 1 jiffies
    this.intervalNs = (BigInt(hz >> 1) * 1_000_000_000n) / BigInt(hz);
    this.timer = sched.timer(() => this.run());
  }

  /** clocksource_start_watchdog(): runs while there is a watchdog and something to watch. */
  start(): void {
    if (this.timer.pending || !this.core.watchdog || this.core.watchdogList.length === 0) return;
    this.timer.armIn(this.intervalNs);
  }

  private run(): void {
    const wd = this.core.watchdog;
    if (!wd) return;
    this.checks++;
    for (const cs of [...this.core.watchdogList]) {
      if (cs.has(CLOCK_SOURCE_UNSTABLE)) continue;
      const csnow = cs.read();
      const wdnow = wd.read();
      const st = this.state.get(cs);
      if (!cs.has(CLOCK_SOURCE_WATCHDOG) || !st) {
        cs.flags |= CLOCK_SOURCE_WATCHDOG;
        this.state.set(cs, { wdLast: wdnow, csLast: csnow });
        continue;
      }
      const wdNsec = wd.cyc2ns((wdnow - st.wdLast) & wd.mask);
      const csNsec = cs.cyc2ns((csnow - st.csLast) & cs.mask);
      const wdLast = st.wdLast;
      const csLast = st.csLast;
      st.wdLast = wdnow;
      st.csLast = csnow;
      const md = cs.uncertaintyMarginNs + wd.uncertaintyMarginNs;
      const skew = csNsec - wdNsec;
      if (skew > md || -skew > md) {
        this.log(`clocksource: timekeeping watchdog on CPU0: Marking clocksource '${cs.name}' as unstable because the skew is too large:`);
        this.log(`clocksource: ${PAD}'${wd.name}' wd_nsec: ${wdNsec} wd_now: ${hex(wdnow).slice(2)} wd_last: ${hex(wdLast).slice(2)} mask: ${hex(wd.mask).slice(2)}`);
        this.log(`clocksource: ${PAD}'${cs.name}' cs_nsec: ${csNsec} cs_now: ${hex(csnow).slice(2)} cs_last: ${hex(csLast).slice(2)} mask: ${hex(cs.mask).slice(2)}`);
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
    if (this.core.watchdogList.length > 0) this.timer.armIn(this.intervalNs);
  }
}
