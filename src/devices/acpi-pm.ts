// ACPI power-management timer, following QEMU's hw/acpi/core.c (acpi_pm_tmr_get, acpi_pm_tmr_update):
// a free-running 3.579545 MHz counter, 24 bits wide (or 32 with TMR_VAL_EXT), read at the port the
// machine profile gives it (PM1a base + 8). PM1_STS.TMR_STS is set when the counter's top bit toggles
// and raises the SCI while PM1_EN.TMR_EN is set.
import { InputError } from '../core/errors.ts';
import { NSEC_PER_SEC, type Ns } from '../core/time.ts';
import type { PortDevice } from './bus.ts';
import { armAtClock, big, type DeviceDeps, muldiv64, resolveDeps, str } from './common.ts';
import type { Timer } from '../core/engine.ts';

export const PM_TIMER_FREQUENCY = 3_579_545n;
export const ACPI_BITMASK_TIMER_STATUS = 0x0001;
export const ACPI_BITMASK_TIMER_ENABLE = 0x0001;

export interface AcpiPmTimerOptions extends DeviceDeps {
  /** Counter width: 24 (default, as QEMU and most chipsets) or 32 (FADT TMR_VAL_EXT). */
  bits?: 24 | 32;
  /**
   * Base of the PM1a event block (PM1_STS at +0, PM1_EN at +2, PM_TMR at +8); the machine profile gives
   * it (QEMU's piix4 default is 0x600 once firmware programs PMBA, ICH9 0x608 for PM_TMR).
   */
  base: number;
}

export interface AcpiPmTimerState {
  version: 1;
  sts: number;
  en: number;
  overflowAt: string | null;
}

export class AcpiPmTimer implements PortDevice {
  private readonly d: ReturnType<typeof resolveDeps>;
  private readonly mask: bigint;
  readonly base: number;
  private sts = 0;
  private en = 0;
  private readonly timer: Timer;
  private overflowAt: Ns | null = null;

  constructor(opts: AcpiPmTimerOptions) {
    this.d = resolveDeps(opts, 'acpi-pm');
    this.mask = opts.bits === 32 ? 0xffff_ffffn : 0xff_ffffn;
    this.base = opts.base;
    this.timer = this.d.scheduler.timer(() => this.pmTmrTimer());
    this.update();
  }

  /** acpi_pm_tmr_get_clock: PM timer ticks since the clock's zero. */
  private ticks(): bigint {
    return muldiv64(this.d.clock(), PM_TIMER_FREQUENCY, NSEC_PER_SEC);
  }

  /** The counter as the guest reads PM_TMR. */
  counter(): number {
    return Number(this.ticks() & this.mask);
  }

  /** Ports covered: PM1_STS (2), PM1_EN (2), PM1_CNT (4, not modelled), PM_TMR (4). */
  static readonly LENGTH = 12;

  portRead(port: number, size: 1 | 2 | 4): number {
    const off = port - this.base;
    let v = 0;
    if (off >= 8) v = Math.floor(this.counter() / 2 ** (8 * (off - 8)));
    else if (off < 2) v = this.getSts() >> (8 * off);
    else if (off < 4) v = this.en >> (8 * (off - 2));
    return size === 4 ? v >>> 0 : v & (size === 2 ? 0xffff : 0xff);
  }

  portWrite(port: number, size: 1 | 2 | 4, value: number): void {
    const off = port - this.base;
    if (off === 0) {
      // PM1_STS: write 1 to clear (acpi_pm1_evt_write_sts)
      this.sts &= ~(value & (size === 1 ? 0xff : 0xffff));
      this.update();
    } else if (off === 2) {
      this.en = value & 0xffff;
      this.update();
    }
  }

  private getSts(): number {
    // acpi_pm1_evt_get_sts: the overflow may have passed without the timer having run yet
    if (this.overflowAt !== null && this.d.clock() >= this.overflowAt) this.sts |= ACPI_BITMASK_TIMER_STATUS;
    return this.sts;
  }

  /** Next time bit 23 (or 31) of the counter toggles. */
  private nextOverflow(): Ns {
    const half = (this.mask + 1n) >> 1n;
    const next = (this.ticks() + half) & ~(half - 1n);
    // smallest ns with muldiv64(ns, f, 1e9) >= next
    return (next * NSEC_PER_SEC + PM_TIMER_FREQUENCY - 1n) / PM_TIMER_FREQUENCY;
  }

  /** acpi_pm_tmr_update: the SCI follows TMR_STS && TMR_EN; the timer is armed only while enabled. */
  private update(): void {
    const level = (this.getSts() & ACPI_BITMASK_TIMER_STATUS & this.en) !== 0;
    if (level) this.d.irq.raise();
    else this.d.irq.lower();
    this.overflowAt = this.nextOverflow();
    if (this.en & ACPI_BITMASK_TIMER_ENABLE) armAtClock(this.timer, this.d.clock, this.overflowAt);
    else this.timer.cancel();
  }

  private pmTmrTimer(): void {
    this.sts |= ACPI_BITMASK_TIMER_STATUS;
    if (this.d.trace.on) this.d.trace.instant(this.d.scheduler.now, this.d.name, 'acpi_pm_tmr_timer', []);
    this.update();
  }

  saveState(): AcpiPmTimerState {
    return { version: 1, sts: this.getSts(), en: this.en, overflowAt: this.overflowAt === null ? null : str(this.overflowAt) };
  }

  restore(s: AcpiPmTimerState): void {
    if (s.version !== 1) throw new InputError('unsupported ACPI PM timer state');
    this.sts = s.sts & 0xffff;
    this.en = s.en & 0xffff;
    this.update();
    if (s.overflowAt !== null && big(s.overflowAt) < this.overflowAt!) this.overflowAt = big(s.overflowAt);
  }
}
