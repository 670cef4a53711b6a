// sched_clock stability on x86 (kernel/sched/clock.c, CONFIG_HAVE_UNSTABLE_SCHED_CLOCK, which x86
// selects). Until sched_clock_init_late() (a late_initcall) local_clock() is built from GTOD
// (ktime_get_ns) plus sched_clock() deltas; then, unless something called clear_sched_clock_stable()
// first, the raw sched_clock() is declared stable, with __sched_clock_offset chosen so that the
// switch is continuous, and the kernel prints
//   sched_clock: Marking stable (tick_gtod, __gtod_offset)->(tick_raw, __sched_clock_offset)
// from the last stamps the scheduler tick took. Who clears it: kvm_sched_clock_init() when the
// kvmclock record lacks PVCLOCK_TSC_STABLE_BIT (arch/x86/kernel/kvmclock.c), and mark_tsc_unstable()
// / the watchdog's tsc_cs_mark_unstable() while the native (TSC) sched_clock is in use
// (arch/x86/kernel/tsc.c). A clear after the late initcall runs __sched_clock_work, which stamps
// afresh and prints "Marking unstable".
import type { Ns } from '../core/index.ts';

export interface SchedClockDeps {
  /** sched_clock(): the raw scheduler clock (paravirt kvm_sched_clock_read, native TSC or jiffies). */
  sched: () => Ns;
  /** ktime_get_ns(): CLOCK_MONOTONIC. */
  ktime: () => Ns;
  printk: (line: string) => void;
}

export class SchedClock {
  /** __sched_clock_stable_early: starts 1 so that there is only one 1 → 0 transition. */
  stableEarly = true;
  /** sched_clock_running: 0, 1 after sched_clock_init(), 2 after sched_clock_init_late(). */
  running = 0;
  /** The __sched_clock_stable static key. */
  stable = false;
  /** __sched_clock_offset. */
  offset: Ns = 0n;
  /** __gtod_offset. */
  gtodOffset: Ns = 0n;
  /** This CPU's sched_clock_data stamps. */
  tickRaw: Ns = 0n;
  tickGtod: Ns = 0n;

  constructor(private readonly deps: SchedClockDeps) {}

  /** __scd_stamp(). */
  private stamp(): void {
    this.tickGtod = this.deps.ktime();
    this.tickRaw = this.deps.sched();
  }

  /** sched_clock_init() (start_kernel, right after late_time_init): __sched_clock_gtod_offset(). */
  init(): void {
    this.stamp();
    this.gtodOffset = this.tickRaw + this.offset - this.tickGtod;
    this.running = 1;
  }

  /** sched_clock_tick(): each scheduler tick stamps while sched_clock is not stable. */
  tick(): void {
    if (this.stable || this.running === 0) return;
    this.stamp();
  }

  /** sched_clock_init_late() (late_initcall). */
  initLate(): void {
    this.running = 2;
    if (this.stableEarly) this.setStable();
  }

  /** __set_sched_clock_stable(): make the unstable → stable transition continuous. */
  private setStable(): void {
    this.offset = this.tickGtod + this.gtodOffset - this.tickRaw;
    this.deps.printk(`sched_clock: Marking stable (${this.tickGtod}, ${this.gtodOffset})->(${this.tickRaw}, ${this.offset})`);
    this.stable = true;
  }

  /** clear_sched_clock_stable(). */
  clear(): void {
    this.stableEarly = false;
    if (this.running === 2 && this.stable) this.work();
  }

  /** __sched_clock_work() (scheduled by __clear_sched_clock_stable; run at once in the model). */
  private work(): void {
    this.stamp();
    this.deps.printk("TSC found unstable after boot, most likely due to broken BIOS. Use 'tsc=unstable'.");
    this.deps.printk(`sched_clock: Marking unstable (${this.tickGtod}, ${this.gtodOffset})<-(${this.tickRaw}, ${this.offset})`);
    this.stable = false;
  }
}
