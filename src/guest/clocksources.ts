// The clocksource list and its selection, as kernel/time/clocksource.c keeps them: registration in
// rating order (clocksource_enqueue), the watchdog list (clocksource_enqueue_watchdog), the choice
// of watchdog (clocksource_select_watchdog), the best-clocksource choice with the clocksource=
// override (__clocksource_select), marking unstable, and the sysfs files under
// /sys/devices/system/clocksource/clocksource0.
import {
  CLOCK_SOURCE_IS_CONTINUOUS,
  CLOCK_SOURCE_MUST_VERIFY,
  CLOCK_SOURCE_UNSTABLE,
  CLOCK_SOURCE_VALID_FOR_HRES,
  CLOCK_SOURCE_WATCHDOG,
  type Clocksource,
  clocksourceUpdateFreqScale,
} from './clocksource.ts';
import { InputError } from '../core/index.ts';

export interface ClocksourceEvents {
  /** A line printed with the "clocksource: " prefix or by a driver. */
  log(line: string): void;
  /** timekeeping_notify(): the timekeeper switches to `cs`. */
  changeClocksource(cs: Clocksource): void;
  /** tick_oneshot_mode_active() now. */
  oneshotActive(): boolean;
  /** tick_clock_notify(): a clocksource became valid for high resolution mode. */
  clockNotify?(): void;
}

export class ClocksourceCore {
  /** clocksource_list, highest rating first. */
  readonly list: Clocksource[] = [];
  readonly watchdogList: Clocksource[] = [];
  curr: Clocksource | null = null;
  watchdog: Clocksource | null = null;
  finishedBooting = false;
  overrideName: string;
  /** CONFIG_CLOCKSOURCE_WATCHDOG. */
  readonly watchdogEnabled: boolean;

  constructor(
    private readonly ev: ClocksourceEvents,
    opts: { override: string | null; watchdog: boolean },
  ) {
    this.overrideName = opts.override ?? '';
    this.watchdogEnabled = opts.watchdog;
  }

  /** clocksource_default_clock(): jiffies until something better is selected. */
  setDefault(cs: Clocksource): void {
    this.curr = cs;
  }

  /** __clocksource_register_scale(cs, scale, freq). */
  register(cs: Clocksource, scale: number, freq: number): void {
    if (this.list.includes(cs)) throw new Error(`clocksource ${cs.name} registered twice`);
    clocksourceUpdateFreqScale(cs, scale, freq);
    this.ev.log(cs.registerLine());
    this.enqueue(cs);
    this.enqueueWatchdog(cs);
    this.select();
    this.selectWatchdog(false);
  }

  /** clocksource_enqueue(): after every entry with a rating >= its own. */
  private enqueue(cs: Clocksource): void {
    let i = 0;
    while (i < this.list.length && this.list[i]!.rating >= cs.rating) i++;
    this.list.splice(i, 0, cs);
  }

  private enqueueWatchdog(cs: Clocksource): void {
    if (!this.watchdogEnabled) {
      // !CONFIG_CLOCKSOURCE_WATCHDOG: every continuous clocksource is usable for hres at once
      if (cs.has(CLOCK_SOURCE_IS_CONTINUOUS)) cs.flags |= CLOCK_SOURCE_VALID_FOR_HRES;
      return;
    }
    if (cs.has(CLOCK_SOURCE_MUST_VERIFY)) {
      this.watchdogList.push(cs);
      cs.flags &= ~CLOCK_SOURCE_WATCHDOG;
    } else if (cs.has(CLOCK_SOURCE_IS_CONTINUOUS)) {
      // cs is a watchdog itself
      cs.flags |= CLOCK_SOURCE_VALID_FOR_HRES;
    }
  }

  /** clocksource_select_watchdog(): the best-rated clocksource that need not be verified. */
  selectWatchdog(fallback: boolean): void {
    if (!this.watchdogEnabled) return;
    const old = this.watchdog;
    if (fallback) this.watchdog = null;
    let best: Clocksource | null = fallback ? null : this.watchdog;
    for (const cs of this.list) {
      if (cs.has(CLOCK_SOURCE_MUST_VERIFY)) continue;
      if (fallback && cs === old) continue;
      if (!best || cs.rating > best.rating) best = cs;
    }
    this.watchdog = best;
  }

  /** clocksource_done_booting() (fs_initcall). */
  doneBooting(): void {
    this.finishedBooting = true;
    this.select();
  }

  /** clocksource_find_best(). */
  private findBest(oneshot: boolean, skipcur: boolean): Clocksource | null {
    if (!this.finishedBooting || this.list.length === 0) return null;
    for (const cs of this.list) {
      if (skipcur && cs === this.curr) continue;
      if (oneshot && !cs.has(CLOCK_SOURCE_VALID_FOR_HRES)) continue;
      return cs;
    }
    return null;
  }

  /** __clocksource_select(skipcur). */
  select(skipcur = false): void {
    const oneshot = this.ev.oneshotActive();
    let best = this.findBest(oneshot, skipcur);
    if (!best) return;
    if (this.overrideName) {
      for (const cs of this.list) {
        if (skipcur && cs === this.curr) continue;
        if (cs.name !== this.overrideName) continue;
        if (!cs.has(CLOCK_SOURCE_VALID_FOR_HRES) && oneshot) {
          if (cs.has(CLOCK_SOURCE_UNSTABLE)) {
            this.ev.log(
              `clocksource: Override clocksource ${cs.name} is unstable and not HRT compatible - cannot switch while in HRT/NOHZ mode`,
            );
            this.overrideName = '';
          } else {
            this.ev.log(`clocksource: Override clocksource ${cs.name} is not currently HRT compatible - deferring`);
          }
        } else {
          best = cs;
        }
        break;
      }
    }
    if (this.curr !== best) {
      this.ev.log(`clocksource: Switched to clocksource ${best.name}`);
      this.curr = best;
      this.ev.changeClocksource(best);
    }
  }

  /** clocksource_unregister(). */
  unregister(cs: Clocksource): void {
    const i = this.list.indexOf(cs);
    if (i < 0) return;
    if (cs === this.watchdog) this.selectWatchdog(true);
    if (cs === this.curr) {
      this.select(true);
      if (this.curr === cs) return; // no replacement: the kernel refuses (-EBUSY)
    }
    this.list.splice(this.list.indexOf(cs), 1);
    const w = this.watchdogList.indexOf(cs);
    if (w >= 0) this.watchdogList.splice(w, 1);
  }

  /** __clocksource_unstable(): rating drops out of selection, reselect away from it. */
  markUnstable(cs: Clocksource): void {
    cs.flags &= ~(CLOCK_SOURCE_VALID_FOR_HRES | CLOCK_SOURCE_WATCHDOG);
    cs.flags |= CLOCK_SOURCE_UNSTABLE;
    // clocksource_watchdog_work → __clocksource_change_rating(cs, 0): move to the end
    const i = this.list.indexOf(cs);
    if (i >= 0) {
      this.list.splice(i, 1);
      cs.rating = 0;
      this.enqueue(cs);
    }
    const w = this.watchdogList.indexOf(cs);
    if (w >= 0) this.watchdogList.splice(w, 1);
    this.select();
  }

  byName(name: string): Clocksource | undefined {
    return this.list.find((c) => c.name === name);
  }

  /** available_clocksource_show(): jiffies hidden once the tick is one-shot. */
  availableText(): string {
    const oneshot = this.ev.oneshotActive();
    let s = '';
    for (const cs of this.list) if (!oneshot || cs.has(CLOCK_SOURCE_VALID_FOR_HRES)) s += `${cs.name} `;
    return s + '\n';
  }

  /** current_clocksource_show(). */
  currentText(): string {
    return `${this.curr?.name ?? ''}\n`;
  }

  /** Writing current_clocksource: sets the override and reselects (current_clocksource_store). */
  writeCurrent(text: string): void {
    const name = text.replace(/\n$/, '');
    if (name.length >= 32) throw new InputError(`clocksource name too long (${name.length} characters, max 31)`, 'current_clocksource');
    this.overrideName = name;
    this.select();
  }
}
