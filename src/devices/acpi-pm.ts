// ACPI PM1a event/control block and PM timer, following QEMU's hw/acpi/core.c: PM1_STS at +0, PM1_EN
// at +2, PM1_CNT at +4, PM_TMR at +8. The timer is a free-running 3.579545 MHz counter derived from the
// clock (acpi_pm_tmr_get), 24 bits wide (or 32 with TMR_VAL_EXT). TMR_STS is set whenever the counter
// has passed overflow_time (initially 0, so it reads set until the guest clears it; clearing it moves
// overflow_time to the next toggle of bit 23), and the SCI follows STS & EN (acpi_update_sci).
import type { Timer } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import { NSEC_PER_SEC, type Ns } from '../core/index.ts';
import type { PortDevice } from './bus.ts';
import { armAtClock, big, type DeviceDeps, muldiv64, resolveDeps, str, timerEventBound } from './common.ts';

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

  // The block is three QEMU memory regions (hw/acpi/core.c): PM1 event (+0, 4 ports, handlers take 16-bit
  // accesses), PM1 control (+4, 2 ports, 16-bit) and PM_TMR (+8, 4 ports, 32-bit); +6/+7 are unassigned.
  // Accesses are cut the way softmmu/physmem.c and memory.c cut them: per region, at most the region's
  // valid size and the address's alignment (memory_access_size), then widened to the handler's minimum
  // at the same, unaligned address (access_with_adjusted_size). So a byte read of PM1_CNT+1 answers the
  // register's low byte, a byte write there writes the whole register, and a 32-bit read at PM1_CNT
  // reads 0xffff above it.

  portRead(port: number, size: 1 | 2 | 4): number {
    const off = port - this.base;
    if (off === 8 && size === 4) return this.counter(); // PM_TMR, the hot path
    let v = 0;
    for (let i = 0; i < size; ) {
      const piece = this.piece(off + i, size - i);
      if (!piece) {
        v += 0xff * 2 ** (8 * i); // unassigned port
        i += 1;
        continue;
      }
      v += (this.handlerRead(piece.region, piece.addr) % 2 ** (8 * piece.len)) * 2 ** (8 * i);
      i += piece.len;
    }
    return v;
  }

  portWrite(port: number, size: 1 | 2 | 4, value: number): void {
    const off = port - this.base;
    for (let i = 0; i < size; ) {
      const piece = this.piece(off + i, size - i);
      if (!piece) {
        i += 1;
        continue;
      }
      // the handler gets the piece's bytes in its low bits, widened to its minimum size with zeros
      this.handlerWrite(piece.region, piece.addr, Math.floor(value / 2 ** (8 * i)) % 2 ** (8 * piece.len));
      i += piece.len;
    }
  }

  /** The next access piece at block offset `off` with `left` bytes to go, or null for an unassigned port. */
  private piece(off: number, left: number): { region: 'evt' | 'cnt' | 'tmr'; addr: number; len: number } | null {
    const region = off >= 0 && off < 4 ? 'evt' : off >= 4 && off < 6 ? 'cnt' : off >= 8 && off < 12 ? 'tmr' : null;
    if (region === null) return null;
    const start = region === 'evt' ? 0 : region === 'cnt' ? 4 : 8;
    const end = region === 'evt' ? 4 : region === 'cnt' ? 6 : 12;
    const validMax = region === 'tmr' ? 4 : 2;
    const addr = off - start;
    let len = Math.min(left, end - off, validMax);
    const align = addr & -addr; // memory_access_size: no unaligned accesses
    if (align !== 0 && align < len) len = align;
    len = len >= 4 ? 4 : len >= 2 ? 2 : 1; // pow2floor
    return { region, addr, len };
  }

  /** acpi_pm_evt_read / acpi_pm_cnt_read / acpi_pm_tmr_read: the handlers look at `addr` only as shown. */
  private handlerRead(region: 'evt' | 'cnt' | 'tmr', addr: number): number {
    if (region === 'tmr') return this.counter();
    if (region === 'cnt') return this.cnt;
    return addr === 0 ? this.getSts() : addr === 2 ? this.en : 0;
  }

  /** acpi_pm_evt_write / acpi_pm_cnt_write (sleep requests are not modelled) / acpi_pm_tmr_write (none). */
  private handlerWrite(region: 'evt' | 'cnt' | 'tmr', addr: number, v: number): void {
    if (region === 'cnt') this.cnt = v & ~ACPI_BITMASK_SLEEP_ENABLE;
    else if (region === 'evt' && addr === 0) this.writeSts(v);
    else if (region === 'evt' && addr === 2) this.writeEn(v);
  }

  /** At most how many timer events the next `span` ns can bring: one overflow per bit-23 toggle. */
  timerEventBound(span: Ns): number {
    return timerEventBound(this.timer, muldiv64(0x800000n, NSEC_PER_SEC, PM_TIMER_FREQUENCY), span);
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
    // TMR_STS is latched lazily (on reads); save it as a read now would see it, so equal machines save equal states
    return { version: 2, sts: this.getSts(), en: this.en, cnt: this.cnt, overflowTime: str(this.overflowTime) };
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
