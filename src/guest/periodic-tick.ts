// jiffies and the periodic tick (kernel/time/tick-common.c tick_handle_periodic → tick_periodic →
// do_timer(1)), with what a descheduled vCPU does to the timer interrupt, until the tick switches to
// one-shot mode (kernel/time/tick-sched.c), after which jiffies follow ktime (tick_do_update_jiffies64).
import type { Scheduler, Timer } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import type { GuestPlatform } from './platform.ts';

export interface PeriodicTickDeps {
  scheduler: Scheduler;
  platform: GuestPlatform;
  hz: number;
  tickNsec: Ns;
  /** ns since kernel entry. */
  uptimeNs(): Ns;
  /** The tick runs in one-shot mode now: the periodic timer stops. */
  oneshot(): boolean;
  /** The tick device is KVM's PIT, which reinjects missed ticks (else the LAPIC timer, which coalesces). */
  reinjects(): boolean;
  /** update_process_times → sched_tick → sched_clock_tick. */
  schedClockTick(): void;
}

export class PeriodicTick {
  /** Periodic-tick interrupts dropped because one was still pending (LAPIC timer coalescing). */
  ticksLost = 0;
  private ticksHandled = 0n;
  private pendingTicks = 0n;
  private oneshotBase: { ticks: bigint; t: Ns } | null = null;
  private periodicTimer: Timer | null = null;
  private deliveryTimer: Timer | null = null;

  constructor(private readonly d: PeriodicTickDeps) {}

  /**
   * jiffies (32-bit, as the jiffies clocksource reads it): INITIAL_JIFFIES plus ticks handled. With a
   * periodic tick each handled interrupt is one jiffy (tick_periodic → do_timer(1)), so ticks lost
   * while the vCPU was descheduled are lost jiffies; once the tick is one-shot, jiffies follow
   * ktime (tick_do_update_jiffies64).
   */
  jiffies(): bigint {
    const initial = BigInt.asUintN(32, BigInt(-300 * this.d.hz));
    let ticks: bigint;
    if (this.oneshotBase) ticks = this.oneshotBase.ticks + (this.d.uptimeNs() - this.oneshotBase.t) / this.d.tickNsec;
    else ticks = this.ticksHandled; // no tick device before x86_late_time_init: no timer interrupt, jiffies stay
    return BigInt.asUintN(32, initial + ticks);
  }

  /** Ticks counted so far, delivered or waiting for the vCPU. */
  ticks(): bigint {
    return this.ticksHandled + this.pendingTicks;
  }

  /**
   * Start the periodic tick (tick_handle_periodic) when the first clockevent device registers: on
   * x86 that is x86_late_time_init (hpet_time_init / pit_timer_init, then the local APIC timer);
   * until then no timer interrupt arrives and jiffies do not move.
   */
  start(): void {
    this.periodicTimer = this.d.scheduler.timer(() => this.expire());
    this.periodicTimer.armIn(this.d.tickNsec);
  }

  /** tick_nohz_switch_to_nohz / hrtimer_switch_to_hres: jiffies follow ktime from here on. */
  switchToOneshot(): void {
    this.oneshotBase = { ticks: this.ticks(), t: this.d.uptimeNs() };
    this.periodicTimer?.cancel();
  }

  /**
   * One expiry of the periodic timer. While vCPU 0 is descheduled the interrupt waits: KVM's PIT in
   * reinject mode counts every missed tick and delivers them one per EOI afterwards (i8254.c
   * pit_timer_fn/kvm_pit_ack_irq), while the LAPIC timer drops an expiry that finds one still
   * pending (lapic.c apic_timer_expired): those jiffies are lost.
   */
  private expire(): void {
    if (this.d.oneshot()) return;
    this.periodicTimer!.armIn(this.d.tickNsec);
    const p = this.d.platform;
    if (p.vcpuRunning && !p.vcpuRunning(0)) {
      if (this.pendingTicks === 0n || this.d.reinjects()) this.pendingTicks++;
      else this.ticksLost++;
      if (!this.deliveryTimer)
        this.deliveryTimer = this.d.scheduler.timer(() => {
          this.deliverPending();
          this.d.schedClockTick();
        });
      if (!this.deliveryTimer.pending && p.nextVcpuRun) this.deliveryTimer.armAt(p.nextVcpuRun(0));
      return;
    }
    this.deliverPending();
    this.ticksHandled++;
    this.d.schedClockTick();
  }

  private deliverPending(): void {
    this.ticksHandled += this.pendingTicks;
    this.pendingTicks = 0n;
  }
}
