// Intel 8254 programmable interval timer at ports 0x40-0x43, following QEMU's hw/timer/i8254.c and
// i8254_common.c: a channel's count and output are computed from the time its count was loaded, never
// ticked. Channel 0 drives IRQ0 either as QEMU's userspace PIT does (the line follows OUT, re-armed at
// each output transition) or as KVM's in-kernel PIT does (arch/x86/kvm/i8254.c: an hrtimer pulses IRQ0
// once per period, with reinject or discard of missed ticks and a minimum period clamp).
import type { Timer } from '../core/engine.ts';
import { InputError } from '../core/errors.ts';
import { NSEC_PER_SEC, type Ns } from '../core/time.ts';
import { armAtClock, big, type DeviceDeps, expiresOnClock, muldiv64, resolveDeps, str } from './common.ts';
import type { PortDevice } from './bus.ts';
import { pulse } from './irq.ts';

export const PIT_FREQ = 1_193_182n;
const RW_STATE_LSB = 1;
const RW_STATE_MSB = 2;
const RW_STATE_WORD0 = 3;
const RW_STATE_WORD1 = 4;

export interface KvmPitOptions {
  /** KVM_PIT_FLAGS reinject (the default for KVM_CREATE_PIT2 unless userspace sets KVM_REINJECT_CONTROL). */
  reinject: boolean;
  /** kvm.min_timer_period_us (arch/x86/kvm/x86.c, default 200): periodic timers are clamped to it. */
  minTimerPeriodUs?: number;
}

export interface PitOptions extends DeviceDeps {
  /** Model KVM's in-kernel PIT for channel 0 instead of QEMU's userspace one. */
  kvm?: KvmPitOptions;
}

export interface PitChannelState {
  count: number;
  latchedCount: number;
  countLatched: number;
  statusLatched: boolean;
  status: number;
  readState: number;
  writeState: number;
  writeLatch: number;
  rwMode: number;
  mode: number;
  bcd: number;
  gate: boolean;
  countLoadTime: string;
}

export interface PitState {
  version: 1;
  channels: PitChannelState[];
  irqDisabled: boolean;
  /** QEMU: next OUT transition of channel 0 (null when none). */
  nextTransitionTime: string | null;
  /** KVM: hrtimer expiry, period (ns, 0 = one-shot), pending ticks and irq_ack. */
  kvm: { expires: string | null; period: string; isPeriodic: boolean; pending: number; irqAck: boolean } | null;
}

interface Channel {
  count: number;
  latchedCount: number;
  countLatched: number;
  statusLatched: boolean;
  status: number;
  readState: number;
  writeState: number;
  writeLatch: number;
  rwMode: number;
  mode: number;
  bcd: number;
  gate: boolean;
  countLoadTime: Ns;
}

export class Pit implements PortDevice {
  private readonly d: ReturnType<typeof resolveDeps>;
  private readonly ch: Channel[];
  private readonly kvm: { reinject: boolean; minPeriod: Ns } | null;
  private irqDisabled = false;
  private nextTransitionTime: Ns | null = null;
  private readonly irqTimer: Timer;
  // KVM in-kernel state (struct kvm_kpit_state)
  private kvmPeriod: Ns = 0n;
  /** The hrtimer's expiry; like hrtimer's _softexpires it stays after the timer fires or is cancelled. */
  private kvmExpires: Ns = 0n;
  private kvmPending = 0;
  private kvmIrqAck = true;
  private kvmIsPeriodic = false;
  /** IRQ0 edges injected (KVM mode) or rising edges (QEMU mode), and KVM ticks dropped or deferred. */
  readonly stats = { irq0: 0, deferred: 0, clamped: 0 };

  constructor(opts: PitOptions) {
    this.d = resolveDeps(opts, 'pit');
    this.kvm = opts.kvm ? { reinject: opts.kvm.reinject, minPeriod: BigInt(opts.kvm.minTimerPeriodUs ?? 200) * 1000n } : null;
    this.irqTimer = this.d.scheduler.timer(() => (this.kvm ? this.pitTimerFn() : this.pitIrqTimer()));
    const now = this.d.clock();
    // pit_reset_common: mode 3, count 0x10000, gate high except channel 2 (speaker)
    this.ch = [0, 1, 2].map((i) => ({
      count: 0x10000,
      latchedCount: 0,
      countLatched: 0,
      statusLatched: false,
      status: 0,
      readState: 0,
      writeState: 0,
      writeLatch: 0,
      rwMode: 0,
      mode: 3,
      bcd: 0,
      gate: i !== 2,
      countLoadTime: now,
    }));
    if (this.kvm) {
      // QEMU's kvm-pit reset writes its reset state (mode 3, count 0x10000) with KVM_SET_PIT2, whose
      // kvm_pit_load_count starts channel 0's periodic hrtimer (hw/i386/kvm/i8254.c, kvm_vm_ioctl_set_pit2)
      this.createPitTimer(0x10000, true);
    } else {
      // pit_reset: arm the first OUT transition without touching the line
      this.nextTransitionTime = this.nextTransition(now);
      if (this.nextTransitionTime !== null) armAtClock(this.irqTimer, this.d.clock, this.nextTransitionTime);
    }
  }

  // --- ports ---

  portRead(port: number, _size: 1 | 2 | 4 = 1): number {
    const addr = port & 3;
    if (addr === 3) return 0; // the mode/command register is write-only
    const s = this.ch[addr]!;
    if (s.statusLatched) {
      s.statusLatched = false;
      return s.status;
    }
    if (s.countLatched) {
      switch (s.countLatched) {
        case RW_STATE_MSB:
          s.countLatched = 0;
          return (s.latchedCount >> 8) & 0xff;
        case RW_STATE_WORD0:
          s.countLatched = RW_STATE_MSB;
          return s.latchedCount & 0xff;
        case RW_STATE_LSB:
        default:
          s.countLatched = 0;
          return s.latchedCount & 0xff;
      }
    }
    const count = this.getCount(addr);
    switch (s.readState) {
      case RW_STATE_MSB:
        return (count >> 8) & 0xff;
      case RW_STATE_WORD0:
        s.readState = RW_STATE_WORD1;
        return count & 0xff;
      case RW_STATE_WORD1:
        s.readState = RW_STATE_WORD0;
        return (count >> 8) & 0xff;
      default:
        return count & 0xff;
    }
  }

  portWrite(port: number, _size: number, value: number): void {
    const addr = port & 3;
    const val = value & 0xff;
    if (addr === 3) return this.writeControl(val);
    const s = this.ch[addr]!;
    switch (s.writeState) {
      case RW_STATE_MSB:
        return this.loadCount(addr, val << 8);
      case RW_STATE_WORD0:
        s.writeLatch = val;
        s.writeState = RW_STATE_WORD1;
        return;
      case RW_STATE_WORD1:
        s.writeState = RW_STATE_WORD0;
        return this.loadCount(addr, s.writeLatch | (val << 8));
      default:
        return this.loadCount(addr, val);
    }
  }

  private writeControl(val: number): void {
    const channel = val >> 6;
    if (channel === 3) {
      // read-back command: bit 5 clear latches counts, bit 4 clear latches status, bits 1-3 pick channels
      for (let i = 0; i < 3; i++) {
        if (!(val & (2 << i))) continue;
        const s = this.ch[i]!;
        if (!(val & 0x20)) this.latchCount(i);
        if (!(val & 0x10) && !s.statusLatched) {
          // QEMU leaves the null-count bit (6) at 0
          s.status = ((this.getOut(i, this.d.clock()) ? 1 : 0) << 7) | (s.rwMode << 4) | (s.mode << 1) | s.bcd;
          s.statusLatched = true;
        }
      }
      return;
    }
    const s = this.ch[channel]!;
    const access = (val >> 4) & 3;
    if (access === 0) return this.latchCount(channel);
    s.rwMode = access;
    s.readState = access;
    s.writeState = access;
    s.mode = (val >> 1) & 7;
    s.bcd = val & 1;
  }

  private latchCount(i: number): void {
    const s = this.ch[i]!;
    if (!s.countLatched) {
      s.latchedCount = this.getCount(i);
      s.countLatched = s.rwMode;
    }
  }

  // --- gate and output (port 0x61 uses these for channel 2) ---

  /** pit_set_gate: a rising gate edge restarts counting in modes 1, 2, 3 and 5. */
  setGate(channel: number, gate: boolean): void {
    const s = this.ch[channel]!;
    const rising = !s.gate && gate;
    if (rising && [1, 2, 3, 5].includes(s.mode)) {
      s.countLoadTime = this.d.clock();
      if (channel === 0 && !this.kvm) this.irqTimerUpdate(s.countLoadTime);
    }
    s.gate = gate;
  }

  getGate(channel: number): boolean {
    return this.ch[channel]!.gate;
  }

  /** Level of the channel's OUT pin now. */
  getOut(channel: number, now: Ns = this.d.clock()): boolean {
    const s = this.ch[channel]!;
    const d = this.elapsedTicks(channel, now);
    const count = BigInt(s.count);
    switch (s.mode) {
      case 1:
        return d < count;
      case 2:
        return d % count === 0n && d !== 0n;
      case 3:
        return d % count < (count + 1n) >> 1n;
      case 4:
      case 5:
        return d === count;
      default:
        return d >= count;
    }
  }

  /** HPET legacy replacement disconnects the PIT from IRQ0 (hpet.c pit_enabled / pit_irq_control). */
  setIrqDisabled(disabled: boolean): void {
    this.irqDisabled = disabled;
    if (this.kvm) return; // KVM: KVM_PIT_FLAGS_HPET_LEGACY is handled when the timer next loads
    if (disabled) this.irqTimer.cancel();
    else this.irqTimerUpdate(this.d.clock());
  }

  // --- counting ---

  /** Input clock ticks since the count was loaded (KVM channel 0: from the hrtimer, kpit_elapsed). */
  private elapsedTicks(channel: number, now: Ns): bigint {
    if (this.kvm && channel === 0) return muldiv64(this.kpitElapsed(), PIT_FREQ, NSEC_PER_SEC);
    return muldiv64(now - this.ch[channel]!.countLoadTime, PIT_FREQ, NSEC_PER_SEC);
  }

  private getCount(channel: number): number {
    const s = this.ch[channel]!;
    const d = this.elapsedTicks(channel, this.d.clock());
    const count = BigInt(s.count);
    switch (s.mode) {
      case 0:
      case 1:
      case 4:
      case 5:
        return Number((count - d) & 0xffffn);
      case 3:
        return Number(count - ((2n * d) % count)); // square wave counts down by two
      default:
        return Number(count - (d % count));
    }
  }

  private loadCount(channel: number, val: number): void {
    if (val === 0) val = 0x10000;
    const s = this.ch[channel]!;
    s.countLoadTime = this.d.clock();
    s.count = val;
    if (channel !== 0) return;
    if (this.kvm) this.kvmLoadCount(val);
    else this.irqTimerUpdate(s.countLoadTime);
  }

  // --- QEMU userspace channel 0 interrupt ---

  /** pit_get_next_transition_time: when OUT next changes, or null. */
  private nextTransition(now: Ns): Ns | null {
    const s = this.ch[0]!;
    const d = muldiv64(now - s.countLoadTime, PIT_FREQ, NSEC_PER_SEC);
    const count = BigInt(s.count);
    let next: bigint;
    switch (s.mode) {
      case 2: {
        const base = (d / count) * count;
        next = d - base === 0n && d !== 0n ? base + count : base + count + 1n;
        break;
      }
      case 3: {
        const base = (d / count) * count;
        const period2 = (count + 1n) >> 1n;
        next = d - base < period2 ? base + period2 : base + count;
        break;
      }
      case 4:
      case 5:
        if (d < count) next = count;
        else if (d === count) next = count + 1n;
        else return null;
        break;
      default:
        if (d < count) next = count;
        else return null;
    }
    let t = s.countLoadTime + muldiv64(next, NSEC_PER_SEC, PIT_FREQ);
    if (t <= now) t = now + 1n; // fix potential rounding problems
    return t;
  }

  private irqTimerUpdate(now: Ns): void {
    if (this.irqDisabled) return;
    const expire = this.nextTransition(now);
    const level = this.getOut(0, now);
    if (level) {
      this.d.irq.raise();
      this.stats.irq0++;
    } else {
      this.d.irq.lower();
    }
    this.nextTransitionTime = expire;
    if (expire === null) this.irqTimer.cancel();
    else armAtClock(this.irqTimer, this.d.clock, expire);
  }

  private pitIrqTimer(): void {
    if (this.nextTransitionTime !== null) this.irqTimerUpdate(this.nextTransitionTime);
  }

  // --- KVM in-kernel channel 0 (arch/x86/kvm/i8254.c) ---

  private kvmLoadCount(val: number): void {
    const mode = this.ch[0]!.mode;
    if (mode === 2 || mode === 3) this.createPitTimer(val, true);
    else if (mode <= 5) this.createPitTimer(val, false);
    else this.destroyPitTimer();
  }

  /**
   * create_pit_timer: interval = val * NSEC_PER_SEC / KVM_PIT_FREQ, also kept as the period of one-shot
   * timers (it is what kpit_elapsed counts against); periodic periods are clamped to min_timer_period_us.
   */
  private createPitTimer(val: number, isPeriod: boolean): void {
    if (this.irqDisabled) return; // KVM_PIT_FLAGS_HPET_LEGACY: the running timer is left alone
    const interval = (BigInt(val) * NSEC_PER_SEC) / PIT_FREQ;
    this.irqTimer.cancel();
    this.kvmPeriod = interval;
    this.kvmIsPeriodic = isPeriod;
    this.kvmPending = 0; // kvm_pit_reset_reinject
    this.kvmIrqAck = true;
    if (isPeriod && this.kvmPeriod < this.kvm!.minPeriod) {
      this.kvmPeriod = this.kvm!.minPeriod; // "requested %lld ns i8254 timer period limited to %lld ns"
      this.stats.clamped++;
    }
    this.kvmExpires = this.d.clock() + interval;
    this.irqTimer.armIn(interval);
    this.traceEvent('create_pit_timer', { interval: Number(interval), period: Number(this.kvmPeriod) });
  }

  /** destroy_pit_timer only cancels: period and the expiry stay, so reads keep counting from them. */
  private destroyPitTimer(): void {
    this.irqTimer.cancel();
  }

  /**
   * __kpit_elapsed: period - hrtimer_get_remaining(). Periodic: time since the last expiry (against the
   * clamped period). One-shot: time since the load, carrying on past the expiry so mode 0 wraps.
   */
  private kpitElapsed(): Ns {
    if (this.kvmPeriod === 0n) return 0n;
    const elapsed = this.kvmPeriod - (this.kvmExpires - this.d.clock());
    return elapsed < 0n ? 0n : elapsed;
  }

  /** pit_timer_fn: count a pending tick (reinject), queue pit_do_work, restart if periodic. */
  private pitTimerFn(): void {
    if (this.kvm!.reinject) this.kvmPending++;
    if (this.kvmIsPeriodic) {
      this.kvmExpires += this.kvmPeriod; // hrtimer_add_expires_ns
      armAtClock(this.irqTimer, this.d.clock, this.kvmExpires);
    }
    this.traceEvent('pit_timer_fn', { pending: this.kvmPending });
    this.pitDoWork();
  }

  /** pit_do_work: inject IRQ0 as an edge, unless in reinject mode the last one is not yet acknowledged. */
  private pitDoWork(): void {
    if (this.kvm!.reinject) {
      if (!this.kvmIrqAck) {
        this.stats.deferred++;
        return;
      }
      this.kvmIrqAck = false;
    }
    pulse(this.d.irq);
    this.stats.irq0++;
    this.traceEvent('kvm_set_irq', { irq: 0 });
  }

  /**
   * kvm_pit_ack_irq: the guest acknowledged IRQ0 (EOI). In reinject mode this releases the next missed
   * tick, one per acknowledgement.
   */
  ackIrq(): void {
    if (!this.kvm?.reinject) return;
    this.kvmIrqAck = true;
    if (this.kvmPending > 0) {
      this.kvmPending--;
      if (this.kvmPending > 0) this.pitDoWork();
    }
  }

  /** pit_mask_notifier: unmasking IRQ0 drops the ticks waiting for reinjection (kvm_pit_reset_reinject). */
  irqMaskChanged(masked: boolean): void {
    if (!this.kvm || masked) return;
    this.kvmPending = 0;
    this.kvmIrqAck = true;
  }

  /** Ticks counted but not yet delivered (KVM reinject mode). */
  get pendingTicks(): number {
    return this.kvmPending;
  }

  private traceEvent(name: string, args: Record<string, number>): void {
    if (this.d.trace.on) this.d.trace.instant(this.d.scheduler.now, this.d.name, name, [], args);
  }

  // --- snapshot ---

  saveState(): PitState {
    const exp = expiresOnClock(this.irqTimer, this.d.clock, this.d.scheduler);
    return {
      version: 1,
      channels: this.ch.map((c) => ({ ...c, countLoadTime: str(c.countLoadTime) })),
      irqDisabled: this.irqDisabled,
      nextTransitionTime: this.kvm || this.nextTransitionTime === null ? null : str(this.nextTransitionTime),
      kvm: this.kvm
        ? {
            expires: exp === null ? null : str(this.kvmExpires),
            period: str(this.kvmPeriod),
            isPeriodic: this.kvmIsPeriodic,
            pending: this.kvmPending,
            irqAck: this.kvmIrqAck,
          }
        : null,
    };
  }

  restore(s: PitState): void {
    if (s.version !== 1 || s.channels.length !== 3) throw new InputError('unsupported PIT state');
    s.channels.forEach((c, i) => Object.assign(this.ch[i]!, { ...c, countLoadTime: big(c.countLoadTime) }));
    this.irqDisabled = s.irqDisabled;
    this.irqTimer.cancel();
    if (this.kvm && s.kvm) {
      this.kvmPeriod = big(s.kvm.period);
      this.kvmIsPeriodic = s.kvm.isPeriodic;
      if (s.kvm.expires !== null) this.kvmExpires = big(s.kvm.expires);
      this.kvmPending = s.kvm.pending;
      this.kvmIrqAck = s.kvm.irqAck;
      if (s.kvm.expires !== null) armAtClock(this.irqTimer, this.d.clock, big(s.kvm.expires));
    } else if (!this.kvm) {
      this.nextTransitionTime = s.nextTransitionTime === null ? null : big(s.nextTransitionTime);
      if (this.nextTransitionTime !== null && !this.irqDisabled) armAtClock(this.irqTimer, this.d.clock, this.nextTransitionTime);
    }
  }
}

/**
 * Port 0x61 (system control port B) as QEMU's hw/audio/pcspk.c implements it: bit 0 drives the gate of
 * PIT channel 2, bit 1 the speaker data, bit 4 toggles on every read (a stand-in for the DRAM refresh
 * clock) and bit 5 reads channel 2's OUT.
 */
export class SpeakerPort implements PortDevice {
  private dataOn = 0;
  private dummyRefreshClock = 0;

  constructor(private readonly pit: Pit) {}

  portRead(_port = 0x61, _size: 1 | 2 | 4 = 1): number {
    this.dummyRefreshClock ^= 1 << 4;
    return (this.pit.getGate(2) ? 1 : 0) | (this.dataOn << 1) | this.dummyRefreshClock | ((this.pit.getOut(2) ? 1 : 0) << 5);
  }

  portWrite(_port: number, _size: number, value: number): void {
    this.dataOn = (value >> 1) & 1;
    this.pit.setGate(2, (value & 1) === 1);
  }

  saveState(): { version: 1; dataOn: number; dummyRefreshClock: number } {
    return { version: 1, dataOn: this.dataOn, dummyRefreshClock: this.dummyRefreshClock };
  }

  restore(s: { version: 1; dataOn: number; dummyRefreshClock: number }): void {
    this.dataOn = s.dataOn & 1;
    this.dummyRefreshClock = s.dummyRefreshClock & 0x10;
  }
}
