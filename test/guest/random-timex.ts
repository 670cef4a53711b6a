// One seeded adjtimex call, as ntpd, chronyd and adjtime() send them and past every clamp: the timekeeper
// tests drive two implementations with the same sequence.
import type { Prng } from '../../src/core/prng.ts';
import {
  ADJ_ESTERROR,
  ADJ_FREQUENCY,
  ADJ_MAXERROR,
  ADJ_MICRO,
  ADJ_NANO,
  ADJ_OFFSET,
  ADJ_OFFSET_SINGLESHOT,
  ADJ_SETOFFSET,
  ADJ_STATUS,
  ADJ_TICK,
  ADJ_TIMECONST,
  STA_FLL,
  STA_FREQHOLD,
  STA_PLL,
  type Timex,
} from '../../src/guest/ntp.ts';

/** One seeded adjtimex call: what ntpd, chronyd and adjtime() send, and values past every clamp. */
export function randomTimex(prng: Prng): Timex {
  const r = prng.float();
  if (r < 0.3) {
    // PLL (or FLL) offset in µs or ns, now and then far past MAXPHASE
    const big = prng.float() < 0.1;
    const offset = big ? prng.int(2_000_000_001) - 1_000_000_000 : prng.int(1_000_001) - 500_000;
    const status = prng.float() < 0.6 ? STA_PLL : prng.float() < 0.8 ? STA_PLL | STA_FLL : STA_PLL | STA_FREQHOLD;
    const units = prng.float() < 0.5 ? ADJ_NANO : ADJ_MICRO;
    return { modes: ADJ_OFFSET | ADJ_STATUS | units, status, offset };
  }
  if (r < 0.4) return { modes: ADJ_OFFSET, offset: prng.int(200_001) - 100_000 };
  if (r < 0.5) {
    // ±600 ppm: past the ±500 ppm clamp now and then
    return { modes: ADJ_FREQUENCY, freq: (prng.int(1201) - 600) * 65536 + prng.int(65536) };
  }
  if (r < 0.55) return { modes: ADJ_TIMECONST, constant: prng.int(13) - 1 };
  if (r < 0.6) return { modes: ADJ_TICK, tick: 9000 + prng.int(2001) };
  if (r < 0.7) {
    // adjtime(): a slew of up to ±5 s (500 µs per second), or a small one that ends in one second
    const offset = prng.float() < 0.5 ? prng.int(10_000_001) - 5_000_000 : prng.int(1001) - 500;
    return { modes: ADJ_OFFSET_SINGLESHOT, offset };
  }
  if (r < 0.75) return { modes: ADJ_MAXERROR | ADJ_ESTERROR, maxerror: prng.int(20_000_000), esterror: prng.int(20_000_000) };
  if (r < 0.8) return { modes: ADJ_STATUS, status: prng.float() < 0.5 ? 0 : STA_PLL };
  // ADJ_SETOFFSET: a step of up to ±1000 s
  return { modes: ADJ_SETOFFSET, setOffsetNs: BigInt(prng.int(2_000_000_001) - 1_000_000_000) * BigInt(1 + prng.int(1000)) };
}
