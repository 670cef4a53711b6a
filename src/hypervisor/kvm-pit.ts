// KVM's in-kernel PIT (arch/x86/kvm/i8254.c, KVM_CREATE_PIT2): the 8254's registers and counting are the
// devices layer's PitCommon; what KVM adds is channel 0's timer. An hrtimer of count·1e9/KVM_PIT_FREQ ns
// (periodic in modes 2/3, clamped to min_timer_period_us) fires pit_timer_fn, which queues pit_do_work on
// the kvm-pit worker, which raises IRQ0 as an edge with kvm_set_irq. In reinject mode (the default of
// KVM_CREATE_PIT2) missed ticks are counted and delivered one per acknowledgement; in discard mode every
// tick is injected. Reads of channel 0 count against the hrtimer (kpit_elapsed), not the load time.
import type { Timer } from '../core/index.ts';
import { NSEC_PER_SEC, type Ns } from '../core/index.ts';
import {
  type DeviceDeps,
  type KvmPitTimerState,
  PIT_FREQ,
  PitCommon,
  type PitState,
  pitTicks,
  pulse,
  timerEventBound,
} from '../devices/index.ts';

export interface KvmPitOptions {
  /** KVM_PIT_FLAGS reinject (the default for KVM_CREATE_PIT2 unless userspace sets KVM_REINJECT_CONTROL). */
  reinject: boolean;
  /** kvm.min_timer_period_us (arch/x86/kvm/x86.c, default 200): periodic timers are clamped to it. */
  minTimerPeriodUs?: number;
  /**
   * 'qemu' (default): QEMU's kvm-pit reset writes its reset state (mode 3, count 0x10000) with KVM_SET_PIT2,
   * whose kvm_pit_load_count starts channel 0's periodic hrtimer (hw/i386/kvm/i8254.c). 'kvm': KVM_CREATE_PIT2
   * alone, as Firecracker, Cloud Hypervisor and kvmtool leave it: kvm_pit_reset's mode 0xff starts no timer.
   */
  reset?: 'qemu' | 'kvm';
}

/** A reinjected tick: the EOI's ack notifier queues pit_do_work again (kvm_pit_ack_irq). */
const REINJECT_PATH = ['kvm_notify_acked_irq', 'kvm_pit_ack_irq', 'pit_do_work'];

export class KvmPit extends PitCommon {
  private readonly reinject: boolean;
  private readonly minPeriod: Ns;
  private readonly hrtimer: Timer;
  // struct kvm_kpit_state
  private period: Ns = 0n;
  /** The hrtimer's expiry; like hrtimer's _softexpires it stays after the timer fires or is cancelled. */
  private expires: Ns = 0n;
  private isPeriodic = false;
  private pending = 0;
  private irqAck = true;
  /** IRQ0 edges injected (of them reinjected: released by an acknowledgement), ticks deferred for an
   *  unacknowledged one, edges the irqchip coalesced (discard mode: lost ticks), periods clamped. */
  readonly stats = { expiries: 0, irq0: 0, reinjected: 0, deferred: 0, coalesced: 0, clamped: 0 };

  constructor(opts: DeviceDeps & KvmPitOptions) {
    super(opts, 'kvm-pit');
    this.reinject = opts.reinject;
    this.minPeriod = BigInt(opts.minTimerPeriodUs ?? 200) * 1000n;
    this.hrtimer = this.d.scheduler.timer(() => this.pitTimerFn());
    if ((opts.reset ?? 'qemu') === 'qemu') this.createPitTimer(0x10000, true);
  }

  // --- what the register logic asks of channel 0 ---

  /** pit_load_count → create_pit_timer: periodic in modes 2/3, one-shot in 0, 1 and 4 (Linux's one-shot tick, 0x38); else destroy_pit_timer. */
  protected channel0Loaded(val: number): void {
    const mode = this.mode0;
    if (mode === 2 || mode === 3) this.createPitTimer(val, true);
    else if (mode <= 1 || mode === 4) this.createPitTimer(val, false);
    else this.destroyPitTimer();
  }

  /** KVM's gate handling restarts the count only; the hrtimer runs on. */
  protected channel0Restarted(): void {}

  /**
   * KVM_PIT_FLAGS_HPET_LEGACY, as QEMU sets it when the HPET takes IRQ0 (hw/i386/kvm/i8254.c
   * kvm_pit_irq_control → KVM_SET_PIT2): kvm_vm_ioctl_set_pit2 reloads channel 0's count, with mode 0xff
   * when the flag comes on (kvm_pit_load_count's hpet_legacy_start: destroy_pit_timer), and through
   * create_pit_timer, which the flag no longer stops, when it goes off.
   */
  setIrqDisabled(disabled: boolean): void {
    const start = disabled && !this.irqDisabled;
    this.irqDisabled = disabled;
    if (start) this.destroyPitTimer();
    else if (!disabled) this.channel0Loaded(this.ch[0]!.count);
  }

  timerEventBound(span: Ns): number {
    return timerEventBound(this.hrtimer, this.isPeriodic ? this.period : null, span);
  }

  /** Channel 0 counts against the hrtimer (kpit_elapsed); the others from their load time. */
  protected override elapsedTicks(channel: number, now: Ns): bigint {
    return channel === 0 ? pitTicks(this.kpitElapsed()) : super.elapsedTicks(channel, now);
  }

  /**
   * create_pit_timer: interval = val * NSEC_PER_SEC / KVM_PIT_FREQ, also kept as the period of one-shot
   * timers (it is what kpit_elapsed counts against); periodic periods are clamped to min_timer_period_us.
   */
  private createPitTimer(val: number, isPeriod: boolean): void {
    if (this.irqDisabled) return;
    const interval = (BigInt(val) * NSEC_PER_SEC) / PIT_FREQ;
    this.hrtimer.cancel();
    this.period = interval;
    this.isPeriodic = isPeriod;
    this.resetReinject();
    if (isPeriod && this.period < this.minPeriod) {
      this.period = this.minPeriod; // "requested %lld ns i8254 timer period limited to %lld ns"
      this.stats.clamped++;
    }
    this.expires = this.d.clock() + interval;
    this.hrtimer.armIn(interval);
    this.traceEvent('create_pit_timer', { interval: Number(interval), period: Number(this.period) });
  }

  /** destroy_pit_timer only cancels: period and the expiry stay, so reads keep counting from them. */
  private destroyPitTimer(): void {
    this.hrtimer.cancel();
  }

  /** kvm_pit_reset_reinject */
  private resetReinject(): void {
    this.pending = 0;
    this.irqAck = true;
  }

  /**
   * __kpit_elapsed: period - hrtimer_get_remaining(). Periodic: time since the last expiry (against the
   * clamped period). One-shot: time since the load, carrying on past the expiry so mode 0 wraps.
   */
  private kpitElapsed(): Ns {
    if (this.period === 0n) return 0n;
    const elapsed = this.period - (this.expires - this.d.clock());
    return elapsed < 0n ? 0n : elapsed;
  }

  /** pit_timer_fn: count a pending tick (reinject), queue pit_do_work, restart if periodic. */
  private pitTimerFn(): void {
    this.stats.expiries++;
    if (this.reinject) this.pending++;
    if (this.isPeriodic) {
      this.expires += this.period; // hrtimer_add_expires_ns
      this.armAt(this.expires);
    }
    this.traceEvent('pit_timer_fn', { pending: this.pending });
    this.pitDoWork();
  }

  /** pit_do_work: inject IRQ0 as an edge, unless in reinject mode the last one is not yet acknowledged. */
  private pitDoWork(reinjected = false): void {
    if (this.reinject) {
      if (!this.irqAck) {
        this.stats.deferred++;
        return;
      }
      this.irqAck = false;
    }
    this.traceEvent('kvm_set_irq', { irq: 0 }, reinjected ? REINJECT_PATH : []);
    if (!pulse(this.d.irq)) this.stats.coalesced++;
    this.stats.irq0++;
    if (reinjected) this.stats.reinjected++;
  }

  /**
   * kvm_pit_ack_irq: the guest acknowledged IRQ0 (EOI). In reinject mode this releases the next missed
   * tick, one per acknowledgement.
   */
  ackIrq(): void {
    if (!this.reinject) return;
    this.irqAck = true;
    if (this.pending > 0) {
      this.pending--;
      if (this.pending > 0) this.pitDoWork(true);
    }
  }

  /** pit_mask_notifier: unmasking IRQ0 drops the ticks waiting for reinjection (kvm_pit_reset_reinject). */
  irqMaskChanged(masked: boolean): void {
    if (!masked) this.resetReinject();
  }

  /** Ticks counted but not yet delivered (reinject mode). */
  get pendingTicks(): number {
    return this.pending;
  }

  private traceEvent(name: string, args: Record<string, number>, path: readonly string[] = []): void {
    if (this.d.trace.on) this.d.trace.instant(this.d.scheduler.now, this.d.name, name, path, args);
  }

  // --- snapshot (KVM_GET_PIT2 / KVM_SET_PIT2 plus the timer) ---

  saveState(): PitState {
    const armed = this.hrtimer.expires !== null;
    const timer: KvmPitTimerState = {
      expires: armed ? this.expires.toString() : null,
      period: this.period.toString(),
      isPeriodic: this.isPeriodic,
      pending: this.pending,
      irqAck: this.irqAck,
    };
    return { version: 1, channels: this.saveChannels(), irqDisabled: this.irqDisabled, nextTransitionTime: null, kvm: timer };
  }

  restore(s: PitState): void {
    this.restoreChannels(s);
    this.hrtimer.cancel();
    if (!s.kvm) return;
    this.period = BigInt(s.kvm.period);
    this.isPeriodic = s.kvm.isPeriodic;
    this.pending = s.kvm.pending;
    this.irqAck = s.kvm.irqAck;
    if (s.kvm.expires !== null) {
      this.expires = BigInt(s.kvm.expires);
      this.armAt(this.expires);
    }
  }

  /** Arm the hrtimer for `t` on the PIT's clock (at once if it is past). */
  private armAt(t: Ns): void {
    const d = t - this.d.clock();
    this.hrtimer.armIn(d > 0n ? d : 0n);
  }
}
