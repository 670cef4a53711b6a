// The global clock event devices as Linux programs them when one of them is the tick device (nolapic, or
// no local APIC): the legacy HPET channel 0 (arch/x86/kernel/hpet.c) and the PIT's channel 0
// (drivers/clocksource/i8253.c). Each is the clock_event_device's callbacks, written as the port/MMIO
// accesses the kernel makes; periodic-tick.ts runs the tick from their IRQ0.
import { u64 } from '../core/index.ts';
import type { ClockeventScale } from './periodic-tick.ts';
import type { GuestInterrupts, GuestPlatform } from './platform.ts';

/** The callbacks of a global clock event device (struct clock_event_device). */
export interface GlobalTickDevice {
  readonly name: 'hpet' | 'pit';
  readonly scale: ClockeventScale;
  /** set_state_periodic (tick_setup_periodic). */
  setPeriodic(): void;
  /** set_state_oneshot (tick_switch_to_oneshot). */
  setOneshot(): void;
  /** set_next_event(delta in device ticks): false for -ETIME. */
  setNextEvent(clc: bigint): boolean;
  /** set_state_shutdown. */
  shutdown(): void;
}

// arch/x86/include/asm/hpet.h; the ACPI HPET table's address on every modelled VMM (QEMU's HPET_BASE)
export const HPET_ADDRESS = 0xfed00000n;
const HPET_CFG = 0x010n;
const HPET_COUNTER = 0x0f0n;
const HPET_T0_CFG = 0x100n;
const HPET_T0_CMP = 0x108n;
const HPET_CFG_ENABLE = 0x001n;
const HPET_CFG_LEGACY = 0x002n;
const HPET_TN_ENABLE = 0x004n;
const HPET_TN_PERIODIC = 0x008n;
const HPET_TN_SETVAL = 0x040n;
const HPET_TN_32BIT = 0x100n;
/** hpet.c: HPET_MIN_CYCLES 128, HPET_MIN_PROG_DELTA = 1.5 × that. */
export const HPET_MIN_CYCLES = 128n;
export const HPET_MIN_PROG_DELTA = HPET_MIN_CYCLES + (HPET_MIN_CYCLES >> 1n);
const FSEC_PER_SEC = 1_000_000_000_000_000n;

// drivers/clocksource/i8253.c
const PIT_MODE = 0x43;
const PIT_CH0 = 0x40;

/**
 * The legacy HPET clockevent, channel 0 (hpet_legacy_clockevent_register): rating 50, one-shot and (the
 * "legacy horrors" comment) always periodic-capable, clockevents_config_and_register(hpet_freq,
 * HPET_MIN_PROG_DELTA, 0x7FFFFFFF), and hpet_enable_legacy_int: HPET_CFG_LEGACY set, so channel 0 is IRQ0.
 */
export class HpetTickDevice implements GlobalTickDevice {
  readonly name = 'hpet';
  readonly scale: ClockeventScale;

  constructor(
    private readonly itf: GuestInterrupts,
    hpetFreq: number,
    private readonly nsecPerTick: bigint,
    config: (freq: number, minTicks: bigint, maxTicks: bigint) => ClockeventScale,
  ) {
    this.scale = config(hpetFreq, HPET_MIN_PROG_DELTA, 0x7fff_ffffn);
    // hpet_enable_legacy_int
    this.writel(this.readl(HPET_CFG) | HPET_CFG_LEGACY, HPET_CFG);
  }

  /** hpet_freq = FSEC_PER_SEC / the period (hpet_enable). */
  static freq(p: GuestPlatform): number {
    return Number(FSEC_PER_SEC / BigInt(p.devices.hpet!.periodFs));
  }

  private readl(off: bigint): bigint {
    return this.itf.mmioRead!(HPET_ADDRESS + off);
  }

  private writel(v: bigint, off: bigint): void {
    this.itf.mmioWrite!(HPET_ADDRESS + off, v & 0xffff_ffffn);
  }

  /**
   * hpet_clkevt_set_state_periodic: stop the counter, comparator = counter + one tick's worth, config
   * ENABLE|PERIODIC|SETVAL|32BIT, the comparator, then (the AMD-81xx workaround) the period alone, and start.
   * The udelay(1) between the two writes takes no model time.
   */
  setPeriodic(): void {
    this.writel(this.readl(HPET_CFG) & ~HPET_CFG_ENABLE, HPET_CFG); // hpet_stop_counter
    const delta = u64(this.nsecPerTick * this.scale.mult) >> this.scale.shift;
    const now = this.readl(HPET_COUNTER);
    const cmp = (now + delta) & 0xffff_ffffn;
    const cfg = this.readl(HPET_T0_CFG) | HPET_TN_ENABLE | HPET_TN_PERIODIC | HPET_TN_SETVAL | HPET_TN_32BIT;
    this.writel(cfg, HPET_T0_CFG);
    this.writel(cmp, HPET_T0_CMP);
    this.writel(delta, HPET_T0_CMP);
    this.writel(this.readl(HPET_CFG) | HPET_CFG_ENABLE, HPET_CFG); // hpet_start_counter
  }

  /** hpet_clkevt_set_state_shutdown: channel 0's ENABLE off. */
  shutdown(): void {
    this.writel(this.readl(HPET_T0_CFG) & ~HPET_TN_ENABLE, HPET_T0_CFG);
  }

  /** hpet_clkevt_set_state_oneshot: periodic off, ENABLE|32BIT. */
  setOneshot(): void {
    const cfg = (this.readl(HPET_T0_CFG) & ~HPET_TN_PERIODIC) | HPET_TN_ENABLE | HPET_TN_32BIT;
    this.writel(cfg, HPET_T0_CFG);
  }

  /**
   * hpet_clkevt_set_next_event: comparator = (u32)(counter + delta); -ETIME when the counter read after
   * the write is less than HPET_MIN_CYCLES before it: `(s32)(cnt - hpet_readl(HPET_COUNTER)) < HPET_MIN_CYCLES`.
   */
  setNextEvent(clc: bigint): boolean {
    const cnt = (this.readl(HPET_COUNTER) + clc) & 0xffff_ffffn;
    this.writel(cnt, HPET_T0_CMP);
    const res = BigInt.asIntN(32, cnt - this.readl(HPET_COUNTER));
    return res >= HPET_MIN_CYCLES;
  }
}

/**
 * The PIT clockevent (clockevent_i8253_init(true) from x86's pit_timer_init): rating 0, one-shot capable,
 * clockevents_config_and_register(PIT_TICK_RATE, 0xF, 0x7FFF).
 */
export class PitTickDevice implements GlobalTickDevice {
  readonly name = 'pit';
  readonly scale: ClockeventScale;

  constructor(
    private readonly itf: GuestInterrupts,
    pitTickRate: number,
    private readonly latch: bigint,
    config: (freq: number, minTicks: bigint, maxTicks: bigint) => ClockeventScale,
  ) {
    this.scale = config(pitTickRate, 0xfn, 0x7fffn);
  }

  /** pit_set_periodic: channel 0, lobyte/hibyte, mode 2, binary (0x34); LATCH = (PIT_TICK_RATE + HZ/2) / HZ. */
  setPeriodic(): void {
    this.itf.outb(PIT_MODE, 0x34);
    this.itf.outb(PIT_CH0, Number(this.latch & 0xffn));
    this.itf.outb(PIT_CH0, Number(this.latch >> 8n));
  }

  /** pit_set_oneshot: channel 0, lobyte/hibyte, mode 4 (software triggered strobe), binary: 0x38; no count yet. */
  setOneshot(): void {
    this.itf.outb(PIT_MODE, 0x38);
  }

  /** pit_shutdown: mode 0 (0x30), then a zero count (i8253_clear_counter_on_shutdown, x86's default). */
  shutdown(): void {
    this.itf.outb(PIT_MODE, 0x30);
    this.itf.outb(PIT_CH0, 0);
    this.itf.outb(PIT_CH0, 0);
  }

  /** pit_next_event: the count, LSB then MSB; the MSB write loads it. Never -ETIME. */
  setNextEvent(clc: bigint): boolean {
    this.itf.outb(PIT_CH0, Number(clc & 0xffn));
    this.itf.outb(PIT_CH0, Number((clc >> 8n) & 0xffn));
    return true;
  }
}
