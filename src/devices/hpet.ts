// High Precision Event Timer (IA-PC HPET spec 1.0a) at MMIO 0xfed00000, following QEMU's
// hw/timer/hpet.c: a 100 MHz 64-bit main counter derived from the clock (hpet_offset), three
// comparators with periodic and 32-bit modes, level/edge interrupts with a status register, and
// LegacyReplacement routing (timer 0 -> IRQ0, timer 1 -> IRQ8, PIT and RTC outputs disconnected).
import type { Timer } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { big, type DeviceDeps, muldiv64, resolveDeps, str, timerEventBound } from './common.ts';
import type { AccessSize, MmioDevice } from './bus.ts';
import { type IrqLine, noIrq, pulse } from './irq.ts';

export const HPET_BASE = 0xfed00000n;
export const HPET_LEN = 0x400n;
/** Main counter period in femtoseconds: 10 ns, a 100 MHz counter. */
export const HPET_CLK_PERIOD_FS = 10_000_000n;
const HPET_CLK_PERIOD_NS = 10n;

export const HPET_ID = 0x000;
export const HPET_PERIOD = 0x004;
export const HPET_CFG = 0x010;
export const HPET_STATUS = 0x020;
export const HPET_COUNTER = 0x0f0;
export const HPET_TN_CFG = 0x000;
export const HPET_TN_CMP = 0x008;
export const HPET_TN_ROUTE = 0x010;

export const HPET_CFG_ENABLE = 0x001n;
export const HPET_CFG_LEGACY = 0x002n;
const HPET_CFG_WRITE_MASK = 0x3n;
export const HPET_TN_TYPE_LEVEL = 0x002n;
export const HPET_TN_ENABLE = 0x004n;
export const HPET_TN_PERIODIC = 0x008n;
export const HPET_TN_PERIODIC_CAP = 0x010n;
export const HPET_TN_SIZE_CAP = 0x020n;
export const HPET_TN_SETVAL = 0x040n;
export const HPET_TN_32BIT = 0x100n;
const HPET_TN_INT_ROUTE_MASK = 0x3e00n;
const HPET_TN_INT_ROUTE_SHIFT = 9n;
export const HPET_TN_FSB_ENABLE = 0x4000n;
export const HPET_TN_FSB_CAP = 0x8000n;
const HPET_TN_CFG_WRITE_MASK = 0x7f4en;
const M32 = 0xffff_ffffn;
const M64 = (1n << 64n) - 1n;
const RTC_ISA_IRQ = 8;

export interface HpetOptions extends Omit<DeviceDeps, 'irq'> {
  /** Interrupt lines by GSI (IOAPIC input); missing lines go nowhere. */
  irqs: IrqLine[];
  /** Timers (QEMU's "timers" property, 3..32). Default 3. */
  numTimers?: number;
  /** Bitmap of IOAPIC inputs each timer may route to (Tn_INT_ROUTE_CAP). QEMU 7.2's pc machine reports 0x4. */
  intcap?: number;
  /** Advertise FSB (MSI) delivery and use this to deliver it. */
  msiWrite?: (addr: bigint, data: number) => void;
  /** Told when LegacyReplacement routing switches on or off, so the machine can gate the PIT and RTC. */
  onLegacyRoute?: (enabled: boolean) => void;
  /**
   * How a 64-bit write to a comparator lands. `split` (default, QEMU 7.2): the memory core splits it into
   * two 32-bit writes, low half first, so in periodic mode the first half consumes Tn_VAL_SET and the high
   * half goes to the period only. `atomic`: one 64-bit write, as on hardware.
   */
  cmp64Write?: HpetCmp64Write;
  /**
   * When a periodic comparator advances. `past` (default, QEMU 7.2 hpet_timer): while the counter is
   * strictly past it, so a timer firing exactly on its comparator (as under an exact virtual clock) fires
   * again one tick later before moving on. `reached`: on the match itself, as the spec reads (2.3.9.2.2).
   */
  periodicAdvance?: HpetPeriodicAdvance;
}

export type HpetCmp64Write = 'split' | 'atomic';
export type HpetPeriodicAdvance = 'past' | 'reached';

export interface HpetTimerState {
  config: string;
  cmp: string;
  fsb: string;
  period: string;
  wrapFlag: boolean;
  expires: string | null;
}

export interface HpetState {
  version: 1;
  config: string;
  isr: string;
  /** Main counter while halted (and the value it was at when last enabled). */
  hpetCounter: string;
  hpetOffset: string;
  timers: HpetTimerState[];
}

interface HpetTimer {
  tn: number;
  config: bigint;
  cmp: bigint;
  fsb: bigint;
  period: bigint;
  wrapFlag: boolean;
  timer: Timer;
}

const s32 = (x: bigint) => BigInt.asIntN(32, x);
const s64 = (x: bigint) => BigInt.asIntN(64, x);

export class Hpet implements MmioDevice {
  private readonly d: ReturnType<typeof resolveDeps>;
  private readonly irqs: IrqLine[];
  private readonly msiWrite: ((addr: bigint, data: number) => void) | undefined;
  private readonly onLegacyRoute: ((enabled: boolean) => void) | undefined;
  private readonly capability: bigint;
  private config = 0n;
  private isr = 0n;
  private hpetCounter = 0n;
  private hpetOffset = 0n;
  private readonly timers: HpetTimer[];
  /**
   * QEMU 7.2 checks `timer_id > num_timers`, so the registers of one timer past the last are live: never
   * reset (all zero), not saved, skipped by the enable/disable/status loops, but armed by its own writes.
   */
  private readonly ghost: HpetTimer | undefined;
  private readonly cmp64Write: HpetCmp64Write;
  private readonly periodicAdvance: HpetPeriodicAdvance;
  readonly stats = { fired: 0 };

  constructor(opts: HpetOptions) {
    this.d = resolveDeps({ ...opts, irq: noIrq }, 'hpet');
    this.irqs = opts.irqs;
    this.msiWrite = opts.msiWrite;
    this.onLegacyRoute = opts.onLegacyRoute;
    const n = opts.numTimers ?? 3;
    if (n < 3 || n > 32) throw new InputError(`HPET timers must be 3..32, got ${n}`);
    // 64-bit counter, LegacyReplacement capable, vendor 8086, rev 1; period in the high half
    this.capability = 0x8086a001n | (BigInt(n - 1) << 8n) | (HPET_CLK_PERIOD_FS << 32n);
    const intcap = BigInt(opts.intcap ?? 0x4);
    this.cmp64Write = opts.cmp64Write ?? 'split';
    this.periodicAdvance = opts.periodicAdvance ?? 'past';
    const resetConfig = HPET_TN_PERIODIC_CAP | HPET_TN_SIZE_CAP | (this.msiWrite ? HPET_TN_FSB_CAP : 0n) | (intcap << 32n);
    this.timers = Array.from({ length: n }, (_, tn) => this.newTimer(tn, resetConfig, M64));
    // the register window 0x100-0x3ff holds timers 0..23
    this.ghost = n <= 23 ? this.newTimer(n, 0n, 0n) : undefined;
  }

  private newTimer(tn: number, config: bigint, cmp: bigint): HpetTimer {
    const t: HpetTimer = { tn, config, cmp, fsb: 0n, period: 0n, wrapFlag: false, timer: null as unknown as Timer };
    t.timer = this.d.scheduler.timer(() => this.hpetTimer(t));
    return t;
  }

  /** The timer whose registers `addr` (0x100-0x3ff) falls in, the ghost past the last included. */
  private timerAt(addr: number): HpetTimer | undefined {
    const id = (addr - 0x100) >> 5;
    return this.timers[id] ?? (id === this.ghost?.tn ? this.ghost : undefined);
  }

  // --- helpers ---

  private enabled(): boolean {
    return (this.config & HPET_CFG_ENABLE) !== 0n;
  }

  private legacy(): boolean {
    return (this.config & HPET_CFG_LEGACY) !== 0n;
  }

  /** Main counter now: ticks of 10 ns since the clock's zero, shifted by hpet_offset. */
  private getTicks(): bigint {
    return ((this.d.clock() + this.hpetOffset) / HPET_CLK_PERIOD_NS) & M64;
  }

  /** Main counter value as a guest reads it. */
  counter(): bigint {
    return this.enabled() ? this.getTicks() : this.hpetCounter;
  }

  /** hpet_calculate_diff: ticks until the comparator, at least 1 (32-bit compare in 32-bit mode). */
  private calculateDiff(t: HpetTimer, current: bigint): bigint {
    if (t.config & HPET_TN_32BIT) {
      const diff = (t.cmp - current) & M32;
      return s32(diff) > 0n ? diff : 1n;
    }
    const diff = (t.cmp - current) & M64;
    return s64(diff) > 0n ? diff : 1n;
  }

  private armTicks(t: HpetTimer, diff: bigint): void {
    t.timer.armIn(muldiv64(diff, HPET_CLK_PERIOD_NS, 1n));
  }

  private updateIrq(t: HpetTimer, set: boolean): void {
    const route =
      t.tn <= 1 && this.legacy() ? (t.tn === 0 ? 0 : RTC_ISA_IRQ) : Number((t.config & HPET_TN_INT_ROUTE_MASK) >> HPET_TN_INT_ROUTE_SHIFT);
    const line = this.irqs[route] ?? noIrq;
    const mask = 1n << BigInt(t.tn);
    const fsb = (t.config & HPET_TN_FSB_ENABLE) !== 0n;
    if (!set || !(t.config & HPET_TN_ENABLE) || !this.enabled()) {
      this.isr &= ~mask;
      if (!fsb) line.lower();
    } else if (fsb) {
      this.msiWrite?.(t.fsb >> 32n, Number(t.fsb & M32));
    } else if (t.config & HPET_TN_TYPE_LEVEL) {
      this.isr |= mask;
      line.raise();
    } else {
      this.isr &= ~mask;
      pulse(line);
    }
  }

  /** hpet_set_timer: arm for the comparator; a 32-bit one-shot also fires when the counter wraps. */
  private setTimer(t: HpetTimer): void {
    const cur = this.getTicks();
    t.wrapFlag = false;
    let diff = this.calculateDiff(t, cur);
    if (t.config & HPET_TN_32BIT && !(t.config & HPET_TN_PERIODIC)) {
      const wrapDiff = M32 - (cur & M32);
      if (wrapDiff < (diff & M32)) {
        diff = wrapDiff;
        t.wrapFlag = true;
      }
    }
    this.armTicks(t, diff);
  }

  private delTimer(t: HpetTimer): void {
    t.timer.cancel();
    this.updateIrq(t, false);
  }

  private hpetTimer(t: HpetTimer): void {
    const cur = this.getTicks();
    if (t.config & HPET_TN_PERIODIC && t.period !== 0n) {
      // Closed form of QEMU's `while (hpet_time_after(cur, cmp)) cmp += period` loop, so a comparator far
      // behind the counter costs one step rather than billions: the fewest periods that bring cmp to the
      // counter ('past', QEMU 7.2) or beyond it ('reached', the spec's advance on a match).
      const behind = t.config & HPET_TN_32BIT ? s32(cur - t.cmp) : s64(cur - t.cmp);
      const k =
        this.periodicAdvance === 'past'
          ? behind > 0n
            ? (behind + t.period - 1n) / t.period
            : 0n
          : behind >= 0n
            ? behind / t.period + 1n
            : 0n;
      t.cmp = (t.cmp + k * t.period) & (t.config & HPET_TN_32BIT ? M32 : M64);
      this.armTicks(t, this.calculateDiff(t, cur));
    } else if (t.config & HPET_TN_32BIT && !(t.config & HPET_TN_PERIODIC) && t.wrapFlag) {
      this.armTicks(t, this.calculateDiff(t, cur));
      t.wrapFlag = false;
    }
    this.stats.fired++;
    if (this.d.trace.on) this.d.trace.instant(this.d.scheduler.now, this.d.name, 'hpet_timer', [], { tn: t.tn, cmp: t.cmp });
    this.updateIrq(t, true);
  }

  /** At most how many timer events the next `span` ns can bring: per period, or per 32-bit wrap. */
  timerEventBound(span: Ns): number {
    let n = 0;
    for (const t of this.ghost ? [...this.timers, this.ghost] : this.timers) {
      const periodic = (t.config & HPET_TN_PERIODIC) !== 0n && t.period !== 0n;
      const periodTicks = periodic ? t.period : t.config & HPET_TN_32BIT ? 1n << 32n : null;
      n += timerEventBound(t.timer, periodTicks === null ? null : periodTicks * HPET_CLK_PERIOD_NS, span) + 1;
    }
    return n;
  }

  // --- MMIO ---

  mmioRead(offset: number, size: AccessSize): bigint {
    // QEMU 7.2: 32-bit registers, so a 64-bit read is two 32-bit reads, low half first
    if (size === 8) return (this.read(offset) & M32) | ((this.read(offset + 4) & M32) << 32n);
    return this.read(offset) & ((1n << BigInt(size * 8)) - 1n);
  }

  private read(addr: number): bigint {
    if (addr >= 0x100 && addr <= 0x3ff) {
      const t = this.timerAt(addr);
      if (!t) return 0n;
      switch ((addr - 0x100) % 0x20) {
        case HPET_TN_CFG:
          return t.config;
        case HPET_TN_CFG + 4:
          return t.config >> 32n;
        case HPET_TN_CMP:
          return t.cmp;
        case HPET_TN_CMP + 4:
          return t.cmp >> 32n;
        case HPET_TN_ROUTE:
          return t.fsb;
        case HPET_TN_ROUTE + 4:
          return t.fsb >> 32n;
        default:
          return 0n;
      }
    }
    switch (addr) {
      case HPET_ID:
        return this.capability;
      case HPET_PERIOD:
        return this.capability >> 32n;
      case HPET_CFG:
        return this.config;
      case HPET_COUNTER:
        return this.counter();
      case HPET_COUNTER + 4:
        return this.counter() >> 32n;
      case HPET_STATUS:
        return this.isr;
      default:
        return 0n;
    }
  }

  mmioWrite(offset: number, size: AccessSize, value: bigint): void {
    // cmp64Write 'atomic': a 64-bit comparator write is one write, as on hardware.
    if (size === 8 && this.cmp64Write === 'atomic' && offset >= 0x100 && (offset - 0x100) % 0x20 === HPET_TN_CMP) {
      const t = this.timerAt(offset);
      if (t) this.writeComparator64(t, value);
      return;
    }
    // QEMU 7.2's registers are 32 bits wide (hpet_ram_ops): a 64-bit write is two, low half first.
    if (size === 8) {
      this.write(offset, value & M32);
      this.write(offset + 4, value >> 32n);
      return;
    }
    this.write(offset, value & M32);
  }

  private write(addr: number, newVal: bigint): void {
    const oldVal = this.read(addr) & M32;
    if (addr >= 0x100 && addr <= 0x3ff) {
      const t = this.timerAt(addr);
      if (t) this.writeTimer(t, (addr - 0x100) % 0x20, oldVal, newVal);
      return;
    }
    switch (addr) {
      case HPET_CFG:
        return this.writeConfig(oldVal, newVal);
      case HPET_STATUS: {
        // write 1 to clear a level-triggered timer's status (and lower its line)
        const val = newVal & this.isr;
        for (const t of this.timers) if (val & (1n << BigInt(t.tn))) this.updateIrq(t, false);
        return;
      }
      case HPET_COUNTER:
        this.hpetCounter = (this.hpetCounter & ~M32) | newVal; // takes effect only while halted
        return;
      case HPET_COUNTER + 4:
        this.hpetCounter = (this.hpetCounter & M32) | (newVal << 32n);
        return;
      default:
    }
  }

  private writeConfig(oldVal: bigint, newVal: bigint): void {
    const val = (newVal & HPET_CFG_WRITE_MASK) | (oldVal & ~HPET_CFG_WRITE_MASK);
    this.config = (this.config & ~M32) | val;
    const on = (m: bigint) => !(oldVal & m) && (newVal & m) !== 0n;
    const off = (m: bigint) => (oldVal & m) !== 0n && !(newVal & m);
    if (on(HPET_CFG_ENABLE)) {
      // the main counter resumes from the value it held while halted
      this.hpetOffset = this.hpetCounter * HPET_CLK_PERIOD_NS - this.d.clock();
      for (const t of this.timers) if (t.cmp !== M64) this.setTimer(t); // QEMU arms even disabled timers; update_irq filters
    } else if (off(HPET_CFG_ENABLE)) {
      this.hpetCounter = this.getTicks();
      for (const t of this.timers) this.delTimer(t);
    }
    if (on(HPET_CFG_LEGACY)) {
      this.irqs[0]?.lower();
      this.irqs[RTC_ISA_IRQ]?.lower();
      this.onLegacyRoute?.(true);
    } else if (off(HPET_CFG_LEGACY)) {
      this.irqs[0]?.lower();
      this.onLegacyRoute?.(false);
    }
  }

  private writeTimer(t: HpetTimer, reg: number, oldVal: bigint, newVal: bigint): void {
    const on = (m: bigint) => !(oldVal & m) && (newVal & m) !== 0n;
    const off = (m: bigint) => (oldVal & m) !== 0n && !(newVal & m);
    switch (reg) {
      case HPET_TN_CFG: {
        if (on(HPET_TN_FSB_ENABLE)) this.updateIrq(t, false);
        const val = (newVal & HPET_TN_CFG_WRITE_MASK) | (oldVal & ~HPET_TN_CFG_WRITE_MASK);
        t.config = (t.config & ~M32) | val;
        if (newVal & HPET_TN_32BIT) {
          t.cmp &= M32;
          t.period &= M32;
        }
        if (on(HPET_TN_ENABLE) && this.enabled()) this.setTimer(t);
        else if (off(HPET_TN_ENABLE)) this.delTimer(t);
        return;
      }
      case HPET_TN_CMP:
      case HPET_TN_CMP + 4: {
        const high = reg === HPET_TN_CMP + 4;
        let v = newVal;
        if (!high && t.config & HPET_TN_32BIT) v &= M32;
        const periodic = (t.config & HPET_TN_PERIODIC) !== 0n;
        // In periodic mode the comparator is only written while Tn_VAL_SET is set; the period always is.
        if (!periodic || t.config & HPET_TN_SETVAL) t.cmp = high ? (t.cmp & M32) | (v << 32n) : (t.cmp & ~M32) | v;
        if (periodic) {
          const clampMask = t.config & HPET_TN_32BIT ? M32 >> 1n : M64 >> 1n;
          if (high) t.period = (t.period & M32) | ((v << 32n) & clampMask);
          else t.period = (t.period & ~M32) | (v & clampMask);
        }
        t.config &= ~HPET_TN_SETVAL;
        if (this.enabled()) this.setTimer(t);
        return;
      }
      case HPET_TN_ROUTE:
        t.fsb = (t.fsb & ~M32) | newVal;
        return;
      case HPET_TN_ROUTE + 4:
        t.fsb = (newVal << 32n) | (t.fsb & M32);
        return;
      default:
    }
  }

  private writeComparator64(t: HpetTimer, value: bigint): void {
    const periodic = (t.config & HPET_TN_PERIODIC) !== 0n;
    if (t.config & HPET_TN_32BIT) value &= M32;
    if (!periodic || t.config & HPET_TN_SETVAL) t.cmp = value;
    if (periodic) t.period = value & (t.config & HPET_TN_32BIT ? M32 >> 1n : M64 >> 1n);
    t.config &= ~HPET_TN_SETVAL;
    if (this.enabled()) this.setTimer(t);
  }

  // --- snapshot ---

  saveState(): HpetState {
    return {
      version: 1,
      config: str(this.config),
      isr: str(this.isr),
      hpetCounter: str(this.enabled() ? this.getTicks() : this.hpetCounter),
      hpetOffset: str(this.hpetOffset),
      timers: this.timers.map((t) => ({
        config: str(t.config),
        cmp: str(t.cmp),
        fsb: str(t.fsb),
        period: str(t.period),
        wrapFlag: t.wrapFlag,
        expires: t.timer.expires === null ? null : str(t.timer.expires - this.d.scheduler.now + this.d.clock()),
      })),
    };
  }

  restore(s: HpetState): void {
    if (s.version !== 1 || s.timers.length !== this.timers.length) throw new InputError('unsupported HPET state');
    this.config = big(s.config);
    this.isr = big(s.isr);
    this.hpetCounter = big(s.hpetCounter);
    // hpet_post_load: recompute the offset so the counter continues from the saved value
    this.hpetOffset = this.hpetCounter * HPET_CLK_PERIOD_NS - this.d.clock();
    s.timers.forEach((ts, i) => {
      const t = this.timers[i]!;
      t.config = big(ts.config);
      t.cmp = big(ts.cmp);
      t.fsb = big(ts.fsb);
      t.period = big(ts.period);
      t.timer.cancel();
      // Re-derive each timer from its comparator and the restored counter, so the state can be
      // restored onto a clock that reads differently (another host); `expires` is informational.
      if (this.enabled() && ts.expires !== null) this.setTimer(t);
      t.wrapFlag = ts.wrapFlag && t.wrapFlag;
    });
  }
}
