// Intel 8254 programmable interval timer at ports 0x40-0x43, following QEMU's hw/timer/i8254_common.c
// (PitCommon: registers, latches, gate, and a channel's count and OUT computed from the time its count was
// loaded, never ticked) and hw/timer/i8254.c (Pit: QEMU's userspace PIT, whose IRQ0 follows channel 0's
// OUT, re-armed at each output transition). KVM's in-kernel PIT is the same counter with KVM's timer
// behind channel 0: src/hypervisor/kvm-pit.ts.
import type { Timer } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import { NSEC_PER_SEC, type Ns } from '../core/index.ts';
import { armAtClock, big, type DeviceDeps, muldiv64, resolveDeps, str, timerEventBound } from './common.ts';
import type { PortDevice } from './bus.ts';

export const PIT_FREQ = 1_193_182n;
const RW_STATE_LSB = 1;
const RW_STATE_MSB = 2;
const RW_STATE_WORD0 = 3;
const RW_STATE_WORD1 = 4;

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

/** KVM's in-kernel channel 0 timer (struct kvm_kpit_state): hrtimer expiry, period (ns, clamped), pending ticks, irq_ack. */
export interface KvmPitTimerState {
  expires: string | null;
  period: string;
  isPeriodic: boolean;
  pending: number;
  irqAck: boolean;
}

export interface PitState {
  version: 1;
  channels: PitChannelState[];
  irqDisabled: boolean;
  /** QEMU: next OUT transition of channel 0 (null when none). */
  nextTransitionTime: string | null;
  /** KVM's in-kernel PIT only (src/hypervisor/kvm-pit.ts); null for QEMU's. */
  kvm: KvmPitTimerState | null;
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

// --- counter arithmetic on (mode, count, d = input ticks since the count was loaded) ---

/** pit_get_out: level of OUT `d` ticks after loading `count` in `mode`. */
export function pitOut(mode: number, count: bigint, d: bigint): boolean {
  switch (mode) {
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

/** pit_get_count: the count a read sees `d` ticks after loading. */
export function pitCount(mode: number, count: bigint, d: bigint): number {
  switch (mode) {
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

/** pit_get_next_transition_time in input ticks since the load: the next OUT change after `d`, or null. */
export function pitNextTransitionTicks(mode: number, count: bigint, d: bigint): bigint | null {
  switch (mode) {
    case 2: {
      const base = (d / count) * count;
      return d - base === 0n && d !== 0n ? base + count : base + count + 1n;
    }
    case 3: {
      const base = (d / count) * count;
      const period2 = (count + 1n) >> 1n;
      return d - base < period2 ? base + period2 : base + count;
    }
    case 4:
    case 5:
      if (d < count) return count;
      return d === count ? count + 1n : null;
    default:
      return d < count ? count : null;
  }
}

/** Input clock ticks in `ns` (muldiv64 flooring, as QEMU and KVM both count). */
export const pitTicks = (ns: Ns): bigint => muldiv64(ns, PIT_FREQ, NSEC_PER_SEC);

/**
 * The 8254's registers and counting, common to QEMU's userspace PIT and KVM's in-kernel one
 * (i8254_common.c; arch/x86/kvm/i8254.c has the same port logic). What drives IRQ0 is the subclass's.
 */
export abstract class PitCommon implements PortDevice {
  protected readonly d: ReturnType<typeof resolveDeps>;
  protected readonly ch: Channel[];
  protected irqDisabled = false;

  constructor(opts: DeviceDeps, fallbackName: string) {
    this.d = resolveDeps(opts, fallbackName);
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
  }

  /** Channel 0's count was loaded (pit_load_count): the subclass re-arms its IRQ0 timer. */
  protected abstract channel0Loaded(val: number): void;
  /** Channel 0's gate rose in a mode that restarts counting. */
  protected abstract channel0Restarted(): void;
  /** HPET legacy replacement disconnects the PIT from IRQ0 (hpet.c pit_enabled / KVM_PIT_FLAGS_HPET_LEGACY). */
  abstract setIrqDisabled(disabled: boolean): void;
  /** At most how many timer events the next `span` ns can bring. */
  abstract timerEventBound(span: Ns): number;
  abstract saveState(): PitState;
  abstract restore(s: PitState): void;

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
      if (channel === 0) this.channel0Restarted();
    }
    s.gate = gate;
  }

  getGate(channel: number): boolean {
    return this.ch[channel]!.gate;
  }

  /** Level of the channel's OUT pin now. */
  getOut(channel: number, now: Ns = this.d.clock()): boolean {
    const s = this.ch[channel]!;
    return pitOut(s.mode, BigInt(s.count), this.elapsedTicks(channel, now));
  }

  // --- counting ---

  /** Input clock ticks since the channel's count was loaded. */
  protected elapsedTicks(channel: number, now: Ns): bigint {
    return pitTicks(now - this.ch[channel]!.countLoadTime);
  }

  private getCount(channel: number): number {
    const s = this.ch[channel]!;
    return pitCount(s.mode, BigInt(s.count), this.elapsedTicks(channel, this.d.clock()));
  }

  private loadCount(channel: number, val: number): void {
    if (val === 0) val = 0x10000;
    const s = this.ch[channel]!;
    s.countLoadTime = this.d.clock();
    s.count = val;
    if (channel === 0) this.channel0Loaded(val);
  }

  /** Channel 0's mode (KVM picks its hrtimer's kind from it). */
  protected get mode0(): number {
    return this.ch[0]!.mode;
  }

  // --- snapshot of the registers ---

  protected saveChannels(): PitChannelState[] {
    return this.ch.map((c) => ({ ...c, countLoadTime: str(c.countLoadTime) }));
  }

  protected restoreChannels(s: PitState): void {
    if (s.version !== 1 || s.channels.length !== 3) throw new InputError('unsupported PIT state');
    s.channels.forEach((c, i) => Object.assign(this.ch[i]!, { ...c, countLoadTime: big(c.countLoadTime) }));
    this.irqDisabled = s.irqDisabled;
  }
}

/** QEMU's userspace PIT (hw/timer/i8254.c): IRQ0 is channel 0's OUT, re-evaluated at each transition. */
export class Pit extends PitCommon {
  private nextTransitionTime: Ns | null = null;
  private readonly irqTimer: Timer;
  /** Rising edges of IRQ0. */
  readonly stats = { irq0: 0 };

  constructor(opts: DeviceDeps) {
    super(opts, 'pit');
    this.irqTimer = this.d.scheduler.timer(() => this.pitIrqTimer());
    // pit_reset: arm the first OUT transition without touching the line
    this.nextTransitionTime = this.nextTransition(this.d.clock());
    if (this.nextTransitionTime !== null) armAtClock(this.irqTimer, this.d.clock, this.nextTransitionTime);
  }

  protected channel0Loaded(): void {
    this.irqTimerUpdate(this.ch[0]!.countLoadTime);
  }

  protected channel0Restarted(): void {
    this.irqTimerUpdate(this.ch[0]!.countLoadTime);
  }

  setIrqDisabled(disabled: boolean): void {
    this.irqDisabled = disabled;
    if (disabled) this.irqTimer.cancel();
    else this.irqTimerUpdate(this.d.clock());
  }

  /** Two OUT transitions per period in modes 2 and 3 (one per tick with count 1), at most two in the others. */
  timerEventBound(span: Ns): number {
    const s = this.ch[0]!;
    const periodic = s.mode === 2 || s.mode === 3;
    const period = muldiv64(BigInt(s.count), NSEC_PER_SEC, PIT_FREQ);
    return (s.count === 1 ? 1 : 2) * timerEventBound(this.irqTimer, periodic ? period : null, span) + 1;
  }

  /** pit_get_next_transition_time: when OUT next changes, or null. */
  private nextTransition(now: Ns): Ns | null {
    const s = this.ch[0]!;
    const next = pitNextTransitionTicks(s.mode, BigInt(s.count), pitTicks(now - s.countLoadTime));
    if (next === null) return null;
    let t = s.countLoadTime + muldiv64(next, NSEC_PER_SEC, PIT_FREQ);
    if (t <= now) t = now + 1n; // fix potential rounding problems
    return t;
  }

  /** pit_irq_timer_update */
  private irqTimerUpdate(now: Ns): void {
    if (this.irqDisabled) return;
    const expire = this.nextTransition(now);
    if (this.getOut(0, now)) {
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

  saveState(): PitState {
    return {
      version: 1,
      channels: this.saveChannels(),
      irqDisabled: this.irqDisabled,
      nextTransitionTime: this.nextTransitionTime === null ? null : str(this.nextTransitionTime),
      kvm: null,
    };
  }

  restore(s: PitState): void {
    this.restoreChannels(s);
    this.irqTimer.cancel();
    this.nextTransitionTime = s.nextTransitionTime === null ? null : big(s.nextTransitionTime);
    if (this.nextTransitionTime !== null && !this.irqDisabled) armAtClock(this.irqTimer, this.d.clock, this.nextTransitionTime);
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

  constructor(private readonly pit: PitCommon) {}

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
