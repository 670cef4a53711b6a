// The timekeeper's accumulation in one step (accumulateAtOnce) against logarithmic_accumulation's loop of
// chunks (Timekeeper.chunked): two timekeepers on the same counter, driven by the same seeded mix of
// updates (a tick's worth to an hour's), NTP adjustments and steps, must hold the same integers throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/core/prng.ts';
import { ADJ_FREQUENCY, ADJ_OFFSET, ADJ_SETOFFSET, ADJ_STATUS, ADJ_TICK, STA_FLL, STA_PLL } from '../../src/guest/ntp.ts';
import { standaloneTimekeeper, type Timekeeper } from '../../src/guest/timekeeper.ts';

const state = (tk: Timekeeper): string =>
  JSON.stringify(
    {
      mono: tk.mono,
      raw: tk.raw,
      xtimeSec: tk.xtimeSec,
      rawSec: tk.rawSec,
      w2m: tk.wallToMonotonic,
      xtimeInterval: tk.xtimeInterval,
      ntpError: tk.ntpError,
      ntpTick: tk.ntpTick,
      ntpErrMult: tk.ntpErrMult,
      skip: tk.skipSecondOverflow,
      ntp: tk.ntp,
      advances: tk.advances,
      clocks: (['realtime', 'monotonic', 'monotonic_raw'] as const).map((id) => tk.get(id)),
    },
    (_k, v) => (typeof v === 'bigint' ? v.toString() : v),
  );

const COUNTERS = [
  { name: 'tsc', freq: 2_596_136, scale: 1000, hz: 250 },
  { name: 'tsc-3ghz', freq: 3_000_000, scale: 1000, hz: 1000 },
  { name: 'kvm-clock', freq: 1_000_000_000, scale: 1, hz: 100 },
  { name: 'hpet', freq: 14_318_180, scale: 1, hz: 250, mask: 0xffff_ffffn },
  { name: 'acpi_pm', freq: 3_579_545, scale: 1, hz: 250, mask: 0xff_ffffn },
];

for (const c of COUNTERS) {
  test(`one-step accumulation holds the same integers as the chunk loop: ${c.name}, HZ ${c.hz}`, () => {
    const prng = new Prng(7);
    let cycles = 123_456_789n;
    const mask = c.mask ?? 0xffff_ffff_ffff_ffffn;
    const read = () => cycles & mask;
    const opts = {
      name: c.name,
      read,
      freq: c.freq,
      scale: c.scale,
      hz: c.hz,
      wallNs: 1_767_225_600_123_456_789n,
      ...(c.mask ? { mask: c.mask } : {}),
    };
    const once = standaloneTimekeeper(opts);
    const chunks = standaloneTimekeeper(opts);
    chunks.chunked = true;
    const hzCycles = BigInt(Math.round((c.freq * c.scale) / c.hz));
    const perSec = BigInt(c.freq * c.scale);
    // a counter that wraps (hpet, acpi_pm) can only be left alone for less than its period
    const longest = mask < perSec * 7200n ? mask / 2n : perSec * 3600n;
    for (let i = 0; i < 3000; i++) {
      const r = prng.float();
      if (r < 0.5)
        cycles += perSec + BigInt(prng.int(Number(hzCycles))); // ~1 s: the fleet's update
      else if (r < 0.8)
        cycles += BigInt(prng.int(Number(hzCycles) * 3)); // below a tick … a few ticks
      else if (r < 0.85)
        cycles += BigInt(Math.floor(prng.float() * Number(longest))); // NOHZ idle, a pause
      else if (r < 0.9) {
        const txc = {
          modes: ADJ_OFFSET | ADJ_STATUS,
          status: prng.float() < 0.7 ? STA_PLL : STA_PLL | STA_FLL,
          offset: prng.int(1_000_001) - 500_000,
        };
        once.adjtimex(txc);
        chunks.adjtimex(txc);
      } else if (r < 0.93) {
        const txc = { modes: ADJ_FREQUENCY, freq: (prng.int(1001) - 500) * 65536 };
        once.adjtimex(txc);
        chunks.adjtimex(txc);
      } else if (r < 0.94) {
        const txc = { modes: ADJ_TICK, tick: 10_000 + prng.int(201) - 100 };
        once.adjtimex(txc);
        chunks.adjtimex(txc);
      } else if (r < 0.95) {
        const txc = { modes: ADJ_SETOFFSET, setOffsetNs: BigInt(prng.int(2_000_000_001) - 1_000_000_000) };
        once.adjtimex(txc);
        chunks.adjtimex(txc);
      }
      once.advance();
      chunks.advance();
      assert.equal(state(once), state(chunks), `step ${i}`);
    }
    assert.ok(once.advances > 1500, `${once.advances} advances`);
  });
}
