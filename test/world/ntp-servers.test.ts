// NTP servers and paths: RFC 5905 offset/delay, delay + jitter × Exp(1) each way, asymmetry, loss, seeding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { Prng } from '../../src/core/prng.ts';
import { InputError } from '../../src/core/errors.ts';
import { checkPath, NtpServers, ntpOffsetDelay } from '../../src/world/ntp-servers.ts';

const E = 1_767_225_600_000_000_000n;

test('RFC 5905 offset and delay from the four timestamps', () => {
  // client 5 ms slow; 1 ms out, 2 ms back, server holds it 0.1 ms
  const t1 = E;
  const t2 = E + 5_000_000n + 1_000_000n;
  const t3 = t2 + 100_000n;
  const t4 = t1 + 3_100_000n;
  assert.deepEqual(ntpOffsetDelay(t1, t2, t3, t4), { offsetNs: 4_500_000n, delayNs: 3_000_000n });
});

function exchange(path: { delayNs: bigint; jitterNs: bigint; asymmetryNs: bigint; loss: number }, n: number, seed = 1) {
  const e = new Engine();
  const servers = new NtpServers(e, new Prng(seed), [{ name: 's1', stratum: 1, clock: (t) => E + t, path }]);
  const link = servers.link('s1', 'vm0');
  const out: { offset: bigint; delay: bigint }[] = [];
  for (let i = 0; i < n; i++) {
    e.at(BigInt(i) * 1_000_000_000n, () => {
      const t1 = E + e.now; // a perfect client clock
      link.exchange((r) => {
        const m = ntpOffsetDelay(t1, r.receiveNs, r.transmitNs, E + e.now);
        out.push({ offset: m.offsetNs, delay: m.delayNs });
      });
    });
  }
  e.run(BigInt(n + 1) * 1_000_000_000n);
  return { out, counts: servers.counts };
}

test('without jitter the delay is exactly 2 × delay and a perfect clock measures offset 0', () => {
  const { out } = exchange({ delayNs: 1_000_000n, jitterNs: 0n, asymmetryNs: 0n, loss: 0 }, 5);
  assert.deepEqual(out, Array(5).fill({ offset: 0n, delay: 2_000_000n }));
});

test('asymmetry a shifts the measured offset by −a/2 (request slower than reply)', () => {
  const { out } = exchange({ delayNs: 1_000_000n, jitterNs: 0n, asymmetryNs: 400_000n, loss: 0 }, 3);
  assert.deepEqual(out[0], { offset: 200_000n, delay: 2_000_000n });
});

test('jitter is exponential: the mean extra round trip is 2 × jitter, and the minimum approaches 2 × delay', () => {
  const { out } = exchange({ delayNs: 1_000_000n, jitterNs: 100_000n, asymmetryNs: 0n, loss: 0 }, 4000);
  const extra = out.map((o) => Number(o.delay - 2_000_000n));
  const mean = extra.reduce((a, b) => a + b, 0) / extra.length;
  // sum of two Exp(100 µs): mean 200 µs, sd 141 µs; over 4000 samples the mean's sd is 2.2 µs: ±10 µs is 4.5 sd
  assert.ok(Math.abs(mean - 200_000) < 10_000, `mean extra ${mean}`);
  assert.ok(Math.min(...extra) >= 0 && Math.min(...extra) < 5_000);
});

test('loss drops packets in either direction at the given rate; same seed, same losses', () => {
  const a = exchange({ delayNs: 1_000_000n, jitterNs: 10_000n, asymmetryNs: 0n, loss: 0.1 }, 2000, 7);
  const b = exchange({ delayNs: 1_000_000n, jitterNs: 10_000n, asymmetryNs: 0n, loss: 0.1 }, 2000, 7);
  assert.deepEqual(a.out, b.out);
  // each exchange survives with 0.9² = 0.81; binomial sd over 2000 = 17.5: ±90 is ~5 sd
  assert.ok(Math.abs(a.counts.replies - 1620) < 90, `replies ${a.counts.replies}`);
  assert.equal(a.counts.requests, 2000);
});

test('bad paths are refused with the scenario path named', () => {
  assert.throws(
    () => checkPath({ delayNs: -1n, jitterNs: 0n, asymmetryNs: 0n, loss: 0 }, 'ntp_servers[0].path'),
    (e: unknown) => e instanceof InputError && e.path === 'ntp_servers[0].path.delay',
  );
  assert.throws(() => checkPath({ delayNs: 1n, jitterNs: 0n, asymmetryNs: 3n, loss: 0 }, 'p'), /asymmetry/);
  assert.throws(() => checkPath({ delayNs: 1n, jitterNs: 0n, asymmetryNs: 0n, loss: 1 }, 'p'), /loss/);
});
