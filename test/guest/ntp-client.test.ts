// The NTP client's adjtimex calls (src/guest/ntp-client.ts): each poll steps past the threshold
// (either sign) or hands the offset to the PLL with maxerror = esterror = (delay / 2) / 1000 µs, as ntpd
// does; the client fills one Timex in place (adjtimex copies it), so each call is checked as it arrives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { Prng } from '../../src/core/prng.ts';
import { NtpKernelClient, type NtpMeasurement } from '../../src/guest/ntp-client.ts';
import { ADJ_ESTERROR, ADJ_MAXERROR, ADJ_NANO, ADJ_OFFSET, ADJ_SETOFFSET, type Timex, type TimexResult } from '../../src/guest/ntp.ts';

const json = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));

test('each NTP poll: a step past ±threshold, else ADJ_OFFSET with maxerror = esterror = (delay / 2) / 1000 µs', () => {
  const e = new Engine();
  const prng = new Prng(15);
  const threshold = 128_000_000n;
  const expected: Timex[] = [];
  const got: string[] = [];
  let last: NtpMeasurement | null = null;
  const client = new NtpKernelClient({
    scheduler: e,
    adjtimex: (txc) => {
      got.push(json(txc));
      return {} as TimexResult;
    },
    measure: () => {
      if (prng.float() < 0.1) return null;
      // offsets past the threshold either way now and then, delays that repeat, odd and (clock-skewed) negative
      const big = prng.float() < 0.2;
      const offsetNs = BigInt(prng.int(big ? 400_000_001 : 2_000_001) - (big ? 200_000_000 : 1_000_000));
      const edge = prng.float();
      const off = edge < 0.05 ? threshold : edge < 0.1 ? -threshold : edge < 0.15 ? threshold + 1n : offsetNs;
      const delayNs = prng.float() < 0.5 && last ? last.delayNs : BigInt(prng.int(4_000_001) - 100_000);
      last = { offsetNs: off, delayNs };
      if (off > threshold || -off > threshold) expected.push({ modes: ADJ_SETOFFSET | ADJ_NANO, setOffsetNs: off });
      else {
        const err = delayNs / 2n;
        expected.push({
          modes: ADJ_OFFSET | ADJ_NANO | ADJ_MAXERROR | ADJ_ESTERROR,
          offset: off,
          maxerror: err / 1000n,
          esterror: err / 1000n,
        });
      }
      return last;
    },
    pollExp: 4,
  });
  client.start();
  assert.match(got.shift()!, /"constant":4/); // start()'s ADJ_STATUS | ADJ_TIMECONST call
  e.run(16n * 1_000_000_000n * 400n);
  assert.ok(client.polls > 390, `${client.polls} polls`);
  assert.ok(client.steps > 10, `${client.steps} steps`);
  assert.equal(got.length, expected.length);
  for (let i = 0; i < got.length; i++) assert.equal(got[i], json(expected[i]), `call ${i}`);
});
