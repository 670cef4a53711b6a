// CMOS RTC (Motorola MC146818) at ports 0x70/0x71, following QEMU's hw/rtc/mc146818rtc.c: the time
// registers are recomputed from a base (base_rtc seconds at last_update, plus a sub-second offset)
// whenever they are read, rather than ticked once a second; three timers model the periodic interrupt,
// the update-ended/alarm interrupt and lost-tick reinjection ("driftfix slew").
import type { Timer } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import { NSEC_PER_SEC, type Ns } from '../core/index.ts';
import { armAtClock, big, type DeviceDeps, expiresOnClock, muldiv64, resolveDeps, str, timerEventBound } from './common.ts';
import type { PortDevice } from './bus.ts';

// Register indices and bits (include/hw/rtc/mc146818rtc_regs.h).
export const RTC_SECONDS = 0x00;
export const RTC_SECONDS_ALARM = 0x01;
export const RTC_MINUTES = 0x02;
export const RTC_MINUTES_ALARM = 0x03;
export const RTC_HOURS = 0x04;
export const RTC_HOURS_ALARM = 0x05;
export const RTC_DAY_OF_WEEK = 0x06;
export const RTC_DAY_OF_MONTH = 0x07;
export const RTC_MONTH = 0x08;
export const RTC_YEAR = 0x09;
export const RTC_REG_A = 0x0a;
export const RTC_REG_B = 0x0b;
export const RTC_REG_C = 0x0c;
export const RTC_REG_D = 0x0d;
export const RTC_CENTURY = 0x32;
export const RTC_IBM_PS2_CENTURY_BYTE = 0x37;

export const REG_A_UIP = 0x80;
export const REG_B_SET = 0x80;
export const REG_B_PIE = 0x40;
export const REG_B_AIE = 0x20;
export const REG_B_UIE = 0x10;
export const REG_B_SQWE = 0x08;
export const REG_B_DM = 0x04;
export const REG_B_24H = 0x02;
export const REG_C_IRQF = 0x80;
export const REG_C_PF = 0x40;
export const REG_C_AF = 0x20;
export const REG_C_UF = 0x10;
const REG_C_MASK = 0x70;

export const RTC_CLOCK_RATE = 32768n;
/** UIP is set in the last 244 µs (8 cycles of the 32.768 kHz clock) of every second. */
export const UIP_HOLD_LENGTH = (8n * NSEC_PER_SEC) / 32768n;
const RTC_REINJECT_ON_ACK_COUNT = 20;

export type LostTickPolicy = 'discard' | 'slew';

export interface CmosRtcOptions extends DeviceDeps {
  /** RTC time (UTC seconds since the epoch) when the clock reads `startNs` (QEMU -rtc base=). */
  baseSeconds: bigint;
  /** Clock reading that corresponds to baseSeconds; defaults to the clock's value at construction. */
  startNs?: Ns;
  /** QEMU's lost_tick_policy: 'slew' reinjects periodic interrupts the guest missed. Default 'discard'. */
  lostTickPolicy?: LostTickPolicy;
  /** QEMU's base_year property; 0 for the pc machine (century byte holds the century). */
  baseYear?: number;
}

/** Plain snapshot of the RTC, like QEMU's vmstate_rtc (version 3). */
export interface CmosRtcState {
  version: 1;
  cmos: number[];
  cmosIndex: number;
  baseRtc: string;
  lastUpdate: string;
  offset: string;
  period: number;
  nextPeriodicTime: string;
  nextAlarmTime: string;
  irqCoalesced: number;
  irqReinjectOnAckCount: number;
  periodicTimer: string | null;
  updateTimer: string | null;
  coalescedTimer: string | null;
}

/** Periodic interrupt period in 32.768 kHz cycles for rate-select code `code` (0 = off). */
export function periodicPeriodToClock(code: number): number {
  if (code === 0) return 0;
  if (code <= 2) code += 7; // rates 1 and 2 alias 8 and 9 (datasheet table 4)
  return 1 << (code - 1);
}

function periodicClockToNs(clocks: bigint): Ns {
  return muldiv64(clocks, NSEC_PER_SEC, RTC_CLOCK_RATE);
}

/**
 * RTC start time for QEMU's `-rtc base=` values: 'utc', 'localtime' (needs the host's UTC offset) or a
 * date 'YYYY-MM-DD' / 'YYYY-MM-DDTHH:MM:SS'. The caller supplies the host wall time; a device never reads it.
 */
export function rtcBaseSeconds(base: string, hostWallNs: Ns, utcOffsetSeconds = 0): bigint {
  const host = hostWallNs / NSEC_PER_SEC;
  if (base === 'utc') return host;
  if (base === 'localtime') return host + BigInt(utcOffsetSeconds);
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2}))?$/.exec(base);
  if (!m) throw new InputError(`invalid RTC base '${base}' (utc, localtime, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)`, '--rtc-base');
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => Number(x ?? 0));
  return BigInt(timegm(y!, mo! - 1, d!, h!, mi!, s!));
}

function timegm(year: number, mon: number, mday: number, hour: number, min: number, sec: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, mon, mday);
  d.setUTCHours(hour, min, sec, 0);
  return Math.floor(d.getTime() / 1000);
}

interface Tm {
  sec: number;
  min: number;
  hour: number;
  wday: number;
  mday: number;
  mon: number;
  year: number; // full year
}

function gmtime(seconds: bigint): Tm {
  const d = new Date(Number(seconds) * 1000);
  return {
    sec: d.getUTCSeconds(),
    min: d.getUTCMinutes(),
    hour: d.getUTCHours(),
    wday: d.getUTCDay(),
    mday: d.getUTCDate(),
    mon: d.getUTCMonth(),
    year: d.getUTCFullYear(),
  };
}

export class CmosRtc implements PortDevice {
  private readonly d: ReturnType<typeof resolveDeps>;
  private readonly policy: LostTickPolicy;
  private readonly baseYear: number;
  private readonly cmos = new Uint8Array(128);
  private cmosIndex = 0;
  private baseRtc: bigint;
  private lastUpdate: Ns;
  private offset: Ns = 0n;
  private period = 0;
  private nextPeriodicTime: Ns = 0n;
  private nextAlarmTime: Ns = 0n;
  private irqCoalesced = 0;
  private irqReinjectOnAckCount = 0;
  private readonly periodicTimer: Timer;
  private readonly updateTimer: Timer;
  private readonly coalescedTimer: Timer;
  /** Periodic interrupts raised, delivered on first try, and reinjected later (slew). */
  readonly stats = { periodic: 0, coalesced: 0, reinjected: 0, update: 0, alarm: 0 };

  constructor(opts: CmosRtcOptions) {
    this.d = resolveDeps(opts, 'rtc');
    this.policy = opts.lostTickPolicy ?? 'discard';
    this.baseYear = opts.baseYear ?? 0;
    this.periodicTimer = this.d.scheduler.timer(() => this.rtcPeriodicTimer());
    this.updateTimer = this.d.scheduler.timer(() => this.rtcUpdateTimer());
    this.coalescedTimer = this.d.scheduler.timer(() => this.rtcCoalescedTimer());
    // rtc_realizefn + rtc_set_date_from_host
    this.cmos[RTC_REG_A] = 0x26;
    this.cmos[RTC_REG_B] = 0x02;
    this.cmos[RTC_REG_C] = 0x00;
    this.cmos[RTC_REG_D] = 0x80;
    const now = this.d.clock();
    const start = opts.startNs ?? now;
    // The RTC reads baseSeconds at clock=start: express that as base_rtc at last_update=now.
    const at = opts.baseSeconds * NSEC_PER_SEC + (now - start);
    this.baseRtc = at / NSEC_PER_SEC;
    this.offset = at % NSEC_PER_SEC;
    this.lastUpdate = now;
    this.setCmos(gmtime(this.baseRtc));
    this.checkUpdateTimer();
  }

  // --- port interface ---

  portRead(port: number, _size: 1 | 2 | 4 = 1): number {
    if ((port & 1) === 0) return 0xff;
    return this.readData();
  }

  portWrite(port: number, _size: number, value: number): void {
    if ((port & 1) === 0) this.cmosIndex = value & 0x7f;
    else this.writeData(value & 0xff);
  }

  /** RTC time in ns since the epoch as the guest would read it (get_guest_rtc_ns). */
  guestRtcNs(): Ns {
    return this.baseRtc * NSEC_PER_SEC + this.d.clock() - this.lastUpdate + this.offset;
  }

  /** Direct CMOS RAM access for firmware-style setup (mc146818rtc_set_cmos_data). */
  setCmosData(index: number, value: number): void {
    if (index >= 0 && index < 128) this.cmos[index] = value & 0xff;
  }

  getCmosData(index: number): number {
    return this.cmos[index & 0x7f]!;
  }

  /** Coalesced periodic interrupts waiting to be reinjected (slew policy). */
  get coalescedCount(): number {
    return this.irqCoalesced;
  }

  // --- registers ---

  private running(): boolean {
    return (this.cmos[RTC_REG_B]! & REG_B_SET) === 0 && (this.cmos[RTC_REG_A]! & 0x70) <= 0x20;
  }

  private readData(): number {
    const c = this.cmos;
    if (this.cmosIndex === RTC_IBM_PS2_CENTURY_BYTE) this.cmosIndex = RTC_CENTURY;
    switch (this.cmosIndex) {
      case RTC_CENTURY:
      case RTC_SECONDS:
      case RTC_MINUTES:
      case RTC_HOURS:
      case RTC_DAY_OF_WEEK:
      case RTC_DAY_OF_MONTH:
      case RTC_MONTH:
      case RTC_YEAR:
        if (this.running()) this.updateTime();
        return c[this.cmosIndex]!;
      case RTC_REG_A:
        return c[RTC_REG_A]! | (this.updateInProgress() ? REG_A_UIP : 0);
      case RTC_REG_C:
        return this.readRegC();
      default:
        return c[this.cmosIndex]!;
    }
  }

  /** Reading C returns the flags and clears them, lowering the IRQ (read-to-clear). */
  private readRegC(): number {
    const ret = this.cmos[RTC_REG_C]!;
    this.d.irq.lower();
    this.cmos[RTC_REG_C] = 0;
    if (ret & (REG_C_UF | REG_C_AF)) this.checkUpdateTimer();
    if (this.irqCoalesced > 0 && this.cmos[RTC_REG_B]! & REG_B_PIE && this.irqReinjectOnAckCount < RTC_REINJECT_ON_ACK_COUNT) {
      // "injecting on ack": the guest's acknowledgement is the earliest moment it can take another tick
      this.irqReinjectOnAckCount++;
      this.cmos[RTC_REG_C] |= REG_C_IRQF | REG_C_PF;
      if (this.d.irq.raise()) {
        this.irqCoalesced--;
        this.stats.reinjected++;
      }
      this.traceEvent('rtc_reinject_on_ack', { coalesced: this.irqCoalesced });
    }
    return ret;
  }

  private writeData(data: number): void {
    const c = this.cmos;
    if (this.cmosIndex === RTC_IBM_PS2_CENTURY_BYTE) this.cmosIndex = RTC_CENTURY;
    switch (this.cmosIndex) {
      case RTC_SECONDS_ALARM:
      case RTC_MINUTES_ALARM:
      case RTC_HOURS_ALARM:
        c[this.cmosIndex] = data;
        this.checkUpdateTimer();
        return;
      case RTC_CENTURY:
      case RTC_SECONDS:
      case RTC_MINUTES:
      case RTC_HOURS:
      case RTC_DAY_OF_WEEK:
      case RTC_DAY_OF_MONTH:
      case RTC_MONTH:
      case RTC_YEAR:
        c[this.cmosIndex] = data;
        if (this.running()) {
          this.setTime();
          this.checkUpdateTimer();
        }
        return;
      case RTC_REG_A:
        return this.writeRegA(data);
      case RTC_REG_B:
        return this.writeRegB(data);
      case RTC_REG_C:
      case RTC_REG_D:
        return; // read-only
      default:
        c[this.cmosIndex] = data;
    }
  }

  private writeRegA(data: number): void {
    const c = this.cmos;
    const updatePeriodic = ((c[RTC_REG_A]! ^ data) & 0x0f) !== 0;
    const oldPeriod = this.periodicClockTicks();
    if ((data & 0x60) === 0x60) {
      // divider chain held in reset: the clock stops
      if (this.running()) this.updateTime();
      c[RTC_REG_A] &= ~REG_A_UIP;
    } else if ((c[RTC_REG_A]! & 0x60) === 0x60 && (data & 0x70) <= 0x20) {
      // leaving divider reset: the first update cycle begins one-half second later
      if (!(c[RTC_REG_B]! & REG_B_SET)) {
        this.offset = 500_000_000n;
        this.setTime();
      }
      c[RTC_REG_A] &= ~REG_A_UIP;
    }
    c[RTC_REG_A] = (data & ~REG_A_UIP) | (c[RTC_REG_A]! & REG_A_UIP);
    if (updatePeriodic) this.periodicTimerUpdate(this.d.clock(), oldPeriod, true);
    this.checkUpdateTimer();
  }

  private writeRegB(data: number): void {
    const c = this.cmos;
    const updatePeriodic = ((c[RTC_REG_B]! ^ data) & REG_B_PIE) !== 0;
    const oldPeriod = this.periodicClockTicks();
    if (data & REG_B_SET) {
      if (this.running()) this.updateTime();
      c[RTC_REG_A] &= ~REG_A_UIP;
      data &= ~REG_B_UIE; // SET forces UIE off
    } else if (c[RTC_REG_B]! & REG_B_SET && (c[RTC_REG_A]! & 0x70) <= 0x20) {
      // leaving SET mode: the time written becomes the time now, keeping the sub-second phase
      this.offset = this.guestRtcNs() % NSEC_PER_SEC;
      this.setTime();
    }
    // An interrupt flag already set when its enable bit is set raises the interrupt at once.
    if (data & c[RTC_REG_C]! & REG_C_MASK) {
      c[RTC_REG_C] |= REG_C_IRQF;
      this.d.irq.raise();
    } else {
      c[RTC_REG_C] &= ~REG_C_IRQF;
      this.d.irq.lower();
    }
    c[RTC_REG_B] = data;
    if (updatePeriodic) this.periodicTimerUpdate(this.d.clock(), oldPeriod, true);
    this.checkUpdateTimer();
  }

  // --- time conversion (rtc_to_bcd, rtc_from_bcd, rtc_get_time, rtc_set_cmos) ---

  private toBcd(a: number): number {
    if (this.cmos[RTC_REG_B]! & REG_B_DM) return a & 0xff;
    return ((Math.trunc(a / 10) << 4) | (a % 10)) & 0xff;
  }

  private fromBcd(a: number): number {
    if ((a & 0xc0) === 0xc0) return -1; // "don't care" in alarm registers
    if (this.cmos[RTC_REG_B]! & REG_B_DM) return a;
    return (a >> 4) * 10 + (a & 0x0f);
  }

  private convertHour(hour: number): number {
    if (!(this.cmos[RTC_REG_B]! & REG_B_24H)) {
      hour %= 12;
      if (this.cmos[RTC_HOURS]! & 0x80) hour += 12;
    }
    return hour;
  }

  private getTime(): Tm {
    const c = this.cmos;
    let hour = this.fromBcd(c[RTC_HOURS]! & 0x7f);
    if (!(c[RTC_REG_B]! & REG_B_24H)) {
      hour %= 12;
      if (c[RTC_HOURS]! & 0x80) hour += 12;
    }
    return {
      sec: this.fromBcd(c[RTC_SECONDS]!),
      min: this.fromBcd(c[RTC_MINUTES]!),
      hour,
      wday: this.fromBcd(c[RTC_DAY_OF_WEEK]!) - 1,
      mday: this.fromBcd(c[RTC_DAY_OF_MONTH]!),
      mon: this.fromBcd(c[RTC_MONTH]!) - 1,
      year: this.fromBcd(c[RTC_YEAR]!) + this.baseYear + this.fromBcd(c[RTC_CENTURY]!) * 100,
    };
  }

  private setCmos(tm: Tm): void {
    const c = this.cmos;
    c[RTC_SECONDS] = this.toBcd(tm.sec);
    c[RTC_MINUTES] = this.toBcd(tm.min);
    if (c[RTC_REG_B]! & REG_B_24H) {
      c[RTC_HOURS] = this.toBcd(tm.hour);
    } else {
      const h = tm.hour % 12 ? tm.hour % 12 : 12; // 12-hour clock shows 12, not 0, at midnight and noon
      c[RTC_HOURS] = this.toBcd(h) | (tm.hour >= 12 ? 0x80 : 0);
    }
    c[RTC_DAY_OF_WEEK] = this.toBcd(tm.wday + 1);
    c[RTC_DAY_OF_MONTH] = this.toBcd(tm.mday);
    c[RTC_MONTH] = this.toBcd(tm.mon + 1);
    const year = tm.year - this.baseYear;
    c[RTC_YEAR] = this.toBcd(year % 100);
    c[RTC_CENTURY] = this.toBcd(Math.trunc(year / 100));
  }

  /** rtc_set_time: the registers written by the guest become the RTC's base. */
  private setTime(): void {
    const tm = this.getTime();
    this.baseRtc = BigInt(timegm(tm.year, tm.mon, tm.mday, tm.hour, tm.min, tm.sec));
    this.lastUpdate = this.d.clock();
  }

  /** rtc_update_time: recompute the time registers from the base (unless SET is on). */
  private updateTime(): void {
    const guestSec = this.guestRtcNs() / NSEC_PER_SEC;
    if ((this.cmos[RTC_REG_B]! & REG_B_SET) === 0) this.setCmos(gmtime(guestSec));
  }

  private updateInProgress(): boolean {
    if (!this.running()) return false;
    const next = expiresOnClock(this.updateTimer, this.d.clock, this.d.scheduler);
    if (next !== null && this.d.clock() >= next - UIP_HOLD_LENGTH) {
      this.cmos[RTC_REG_A] |= REG_A_UIP; // latched until the update timer runs
      return true;
    }
    return this.guestRtcNs() % NSEC_PER_SEC >= NSEC_PER_SEC - UIP_HOLD_LENGTH;
  }

  /** At most how many timer events the next `span` ns can bring (periodic, coalesced ≤ 8 per period, update ≤ 1 per s). */
  timerEventBound(span: Ns): number {
    const periodNs = periodicClockToNs(BigInt(Math.max(1, this.period)));
    return (
      timerEventBound(this.periodicTimer, periodNs, span) +
      timerEventBound(this.coalescedTimer, periodNs / 8n, span) +
      timerEventBound(this.updateTimer, NSEC_PER_SEC, span)
    );
  }

  // --- periodic interrupt ---

  private periodicClockTicks(): number {
    if (!(this.cmos[RTC_REG_B]! & REG_B_PIE)) return 0;
    return periodicPeriodToClock(this.cmos[RTC_REG_A]! & 0x0f);
  }

  private periodicTimerUpdate(currentTime: Ns, oldPeriod: number, periodChange: boolean): void {
    const period = this.periodicClockTicks();
    this.period = period;
    if (!period) {
      this.irqCoalesced = 0;
      this.periodicTimer.cancel();
      return;
    }
    const curClock = muldiv64(currentTime, RTC_CLOCK_RATE, NSEC_PER_SEC);
    let lostClock = 0n;
    if (oldPeriod && periodChange) {
      // count the 32 kHz cycles since the last interrupt of the old period
      const nextPeriodicClock = muldiv64(this.nextPeriodicTime, RTC_CLOCK_RATE, NSEC_PER_SEC);
      lostClock = curClock - (nextPeriodicClock - BigInt(oldPeriod));
      if (lostClock < 0n) lostClock = 0n;
    }
    if (this.policy === 'slew') {
      const old = this.irqCoalesced;
      lostClock += BigInt(old * oldPeriod);
      this.irqCoalesced = Number(lostClock / BigInt(period));
      lostClock %= BigInt(period);
      if (old !== this.irqCoalesced || oldPeriod !== period) this.coalescedTimerUpdate();
    } else if (lostClock > BigInt(period)) {
      lostClock = BigInt(period);
    }
    const nextIrqClock = curClock + BigInt(period) - lostClock;
    this.nextPeriodicTime = periodicClockToNs(nextIrqClock) + 1n;
    armAtClock(this.periodicTimer, this.d.clock, this.nextPeriodicTime);
  }

  private rtcPeriodicTimer(): void {
    this.periodicTimerUpdate(this.nextPeriodicTime, this.period, false);
    this.cmos[RTC_REG_C] |= REG_C_PF;
    if (this.cmos[RTC_REG_B]! & REG_B_PIE) {
      this.cmos[RTC_REG_C] |= REG_C_IRQF;
      this.stats.periodic++;
      if (this.policy === 'slew') {
        if (this.irqReinjectOnAckCount >= RTC_REINJECT_ON_ACK_COUNT) this.irqReinjectOnAckCount = 0;
        if (!this.d.irq.raise()) {
          this.irqCoalesced++;
          this.stats.coalesced++;
          this.coalescedTimerUpdate();
        }
      } else {
        this.d.irq.raise();
      }
    }
    this.traceEvent('rtc_periodic_timer', { coalesced: this.irqCoalesced });
  }

  private coalescedTimerUpdate(): void {
    if (this.irqCoalesced === 0) {
      this.coalescedTimer.cancel();
      return;
    }
    // divide each RTC interval into 2 - 8 smaller intervals; at 8192 Hz (4 cycles) QEMU's integer
    // division reaches 0 and re-arms at the same instant, which a virtual clock never leaves: at least 1 cycle
    const c = Math.min(this.irqCoalesced, 7) + 1;
    this.coalescedTimer.armIn(periodicClockToNs(BigInt(Math.max(1, Math.floor(this.period / c)))));
  }

  private rtcCoalescedTimer(): void {
    if (this.irqCoalesced !== 0) {
      this.cmos[RTC_REG_C] |= 0xc0;
      if (this.d.irq.raise()) {
        this.irqCoalesced--;
        this.stats.reinjected++;
      }
      this.traceEvent('rtc_coalesced_timer', { coalesced: this.irqCoalesced });
    }
    this.coalescedTimerUpdate();
  }

  // --- update-ended and alarm interrupts ---

  private checkUpdateTimer(): void {
    const c = this.cmos;
    if ((c[RTC_REG_A]! & 0x60) === 0x60) {
      // dividers in reset: no update cycles, no interrupts
      this.updateTimer.cancel();
      return;
    }
    const now = this.d.clock();
    const guestNsec = this.guestRtcNs() % NSEC_PER_SEC;
    let nextUpdate = now + NSEC_PER_SEC - guestNsec;
    const nextAlarmSec = this.getNextAlarm();
    this.nextAlarmTime = nextUpdate + BigInt(nextAlarmSec - 1) * NSEC_PER_SEC;
    if (!(c[RTC_REG_A]! & REG_A_UIP) && c[RTC_REG_C]! & REG_C_UF) {
      if (c[RTC_REG_B]! & REG_B_SET || c[RTC_REG_C]! & REG_C_AF) {
        this.updateTimer.cancel();
        return;
      }
      nextUpdate = this.nextAlarmTime; // UF already set: only the alarm can still change C
    }
    if (nextUpdate !== expiresOnClock(this.updateTimer, this.d.clock, this.d.scheduler))
      armAtClock(this.updateTimer, this.d.clock, nextUpdate);
  }

  /** Seconds from now to the next alarm match, honouring "don't care" (0xC0-0xFF) fields (get_next_alarm). */
  private getNextAlarm(): number {
    this.updateTime();
    const c = this.cmos;
    let alarmSec = this.fromBcd(c[RTC_SECONDS_ALARM]!);
    let alarmMin = this.fromBcd(c[RTC_MINUTES_ALARM]!);
    let alarmHour = this.fromBcd(c[RTC_HOURS_ALARM]!);
    alarmHour = alarmHour === -1 ? -1 : this.convertHour(alarmHour);
    const curSec = this.fromBcd(c[RTC_SECONDS]!);
    const curMin = this.fromBcd(c[RTC_MINUTES]!);
    const curHour = this.convertHour(this.fromBcd(c[RTC_HOURS]!));
    if (alarmHour === -1) {
      alarmHour = curHour;
      if (alarmMin === -1) {
        alarmMin = curMin;
        if (alarmSec === -1) alarmSec = curSec + 1;
        else if (curSec > alarmSec) alarmMin++;
      } else if (curMin === alarmMin) {
        if (alarmSec === -1) alarmSec = curSec + 1;
        else if (curSec > alarmSec) alarmHour++;
        if (alarmSec === 60) {
          alarmSec = 0;
          alarmHour++;
        }
      } else if (curMin > alarmMin) {
        alarmHour++;
      }
    } else if (curHour === alarmHour) {
      if (alarmMin === -1) {
        alarmMin = curMin;
        if (alarmSec === -1) alarmSec = curSec + 1;
        else if (curSec > alarmSec) alarmMin++;
        if (alarmSec === 60) {
          alarmSec = 0;
          alarmMin++;
        }
        alarmMin %= 60;
      } else if (curMin === alarmMin) {
        if (alarmSec === -1) alarmSec = curSec + 1;
        alarmSec %= 60;
      }
    }
    if (alarmMin === -1) alarmMin = 0;
    if (alarmSec === -1) alarmSec = 0;
    if (alarmSec === 60) {
      alarmSec = 0;
      alarmMin++;
    }
    if (alarmMin === 60) {
      alarmMin = 0;
      alarmHour++;
    }
    alarmHour %= 24;
    const sec = ((alarmHour - curHour) * 60 + alarmMin - curMin) * 60 + alarmSec - curSec;
    return sec <= 0 ? sec + 86400 : sec;
  }

  private rtcUpdateTimer(): void {
    let irqs = REG_C_UF;
    this.updateTime();
    this.cmos[RTC_REG_A] &= ~REG_A_UIP;
    this.stats.update++;
    if (this.d.clock() >= this.nextAlarmTime) {
      irqs |= REG_C_AF;
      this.stats.alarm++;
    }
    const newIrqs = irqs & ~this.cmos[RTC_REG_C]!;
    this.cmos[RTC_REG_C] |= irqs;
    if (newIrqs & this.cmos[RTC_REG_B]!) {
      this.cmos[RTC_REG_C] |= REG_C_IRQF;
      this.d.irq.raise();
    }
    this.traceEvent('rtc_update_timer', { flags: this.cmos[RTC_REG_C]! });
    this.checkUpdateTimer();
  }

  private traceEvent(name: string, args: Record<string, number>): void {
    if (this.d.trace.on) this.d.trace.instant(this.d.scheduler.now, this.d.name, name, [], args);
  }

  // --- snapshot ---

  saveState(): CmosRtcState {
    // rtc_pre_save: bring the time registers up to date first
    if (this.running()) this.updateTime();
    const exp = (t: Timer) => {
      const e = expiresOnClock(t, this.d.clock, this.d.scheduler);
      return e === null ? null : str(e);
    };
    return {
      version: 1,
      cmos: Array.from(this.cmos),
      cmosIndex: this.cmosIndex,
      baseRtc: str(this.baseRtc),
      lastUpdate: str(this.lastUpdate),
      offset: str(this.offset),
      period: this.period,
      nextPeriodicTime: str(this.nextPeriodicTime),
      nextAlarmTime: str(this.nextAlarmTime),
      irqCoalesced: this.irqCoalesced,
      irqReinjectOnAckCount: this.irqReinjectOnAckCount,
      periodicTimer: exp(this.periodicTimer),
      updateTimer: exp(this.updateTimer),
      coalescedTimer: exp(this.coalescedTimer),
    };
  }

  restore(s: CmosRtcState): void {
    if (s.version !== 1) throw new InputError(`unsupported RTC state version ${String(s.version)}`);
    if (s.cmos.length !== 128) throw new InputError('RTC state must hold 128 CMOS bytes');
    this.cmos.set(s.cmos.map((b) => b & 0xff));
    this.cmosIndex = s.cmosIndex & 0x7f;
    this.baseRtc = big(s.baseRtc);
    this.lastUpdate = big(s.lastUpdate);
    this.offset = big(s.offset);
    this.period = s.period;
    this.nextPeriodicTime = big(s.nextPeriodicTime);
    this.nextAlarmTime = big(s.nextAlarmTime);
    this.irqCoalesced = s.irqCoalesced;
    this.irqReinjectOnAckCount = s.irqReinjectOnAckCount;
    const rearm = (t: Timer, at: string | null) => (at === null ? t.cancel() : armAtClock(t, this.d.clock, big(at)));
    rearm(this.periodicTimer, s.periodicTimer);
    rearm(this.updateTimer, s.updateTimer);
    rearm(this.coalescedTimer, s.coalescedTimer);
  }
}
