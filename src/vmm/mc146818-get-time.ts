// How Linux reads the CMOS clock: mc146818_get_time() through mc146818_avoid_UIP()
// (drivers/rtc/rtc-mc146818-lib.c), as mach_get_cmos_time (arch/x86/kernel/rtc.c, the persistent
// clock at boot) and rtc-cmos's cmos_read_time (rtc_hctosys) call it — as port accesses on the
// VMM's RTC, with time moving by the cost of each access and by each udelay().
import type { Ns } from '../core/index.ts';

const RTC_PORT_INDEX = 0x70;
const RTC_PORT_DATA = 0x71;
const RTC_SECONDS = 0x00;
const RTC_MINUTES = 0x02;
const RTC_HOURS = 0x04;
const RTC_DAY_OF_MONTH = 0x07;
const RTC_MONTH = 0x08;
const RTC_YEAR = 0x09;
const RTC_FREQ_SELECT = 0x0a; // register A
const RTC_CONTROL = 0x0b; // register B
const RTC_UIP = 0x80;
const RTC_DM_BINARY = 0x04;

/** UIP_RECHECK_DELAY: µs between looks at UIP. */
export const UIP_RECHECK_DELAY_US = 100;
/** UIP_RECHECK_DELAY_MS: rechecks per ms (the loop bound is `i / this < timeout`). */
const UIP_RECHECK_DELAY_MS = 1000 / UIP_RECHECK_DELAY_US;
/**
 * The timeout (ms) mach_get_cmos_time and cmos_read_time pass: 1000 since "rtc: Extend timeout for
 * waiting for UIP to clear to 1s" (v6.7, backported to 6.1.y); from v5.19 ("rtc-mc146818-lib: reduce
 * RTC_UIP polling period") until then the loop was 100 rechecks of 100 µs = 10 ms, and before that 10
 * rechecks of mdelay(1). UIP lasts 244 µs, so with a working RTC the 100-µs versions answer alike.
 */
export const MC146818_GET_TIME_TIMEOUT_MS = 1000;

/** The guest's side of the CMOS ports: each access is a trapped port I/O that takes time. */
export interface CmosPortIo {
  outb(port: number, value: number): void;
  inb(port: number): number;
  /** Time moves on by `ns` (a udelay, or the cost of an access). */
  advance(ns: Ns): void;
  /** Guest-visible cost of one trapped port access. */
  accessNs: Ns;
}

export interface Mc146818Time {
  /** rtc_tm_to_time64 of what was read; 0 when the RTC never left UIP within the timeout. */
  seconds: bigint;
  ok: boolean;
  /** Time spent in udelay() waiting for UIP to clear. */
  uipWaitNs: Ns;
  /** Time from the first access to the last (waits plus every access). */
  elapsedNs: Ns;
  /** Passes through the loop (1 when UIP was clear at once). */
  loops: number;
}

export interface Mc146818Options {
  timeoutMs?: number;
  /** CMOS index of the century byte when the ACPI FADT names one (QEMU: 0x32), else null. */
  centuryIndex?: number | null;
}

const bcd2bin = (v: number): number => (v & 0x0f) + (v >> 4) * 10;

/** mc146818_get_time(): whole seconds since the epoch as the kernel computes them from the RTC. */
export function mc146818GetTime(io: CmosPortIo, opts: Mc146818Options = {}): Mc146818Time {
  const timeout = opts.timeoutMs ?? MC146818_GET_TIME_TIMEOUT_MS;
  const centuryIndex = opts.centuryIndex ?? null;
  let elapsed = 0n;
  let waited = 0n;
  const step = (ns: Ns) => {
    io.advance(ns);
    elapsed += ns;
  };
  // CMOS_READ: outb(index, 0x70); inb(0x71) — two exits to the VMM
  const cmosRead = (index: number): number => {
    io.outb(RTC_PORT_INDEX, index);
    step(io.accessNs);
    const v = io.inb(RTC_PORT_DATA);
    step(io.accessNs);
    return v;
  };
  const udelay = () => {
    const ns = BigInt(UIP_RECHECK_DELAY_US) * 1000n;
    step(ns);
    waited += ns;
  };
  for (let i = 0; Math.trunc(i / UIP_RECHECK_DELAY_MS) < timeout; i++) {
    // the seconds are read before UIP so an NMI after the check cannot hide an update cycle
    const seconds = cmosRead(RTC_SECONDS);
    if (cmosRead(RTC_FREQ_SELECT) & RTC_UIP) {
      udelay();
      continue;
    }
    if (seconds !== cmosRead(RTC_SECONDS)) continue;
    // mc146818_get_time_callback
    const min = cmosRead(RTC_MINUTES);
    const hour = cmosRead(RTC_HOURS);
    const mday = cmosRead(RTC_DAY_OF_MONTH);
    const mon = cmosRead(RTC_MONTH);
    const year = cmosRead(RTC_YEAR);
    const century = centuryIndex !== null ? cmosRead(centuryIndex) : 0;
    const ctrl = cmosRead(RTC_CONTROL);
    // UIP again: if set now the values above may be garbage
    if (cmosRead(RTC_FREQ_SELECT) & RTC_UIP) {
      udelay();
      continue;
    }
    if (seconds !== cmosRead(RTC_SECONDS)) continue;
    const tm = toTm({ sec: seconds, min, hour, mday, mon, year, century }, (ctrl & RTC_DM_BINARY) === 0);
    return { seconds: tmToTime64(tm), ok: true, uipWaitNs: waited, elapsedNs: elapsed, loops: i + 1 };
  }
  // "Unable to read current time from RTC": the callers use 0
  return { seconds: 0n, ok: false, uipWaitNs: waited, elapsedNs: elapsed, loops: timeout * UIP_RECHECK_DELAY_MS };
}

interface RawTm {
  sec: number;
  min: number;
  hour: number;
  mday: number;
  mon: number;
  year: number;
  century: number;
}

/** The tail of mc146818_get_time: BCD unless DM_BINARY, a century above 19 counts, years ≤ 69 are 20xx. */
function toTm(r: RawTm, bcd: boolean): RawTm {
  const t = bcd
    ? {
        sec: bcd2bin(r.sec),
        min: bcd2bin(r.min),
        hour: bcd2bin(r.hour),
        mday: bcd2bin(r.mday),
        mon: bcd2bin(r.mon),
        year: bcd2bin(r.year),
        century: bcd2bin(r.century),
      }
    : { ...r };
  // tm_year counts from 1900
  let tmYear = t.year;
  if (t.century > 19) tmYear += (t.century - 19) * 100;
  if (tmYear <= 69) tmYear += 100;
  return { ...t, year: tmYear + 1900, mon: t.mon - 1 };
}

/** rtc_tm_to_time64 (mktime64 of the broken-down UTC time). */
function tmToTime64(t: RawTm): bigint {
  return BigInt(Date.UTC(t.year, t.mon, t.mday, t.hour, t.min, t.sec)) / 1000n;
}
