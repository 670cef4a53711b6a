// The guest's wall clock at boot: the persistent clock timekeeping_init() reads (kvmclock's wall-clock
// record, else the CMOS RTC), and rtc_hctosys(), which sets the system time from the CMOS RTC again when
// the rtc_cmos driver registers, with the probe lines rtc_cmos prints around it.
import { NSEC_PER_SEC, type Ns } from '../core/index.ts';
import type { KvmclockSetup } from './kvmclock.ts';
import type { GuestPlatform } from './platform.ts';
import { rtcCmosProbeLines } from './rtc-cmos.ts';

export type WallClockSource = 'kvmclock' | 'cmos' | 'none';

/**
 * read_persistent_wall_and_boot_offset(): with kvmclock, kvm_get_wallclock (the wall-clock MSR record, ns);
 * else mach_get_cmos_time → mc146818_get_time, which waits out UIP and gives whole seconds only.
 */
export function readPersistentClock(p: GuestPlatform, kvmclock: KvmclockSetup | null): { wall: Ns; source: WallClockSource } {
  if (kvmclock) return { wall: kvmclock.wallclock(), source: 'kvmclock' };
  if (p.devices.rtc && p.readCmos) return { wall: p.readCmos().seconds * NSEC_PER_SEC, source: 'cmos' };
  return { wall: 0n, source: 'none' };
}

export interface HctosysResult {
  /** The time set: the RTC's whole second + 0.5 s. */
  ns: Ns;
  /** The lines rtc_cmos and the RTC class print, in order. */
  lines: string[];
}

/**
 * rtc_hctosys() on the rtc_cmos device (CONFIG_RTC_HCTOSYS): the RTC's whole second, plus NSEC_PER_SEC >> 1
 * (drivers/rtc/class.c: the RTC only says which second it is, "the best guess is to add 0.5s"). Returns
 * null when the machine has no CMOS RTC or the kernel does not set the clock from it.
 */
export function rtcHctosys(p: GuestPlatform, hctosys: boolean, acpi: boolean, hpetEnabled: boolean): HctosysResult | null {
  if (!p.devices.rtc || !hctosys || !p.readCmos) return null;
  const sec = p.readCmos().seconds;
  const iso = new Date(Number(sec) * 1000).toISOString().slice(0, 19);
  const ns = sec * NSEC_PER_SEC + (NSEC_PER_SEC >> 1n);
  const setting = `setting system clock to ${iso} UTC (${sec})`;
  const cmos = p.devices.rtcCmos;
  if (cmos) return { ns, lines: rtcCmosProbeLines(cmos, acpi, hpetEnabled, setting) };
  const name = acpi && p.devices.rtcPnpName ? p.devices.rtcPnpName : 'rtc_cmos';
  return { ns, lines: [`rtc_cmos ${name}: ${setting}`] };
}
