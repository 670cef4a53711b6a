// ACPI PM1a event/control block and PM timer, following QEMU's hw/acpi/core.c: PM1_STS at +0, PM1_EN
// at +2, PM1_CNT at +4, PM_TMR at +8. The timer is a free-running 3.579545 MHz counter derived from the
// clock (acpi_pm_tmr_get), 24 bits wide (or 32 with TMR_VAL_EXT). TMR_STS is set whenever the counter
// has passed overflow_time (initially 0, so it reads set until the guest clears it; clearing it moves
// overflow_time to the next toggle of bit 23), and the SCI follows STS & EN (acpi_update_sci).
import type { Timer } from '../core/engine.ts';
import { InputError } from '../core/errors.ts';
import { NSEC_PER_SEC, type Ns } from '../core/time.ts';
import type { PortDevice } from './bus.ts';
import { armAtClock, big, type DeviceDeps, muldiv64, resolveDeps, str } from './common.ts';

export const PM_TIMER_FREQUENCY = 3_579_545n;
export const ACPI_BITMASK_TIMER_STATUS = 0x0001;
export const ACPI_BITMASK_TIMER_ENABLE = 0x0001;
const ACPI_BITMASK_SLEEP_ENABLE = 0x2000;
/** TMR | GBL | PWRBTN | RTC enables: the events that raise the SCI (ACPI_BITMASK_PM1_COMMON_ENABLED). */
const ACPI_BITMASK_PM1_COMMON_ENABLED = 0x0001 | 0x0020 | 0x0100 | 0x0400;

export interface AcpiPmTimerOptions extends DeviceDeps {
  /** Counter width: 24 (default, as QEMU and most chipsets) or 32 (FADT TMR_VAL_EXT). */
  bits?: 24 | 32;
  /** Base port of the PM1a block; the machine profile gives it (SeaBIOS programs 0x600 on piix4). */
  base: number;
}

export interface AcpiPmTimerState {
  version: 2;
  sts: number;
  en: number;
  cnt: number;
  /** In PM timer ticks, as QEMU's tmr.overflow_time. */
  overflowTime: string;
}

export class AcpiPmTimer implements PortDevice {
  /** Ports covered: PM1_STS (2), PM1_EN (2), PM1_CNT (2), reserved (2), PM_TMR (4). */
  static readonly LENGTH = 12;
  private readonly d: ReturnType<typeof resolveDeps>;
  private readonly mask: bigint;
  /** Current base port; the machine moves it when the guest reprograms the PM base (piix4 PMBA). */
  base: number;
  private sts = 0;
  private en = 0;
  private cnt = 0;
  private overflowTime = 0n;
  private readonly timer: Timer;

  constructor(opts: AcpiPmTimerOptions) {
    this.d = resolveDeps(opts, 'acpi-pm');
    this.mask = opts.bits === 32 ? 0xffff_ffffn : 0xff_ffffn;
    this.base = opts.base;
    this.timer = this.d.scheduler.timer(() => this.pmTmrTimer());
  }

  /** acpi_pm_tmr_get_clock: PM timer ticks since the clock's zero. */
  private ticks(): bigint {
    return muldiv64(this.d.clock(), PM_TIMER_FREQUENCY, NSEC_PER_SEC);
  }

  /** The counter as the guest reads PM_TMR. */
  counter(): number {
    return Number(this.ticks() & this.mask);
  }

  portRead(port: number, size: 1 | 2 | 4): number {
    const off = port - this.base;
    if (off === 8) {
      // PM_TMR, the hot path: one clock read however wide the access
      const c = this.counter();
      return size === 4 ? c : c & (size === 2 ? 0xffff : 0xff);
    }
    let v = 0;
    for (let i = 0; i < size; i++) v += this.readByte(port - this.base + i) * 2 ** (8 * i);
    return v;
  }

  private readByte(off: number): number {
    if (off >= 8 && off < 12) return Math.floor(this.counter() / 2 ** (8 * (off - 8))) & 0xff;
    if (off < 2) return (this.getSts() >> (8 * off)) & 0xff;
    if (off < 4) return (this.en >> (8 * (off - 2))) & 0xff;
    if (off < 6) return (this.cnt >> (8 * (off - 4))) & 0xff;
    return 0;
  }

  portWrite(port: number, size: 1 | 2 | 4, value: number): void {
    // The event and control registers are 16 bits wide (impl.min_access_size 2): a byte write to the
    // low half writes the whole register with a zero high byte, as QEMU's memory core does.
    for (let off = port - this.base, i = 0; i < size; off += 2, i += 2) {
      const v = Math.floor(value / 2 ** (8 * i)) & 0xffff;
      if (off === 0) this.writeSts(v);
      else if (off === 2) this.writeEn(v);
      else if (off === 4)
        this.cnt = v & ~ACPI_BITMASK_SLEEP_ENABLE; // sleep requests are not modelled
      else if (off === 5) this.cnt = ((v << 8) | (this.cnt & 0xff)) & ~ACPI_BITMASK_SLEEP_ENABLE;
      if (size === 1) break;
    }
  }

  /** acpi_pm1_evt_get_sts */
  private getSts(): number {
    if (this.ticks() >= this.overflowTime) this.sts |= ACPI_BITMASK_TIMER_STATUS;
    return this.sts;
  }

  /** acpi_pm1_evt_write_sts: write 1 to clear; clearing TMR_STS computes the next overflow. */
  private writeSts(val: number): void {
    const pm1Sts = this.getSts();
    if (pm1Sts & val & ACPI_BITMASK_TIMER_STATUS) this.calcOverflowTime();
    this.sts &= ~val;
    this.updateSci();
  }

  private writeEn(val: number): void {
    this.en = val;
    this.updateSci();
  }

  /** acpi_pm_tmr_calc_overflow_time: the next toggle of bit 23. */
  private calcOverflowTime(): void {
    this.overflowTime = (this.ticks() + 0x800000n) & ~0x7fffffn;
  }

  /** acpi_update_sci: SCI level, and the timer armed only while TMR_EN is set and TMR_STS clear. */
  private updateSci(): void {
    const sts = this.getSts();
    if (sts & this.en & ACPI_BITMASK_PM1_COMMON_ENABLED) this.d.irq.raise();
    else this.d.irq.lower();
    if (this.en & ACPI_BITMASK_TIMER_ENABLE && !(sts & ACPI_BITMASK_TIMER_STATUS)) {
      // First ns at which the counter reaches overflow_time. QEMU floors here and its timer can fire
      // a nanosecond early and re-arm at the same instant, which a virtual clock would never leave.
      const at: Ns = (this.overflowTime * NSEC_PER_SEC + PM_TIMER_FREQUENCY - 1n) / PM_TIMER_FREQUENCY;
      armAtClock(this.timer, this.d.clock, at);
    } else {
      this.timer.cancel();
    }
  }

  private pmTmrTimer(): void {
    if (this.d.trace.on) this.d.trace.instant(this.d.scheduler.now, this.d.name, 'acpi_pm_tmr_timer', []);
    this.updateSci();
  }

  saveState(): AcpiPmTimerState {
    return { version: 2, sts: this.sts, en: this.en, cnt: this.cnt, overflowTime: str(this.overflowTime) };
  }

  restore(s: AcpiPmTimerState): void {
    if (s.version !== 2) throw new InputError('unsupported ACPI PM timer state');
    this.sts = s.sts & 0xffff;
    this.en = s.en & 0xffff;
    this.cnt = s.cnt & 0xffff;
    this.overflowTime = big(s.overflowTime);
    this.updateSci();
  }
}
