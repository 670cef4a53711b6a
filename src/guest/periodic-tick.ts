// The tick (kernel/time/tick-common.c, tick-sched.c, hrtimer.c) on the clock event device that
// clockevents.ts selected, programmed as Linux programs it and run from that device's interrupt:
//   pit             drivers/clocksource/i8253.c pit_set_periodic: mode 2 with LATCH; IRQ0 → timer_interrupt →
//                   tick_handle_periodic
//   lapic           arch/x86/kernel/apic/apic.c __setup_APIC_LVTT: periodic LVT, divide by 16, TMICT =
//                   lapic_timer_period/16; one-shot: lapic_next_event writes TMICT
//   lapic-deadline  apic.c lapic_next_deadline: WRMSR IA32_TSC_DEADLINE = rdtsc + delta·TSC_DIVISOR; a periodic
//                   tick is emulated by tick_handle_periodic's one-shot branch
// Periodic: each tick handled is do_timer(1) and update_wall_time (tick_periodic); the timekeeper update is
// thinned to every `updateInterval` worth of ticks when the model asks for that. One-shot (NOHZ/high
// resolution): hrtimer_interrupt runs tick_sched_timer every `updateInterval` of ktime (an idle NOHZ guest's
// next timer), which updates the timekeeper, and jiffies follow ktime (tick_do_update_jiffies64).
// Every CPU has its own tick device (tick_cpu_device, tick_sched): a per-CPU LAPIC timer on each vCPU, taking
// its own interrupts, late or lost on its own thread's schedule; update_process_times accounts that CPU's
// steal at its own tick. tick_do_timer_cpu (CPU 0 from boot) runs do_timer/update_wall_time; once one-shot,
// an idle CPU that stops its tick gives the duty up (tick_nohz_stop_tick: TICK_DO_TIMER_NONE) and the next
// CPU to run tick_sched_timer takes it (tick_sched_do_timer), updating the wall time only when a jiffy has
// passed since the last update (tick_do_update_jiffies64). The PIT is a global device: it ticks CPU 0 only.
// Where the platform wired no interrupt path (GuestPlatform.interrupts absent) or the device is one the
// model does not program (an HPET tick, a one-shot PIT), the tick is a side timer, as before issue 12.
import type { Scheduler, Timer, TraceRecorder } from '../core/index.ts';
import {
  APIC_LVT_TIMER_PERIODIC,
  APIC_LVT_TIMER_TSCDEADLINE,
  clocksCalcMultShift,
  IRQ0_VECTOR,
  LOCAL_TIMER_VECTOR,
  MSR_IA32_TSC_DEADLINE,
  NSEC_PER_SEC,
  u64,
  X2APIC_LVTT,
  X2APIC_TDCR,
  X2APIC_TMICT,
  type Ns,
} from '../core/index.ts';
import type { ClockeventDevice } from './clockevents.ts';
import { PIT_TICK_RATE } from './jiffies.ts';
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
  /** ktime_get() on CPU `cpu`: CLOCK_MONOTONIC, what clockevents_program_event measures deltas against. */
  ktime?(cpu: number): Ns;
  /** tsc_khz (lapic-deadline's frequency) and lapic_timer_period (0: unknown). */
  tscKhz?(): number;
  lapicTimerPeriod?(): number;
  /** timekeeping_valid_for_hres(): the current clocksource is continuous. */
  hresValid?(): boolean;
  /** vCPU `cpu` has nothing to run after the interrupt: it halts (default_idle) and, NOHZ, stops its tick. */
  idle?(cpu: number): boolean;
  /** The kernel's word size (~0UL as lapic-deadline's max_delta_ticks). */
  bits?: 32 | 64;
  trace?: TraceRecorder;
}

// arch/x86/kernel/apic/apic.c, drivers/clocksource/i8253.c
const APIC_TDR_DIV_16 = 0x3;
const APIC_DIVISOR = 16n;
const TSC_DIVISOR = 8n;
const PIT_MODE = 0x43;
const PIT_CH0 = 0x40;

/** A clock event device's conversion (struct clock_event_device mult/shift, min/max_delta_ns). */
export interface ClockeventScale {
  mult: bigint;
  shift: bigint;
  minDeltaNs: Ns;
  maxDeltaNs: Ns;
}

/** cev_delta2ns (kernel/time/clockevents.c): ticks to ns, rounded up (not for max unless mult ≤ 1<<shift), at least 1 µs. */
export function cevDelta2ns(latch: bigint, mult: bigint, shift: bigint, isMax: boolean): Ns {
  const U64 = (1n << 64n) - 1n;
  let clc = u64(latch << shift);
  const rnd = mult - 1n;
  if (clc >> shift !== latch) clc = U64;
  if (U64 - clc > rnd && (!isMax || mult <= 1n << shift)) clc += rnd;
  clc /= mult;
  return clc > 1000n ? clc : 1000n;
}

/** clockevents_config (kernel/time/clockevents.c): mult/shift for `freq` Hz, and the delta limits. */
export function clockeventsConfig(freq: number, minTicks: bigint, maxTicks: bigint): ClockeventScale {
  let sec = maxTicks / BigInt(freq);
  if (sec === 0n) sec = 1n;
  else if (sec > 600n && maxTicks > 0xffff_ffffn) sec = 600n;
  const { mult, shift } = clocksCalcMultShift(Number(NSEC_PER_SEC), freq, Number(sec));
  const m = BigInt(mult);
  const s = BigInt(shift);
  return { mult: m, shift: s, minDeltaNs: cevDelta2ns(minTicks, m, s, false), maxDeltaNs: cevDelta2ns(maxTicks, m, s, true) };
}

/** lapic_init_clockevent: mult = div_sc(lapic_timer_period/APIC_DIVISOR, TICK_NSEC, 32), ticks 0xF … 0x7FFFFFFF. */
export function lapicClockeventScale(lapicTimerPeriod: bigint, tickNsec: Ns): ClockeventScale {
  const mult = ((lapicTimerPeriod / APIC_DIVISOR) << 32n) / tickNsec;
  return { mult, shift: 32n, minDeltaNs: cevDelta2ns(0xfn, mult, 32n, false), maxDeltaNs: cevDelta2ns(0x7fff_ffffn, mult, 32n, false) };
}

/** TICK_DO_TIMER_NONE (kernel/time/tick-internal.h): no CPU has the do_timer duty. */
const TICK_DO_TIMER_NONE = -1;

/** One CPU's tick (tick_cpu_device + tick_sched) on its own clock event device. */
interface TickCpu {
  readonly cpu: number;
  /** dev->next_event (ktime). */
  nextEvent: Ns;
  /** Timer interrupts this CPU handled. */
  timerIrqs: number;
  /** Periods its tick_handle_periodic one-shot loop skipped (not valid for hres). */
  ticksLost: number;
  /** update_wall_time runs it made as tick_do_timer_cpu. */
  wallTimeUpdates: number;
  /** Periodic ticks since its last update (thinned to `every`). */
  since: bigint;
  /** tick_sched_timer's expiry (ktime), once one-shot. */
  expires: Ns;
}

export class PeriodicTick {
  /** Timer interrupts the guest handled (all CPUs). */
  timerIrqs = 0;
  private ticksHandled = 0n;
  private pendingTicks = 0n;
  private sideTicksLost = 0;
  private oneshotBase: { ticks: bigint; t: Ns } | null = null;
  private periodicTimer: Timer | null = null;
  private deliveryTimer: Timer | null = null;
  // the wired tick
  private device: ClockeventDevice | null = null;
  private wired = false;
  private scale: ClockeventScale | null = null;
  /** Each CPU's tick: every vCPU for a per-CPU device (the LAPIC timer), CPU 0 for the PIT. */
  private cpus: TickCpu[] = [];
  /** tick_do_timer_cpu. */
  private doTimerCpu = 0;
  /** last_jiffies_update + TICK_NSEC (ktime): tick_do_update_jiffies64 updates only at or after it. */
  private tickNextPeriod: Ns = 0n;
  /** update_wall_time and each CPU's process accounting from its tick: every `every` periodic ticks, or
   *  tick_sched_timer's expiry every `intervalNs` of ktime once one-shot. */
  private update: { wallTime: () => void; account: (cpu: number) => void; intervalNs: Ns; every: bigint } | null = null;

  constructor(private readonly d: PeriodicTickDeps) {}

  /** Periods the tick never ran for: interrupts dropped as still pending (side model), or periods
   *  tick_handle_periodic's one-shot emulation skipped on any CPU (the clocksource is not valid for hres). */
  get ticksLost(): number {
    let n = this.sideTicksLost;
    for (const c of this.cpus) n += c.ticksLost;
    return n;
  }

  /** Timer interrupts each CPU handled (index: CPU; empty while the tick is a side timer). */
  get timerIrqsByCpu(): number[] {
    return this.cpus.map((c) => c.timerIrqs);
  }

  /** update_wall_time runs from each CPU's tick (index: CPU). */
  get wallTimeUpdatesByCpu(): number[] {
    return this.cpus.map((c) => c.wallTimeUpdates);
  }

  /** tick_do_timer_cpu: the CPU that updates jiffies and the wall time (-1: TICK_DO_TIMER_NONE). */
  get doTimerCpuNow(): number {
    return this.doTimerCpu;
  }

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

  /** Whether the device's interrupt drives the tick (else a side timer does). */
  get interruptDriven(): boolean {
    return this.wired;
  }

  /**
   * Start the periodic tick (tick_setup_periodic) when the clock event device registers: on x86 that is
   * x86_late_time_init (hpet_time_init / pit_timer_init, then the local APIC timer); until then no timer
   * interrupt arrives and jiffies do not move. The secondaries' LAPIC timers start with CPU 0's (Linux sets
   * them up at smp_init, tens of ms later: their ticks before then change nothing the model reports).
   */
  start(device?: ClockeventDevice | null): void {
    const itf = this.d.platform.interrupts;
    const name = device?.name;
    if (itf && device && (name === 'pit' || name === 'lapic' || name === 'lapic-deadline')) {
      this.device = device;
      this.wired = true;
      const n = device.perCpu ? Math.max(1, this.d.platform.vcpus) : 1;
      this.cpus = Array.from({ length: n }, (_, cpu) => ({
        cpu,
        nextEvent: 0n,
        timerIrqs: 0,
        ticksLost: 0,
        wallTimeUpdates: 0,
        since: 0n,
        expires: 0n,
      }));
      itf.setHandler((cpu, vector) => this.interrupt(cpu, vector));
      for (const c of this.cpus) this.setupPeriodic(c);
      return;
    }
    this.periodicTimer = this.d.scheduler.timer(() => this.expire());
    this.periodicTimer.armIn(this.d.tickNsec);
  }

  /** tick_nohz_switch_to_nohz / hrtimer_switch_to_hres: jiffies follow ktime from here on. */
  switchToOneshot(): void {
    this.oneshotBase = { ticks: this.ticks(), t: this.d.uptimeNs() };
    this.periodicTimer?.cancel();
    if (!this.wired) return;
    const itf = this.d.platform.interrupts!;
    const name = this.device!.name;
    if (name === 'pit') {
      // no one-shot PIT model: shut it down (clockevent_i8253_disable) and fall back to the side timer
      itf.outb(PIT_MODE, 0x30);
      itf.outb(PIT_CH0, 0);
      itf.outb(PIT_CH0, 0);
      this.wired = false;
      return;
    }
    // lapic_timer_set_oneshot → __setup_APIC_LVTT(lapic_timer_period, 1, 1): no TMICT write
    if (name === 'lapic')
      for (const c of this.cpus) {
        itf.wrmsrApic(c.cpu, X2APIC_LVTT, BigInt(LOCAL_TIMER_VECTOR));
        itf.wrmsrApic(c.cpu, X2APIC_TDCR, BigInt(APIC_TDR_DIV_16));
      }
  }

  /**
   * update_wall_time (on the do_timer CPU) and process accounting (on each CPU) from here on (after boot):
   * with a wired tick, from each CPU's tick handler — every `intervalNs` worth of periodic ticks, or
   * tick_sched_timer every `intervalNs` of ktime once one-shot (every CPU on the same grid: no skew_tick).
   * False when the tick is a side timer (the caller then runs its own update timer).
   */
  startUpdates(intervalNs: Ns, wallTime: () => void, account: (cpu: number) => void): boolean {
    // the VMM's direct one-shot tick: a side timer at the expiries the wired tick would program (boot.ts)
    if (!this.wired || (this.d.oneshot() && this.d.platform.directOneshotTick)) return false;
    const every = intervalNs > this.d.tickNsec ? intervalNs / this.d.tickNsec : 1n;
    this.update = { wallTime, account, intervalNs, every };
    const tick = this.d.tickNsec;
    const k0 = this.ktime(0);
    // last_jiffies_update on the TICK_NSEC grid of ktime
    this.tickNextPeriod = k0 - (k0 % tick) + tick;
    for (const c of this.cpus) {
      c.since = 0n;
      c.expires = k0 + intervalNs;
      if (this.d.oneshot()) this.programEvent(c, c.expires);
    }
    return true;
  }

  private ktime(cpu: number): Ns {
    return this.d.ktime ? this.d.ktime(cpu) : this.d.uptimeNs();
  }

  // ---------------------------------------------------------------- programming the device

  /** tick_setup_periodic on `c`: the device's periodic mode, or its one-shot mode stepped by TICK_NSEC. */
  private setupPeriodic(c: TickCpu): void {
    const itf = this.d.platform.interrupts!;
    const hz = BigInt(this.d.hz);
    switch (this.device!.name) {
      case 'pit': {
        // pit_set_periodic: channel 0, lobyte/hibyte, mode 2, binary; LATCH = (CLOCK_TICK_RATE + HZ/2) / HZ
        const latch = (BigInt(PIT_TICK_RATE) + hz / 2n) / hz;
        itf.outb(PIT_MODE, 0x34);
        itf.outb(PIT_CH0, Number(latch & 0xffn));
        itf.outb(PIT_CH0, Number(latch >> 8n));
        return;
      }
      case 'lapic': {
        // lapic_timer_set_periodic → __setup_APIC_LVTT(lapic_timer_period, 0, 1): LVTT, TDCR, then TMICT
        const period = this.lapicTimerPeriod();
        itf.wrmsrApic(c.cpu, X2APIC_LVTT, BigInt(LOCAL_TIMER_VECTOR | APIC_LVT_TIMER_PERIODIC));
        itf.wrmsrApic(c.cpu, X2APIC_TDCR, BigInt(APIC_TDR_DIV_16));
        itf.wrmsrApic(c.cpu, X2APIC_TMICT, period / APIC_DIVISOR);
        this.scale = lapicClockeventScale(period, this.d.tickNsec);
        return;
      }
      case 'lapic-deadline': {
        // lapic_timer_set_oneshot: LVTT in TSC-deadline mode; the deadline device has no periodic mode
        itf.wrmsrApic(c.cpu, X2APIC_LVTT, BigInt(LOCAL_TIMER_VECTOR | APIC_LVT_TIMER_TSCDEADLINE));
        const maxTicks = this.d.bits === 32 ? 0xffff_ffffn : (1n << 64n) - 1n;
        this.scale ??= clockeventsConfig((this.d.tscKhz?.() ?? 0) * Number(1000n / TSC_DIVISOR), 0xfn, maxTicks);
        // tick_setup_device: tick_next_period = ktime_get() rounded up to TICK_NSEC; program it or the next one
        const now = this.ktime(c.cpu);
        let next = now % this.d.tickNsec === 0n ? now : now + this.d.tickNsec - (now % this.d.tickNsec);
        while (!this.programEvent(c, next)) next += this.d.tickNsec;
        return;
      }
      default:
    }
  }

  /** lapic_timer_period, or KVM's 1 GHz APIC bus over HZ when the guest has not measured it. */
  private lapicTimerPeriod(): bigint {
    const p = this.d.lapicTimerPeriod?.() ?? 0;
    return p > 0 ? BigInt(p) : NSEC_PER_SEC / BigInt(this.d.hz);
  }

  /**
   * clockevents_program_event(dev, expires, false) on `c`'s device: -ETIME (false) for an expiry not in the
   * future, else the delta clamped to the device's limits, in device ticks, to set_next_event (that CPU's
   * rdtsc for lapic_next_deadline).
   */
  private programEvent(c: TickCpu, expires: Ns, now: Ns = this.ktime(c.cpu)): boolean {
    c.nextEvent = expires;
    let delta = expires - now;
    if (delta <= 0n) return false;
    const sc = this.scale!;
    if (delta > sc.maxDeltaNs) delta = sc.maxDeltaNs;
    if (delta < sc.minDeltaNs) delta = sc.minDeltaNs;
    const clc = u64(delta * sc.mult) >> sc.shift;
    const itf = this.d.platform.interrupts!;
    if (this.device!.name === 'lapic-deadline')
      itf.wrmsrApic(c.cpu, MSR_IA32_TSC_DEADLINE, this.d.platform.rdtsc(c.cpu) + clc * TSC_DIVISOR);
    else itf.wrmsrApic(c.cpu, X2APIC_TMICT, clc);
    return true;
  }

  // ---------------------------------------------------------------- the interrupt

  /** The vector's IDT entry: IRQ0 (timer_interrupt) or the local timer (sysvec_apic_timer_interrupt). */
  private interrupt(cpu: number, vector: number): void {
    const itf = this.d.platform.interrupts!;
    const ours = this.device!.name === 'pit' ? IRQ0_VECTOR : LOCAL_TIMER_VECTOR;
    const c = this.cpus[cpu];
    if (!c || vector !== ours) return; // what else arrives before the IDT has a handler for it goes nowhere
    itf.eoi(cpu, vector); // handle_edge_irq acks first; sysvec_apic_timer_interrupt calls apic_eoi() first
    this.timerIrqs++;
    c.timerIrqs++;
    if (this.oneshotBase === null) this.tickHandlePeriodic(c);
    else if (this.wired) this.hrtimerInterrupt(c);
    if (this.d.idle?.(cpu) ?? false) {
      // the idle loop: tick_nohz_idle_stop_tick stops a tick whose next expiry is more than a tick away, and
      // the CPU that stops it gives up the do_timer duty (tick_nohz_stop_tick)
      const u = this.update;
      if (this.oneshotBase !== null && u && u.intervalNs > this.d.tickNsec && this.doTimerCpu === cpu && this.cpus.length > 1)
        this.doTimerCpu = TICK_DO_TIMER_NONE;
      itf.hlt(cpu);
    }
  }

  /** tick_handle_periodic, with its loop for a one-shot device. */
  private tickHandlePeriodic(c: TickCpu): void {
    const via =
      this.device!.name === 'pit' ? ['common_interrupt', 'timer_interrupt'] : ['sysvec_apic_timer_interrupt', 'local_apic_timer_interrupt'];
    const tr = this.d.trace;
    if (tr?.on) tr.instant(this.d.scheduler.now, 'guest', 'tick_handle_periodic', via, c.cpu === 0 ? undefined : { cpu: c.cpu });
    this.tickPeriodic(c);
    if (this.device!.name !== 'lapic-deadline') return;
    // The loop `next += TICK_NSEC; if (!clockevents_program_event(next)) return; …` fails for every next not
    // after ktime_get(), which does not move while it runs (the handler takes no model time): count those
    // periods at once — ticks if the clocksource is valid for hres, else periods lost — then program the next.
    const tick = this.d.tickNsec;
    const now = this.ktime(c.cpu);
    const missed = now >= c.nextEvent + tick ? (now - c.nextEvent) / tick : 0n;
    if (this.d.hresValid?.()) for (let i = 0n; i < missed; i++) this.tickPeriodic(c);
    else c.ticksLost += Number(missed);
    if (!this.programEvent(c, c.nextEvent + (missed + 1n) * tick, now))
      throw new Error('tick_handle_periodic: next event not in the future');
  }

  /** tick_periodic: on tick_do_timer_cpu do_timer(1) and update_wall_time; on every CPU update_process_times. */
  private tickPeriodic(c: TickCpu): void {
    const duty = c.cpu === this.doTimerCpu;
    if (duty) this.ticksHandled++;
    const u = this.update;
    if (u && ++c.since >= u.every) {
      c.since = 0n;
      if (duty) {
        c.wallTimeUpdates++;
        u.wallTime();
      }
      u.account(c.cpu);
    }
    if (c.cpu === 0) this.d.schedClockTick(); // the model keeps one sched_clock_data: CPU 0's
  }

  /** hrtimer_interrupt: run tick_sched_timer if it expired (hrtimer_forward past now), program the next expiry. */
  private hrtimerInterrupt(c: TickCpu): void {
    const u = this.update;
    if (!u) return;
    const now = this.ktime(c.cpu);
    if (now >= c.expires) {
      const tr = this.d.trace;
      if (tr?.on)
        tr.instant(
          this.d.scheduler.now,
          'guest',
          'tick_sched_timer',
          ['sysvec_apic_timer_interrupt', 'hrtimer_interrupt', '__hrtimer_run_queues'],
          c.cpu === 0 ? undefined : { cpu: c.cpu },
        );
      this.tickSchedTimer(c, now);
      c.expires += ((now - c.expires) / u.intervalNs + 1n) * u.intervalNs;
    }
    while (!this.programEvent(c, c.expires, now)) c.expires += u.intervalNs; // the handler takes no model time: ktime is still `now`
  }

  /** tick_sched_timer → tick_sched_do_timer (take a dropped duty, tick_do_update_jiffies64), tick_sched_handle. */
  private tickSchedTimer(c: TickCpu, now: Ns): void {
    const u = this.update!;
    if (this.doTimerCpu === TICK_DO_TIMER_NONE) this.doTimerCpu = c.cpu;
    if (this.doTimerCpu === c.cpu && this.jiffiesDue(now)) {
      c.wallTimeUpdates++;
      u.wallTime();
    }
    u.account(c.cpu);
  }

  /**
   * tick_do_update_jiffies64's check: update_wall_time runs only when `now` reached tick_next_period (a jiffy
   * passed since the last update); last_jiffies_update then moves by the whole ticks elapsed. With one CPU
   * every tick_sched_timer updates, as before per-CPU ticks (its expiries are at least a tick apart unless a
   * late one is followed closely by the next: the model then still updates — kept so one-vCPU output stays).
   */
  private jiffiesDue(now: Ns): boolean {
    if (this.cpus.length === 1) return true;
    if (now < this.tickNextPeriod) return false;
    const tick = this.d.tickNsec;
    this.tickNextPeriod += ((now - this.tickNextPeriod) / tick + 1n) * tick;
    return true;
  }

  // ---------------------------------------------------------------- the side timer (no wired interrupt)

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
      else this.sideTicksLost++;
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
