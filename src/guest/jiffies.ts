// The jiffies clocksources (kernel/time/jiffies.c): "jiffies" with mult = TICK_NSEC << JIFFIES_SHIFT,
// and "refined-jiffies", whose nanoseconds per tick come from the PIT's real rate (CLOCK_TICK_RATE)
// rather than the nominal HZ. Neither is continuous, so neither is ever valid for high resolution mode.
import { clocksourceMask, u32 } from '../core/index.ts';
import { NSEC_PER_SEC } from '../core/index.ts';
import { Clocksource } from './clocksource.ts';

/** JIFFIES_SHIFT (kernel/time/jiffies.c, 8 on every HZ since 6.x). */
export const JIFFIES_SHIFT = 8;
/** CLOCK_TICK_RATE / PIT_TICK_RATE on x86: 1.193182 MHz. */
export const PIT_TICK_RATE = 1_193_182;

/** TICK_NSEC (include/vdso/jiffies.h, 6.x): (NSEC_PER_SEC + HZ/2) / HZ. */
export function tickNsec(hz: number): bigint {
  return (NSEC_PER_SEC + BigInt(hz >> 1)) / BigInt(hz);
}

export function jiffiesClocksource(hz: number, readJiffies: () => bigint): Clocksource {
  return new Clocksource({
    name: 'jiffies',
    rating: 1,
    mask: clocksourceMask(32),
    flags: 0,
    mult: Number(tickNsec(hz) << BigInt(JIFFIES_SHIFT)),
    shift: JIFFIES_SHIFT,
    read: readJiffies,
  });
}

/** register_refined_jiffies(cycles_per_second): nsec_per_tick from the PIT rate, rating 2. */
export function refinedJiffiesClocksource(hz: number, cyclesPerSecond: number, readJiffies: () => bigint): Clocksource {
  const HZ = BigInt(hz);
  const cps = BigInt(cyclesPerSecond);
  const cyclesPerTick = (cps + HZ / 2n) / HZ;
  let shiftHz = cps << 8n;
  shiftHz += cyclesPerTick / 2n;
  shiftHz /= cyclesPerTick;
  let nsecPerTick = NSEC_PER_SEC << 8n;
  nsecPerTick += u32(shiftHz) / 2n;
  nsecPerTick /= u32(shiftHz);
  return new Clocksource({
    name: 'refined-jiffies',
    rating: 2,
    mask: clocksourceMask(32),
    flags: 0,
    mult: Number(u32(u32(nsecPerTick) << BigInt(JIFFIES_SHIFT))),
    shift: JIFFIES_SHIFT,
    read: readJiffies,
  });
}
