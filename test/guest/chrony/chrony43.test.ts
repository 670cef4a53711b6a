// chrony 4.3's rules that decide what chronyd does after a pause (the lab's guest runs Debian 12's 4.3):
// sub-second polls only on a LAN-like path, maxjitter, the runs test extended by pruned samples,
// MAX_SKEW, and timeouts that stand still while the VM is stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Chronyd, findBestRegression, SourceStats } from '../../../src/guest/chrony/index.ts';
import type { NtpServerLink } from '../../../src/guest/chrony/index.ts';
import { Engine } from '../../../src/core/engine.ts';
import { standaloneTimekeeper } from '../../../src/guest/timekeeper.ts';
import { EPOCH, fixedServer, guestClock } from './helpers.ts';

const at = (s: number) => BigInt(Math.round(s * 1e9));

function chronyd(g: ReturnType<typeof guestClock>, link: NtpServerLink, o: { minpoll?: number; maxpoll?: number } = {}) {
  const c = new Chronyd({
    scheduler: g.engine,
    adjtimex: g.adjtimex,
    readRaw: g.readRaw,
    servers: [link],
    iburst: true,
    minpoll: o.minpoll ?? -1,
    maxpoll: o.maxpoll ?? -1,
    makestep: { threshold: 0.1, limit: -1 },
  });
  c.start();
  return c;
}

test('minpoll -1: 0.5 s polls while the path is LAN-like (delay ≤ 10 ms), 1 s above (ntp_core.c MIN_NONLAN_POLL)', () => {
  for (const [oneWayNs, poll] of [
    [1_000_000n, -1],
    [6_000_000n, 0],
  ] as const) {
    const g = guestClock();
    const c = chronyd(g, fixedServer(g.engine, 'host', oneWayNs));
    g.engine.run(at(20));
    const src = c.sources[0]!;
    assert.equal(src.localPoll, poll, `one way ${oneWayNs} ns`);
    const tx = src.transmits.slice(-2);
    // client mode: the next request a whole poll after the reply (one round trip after the request)
    assert.equal(tx[1]! - tx[0]!, at(2 ** poll) + 2n * oneWayNs);
  }
});

test('a source whose regression sd is above maxjitter (1 s) is not selected: no clock update (sources.c SRC_JITTERY)', () => {
  const g = guestClock();
  let n = 0;
  // a server whose time jumps ±2 s from reply to reply
  const link: NtpServerLink = {
    name: 'jumpy',
    exchange(reply) {
      const sign = n++ % 2 === 0 ? 1n : -1n;
      g.engine.after(1_000_000n, () => {
        const t2 = EPOCH + g.engine.now + sign * 2_000_000_000n;
        g.engine.after(1_000_000n, () =>
          reply({ receiveNs: t2, transmitNs: t2, stratum: 1, rootDelay: 0, rootDispersion: 0, precision: -23, refId: 'J' }),
        );
      });
    },
  };
  const c = chronyd(g, link, { minpoll: 0, maxpoll: 0 });
  g.engine.run(at(10));
  assert.ok(c.sources[0]!.stats.stdDev > 1, `sd ${c.sources[0]!.stats.stdDev}`);
  assert.equal(c.selected, null);
  assert.equal(c.reference.updates, 0);
});

test('the runs test also counts residuals of samples pruned before (regress.c, m "runs samples")', () => {
  // x −15…0; the first 8 are earlier samples kept only for the runs test
  const y = [-4, 0, -1, 4, -2, 4, 2, -5, 4, 3, -1, 4, 4, 1, -2, -4];
  const x = y.map((_, i) => i - 15);
  const w = Array(8).fill(1);
  assert.equal(findBestRegression(x.slice(8), y.slice(8), w, 1)!.start, 0);
  assert.equal(findBestRegression(x, y, w, 1, 8)!.start, 4);
});

test('skew is clamped at MAX_SKEW 100 (chrony 4.3 sourcestats.c), not 1', () => {
  const st = new SourceStats(2 ** -23);
  const sample = (t: number, offset: number) => ({
    time: at(t),
    offset,
    peerDelay: 1e-3,
    peerDispersion: 1e-6,
    rootDelay: 1e-3,
    rootDispersion: 1e-6,
  });
  for (const [t, o] of [
    [0, 0],
    [0.5, 3],
    [1, 0],
  ] as const)
    st.accumulate(sample(t, o));
  st.doNewRegression();
  assert.equal(st.skew, 100);
});

/** A guest clock whose counter stands still from `stop` to `resume` (kvm-clock or TCG's TSC over a QEMU pause). */
function frozenClock(stop: bigint, resume: bigint) {
  const engine = new Engine();
  const counter = () => (engine.now <= stop ? engine.now : engine.now < resume ? stop : engine.now - (resume - stop));
  const tk = standaloneTimekeeper({ name: 'tsc', read: counter, freq: 1_000_000_000, wallNs: EPOCH });
  const tick = engine.timer(() => {
    tk.advance();
    tick.armIn(50_000_000n);
  });
  tick.armIn(50_000_000n);
  return {
    engine,
    tk,
    readRaw: () => tk.get('realtime'),
    adjtimex: tk.adjtimex.bind(tk),
    offset: () => tk.get('realtime') - (EPOCH + engine.now),
  };
}

test("a pause: the request after the resume goes out what chronyd's clock had left of the interval (sched.c timeouts on the local clock)", () => {
  const stopAt = at(10);
  for (const frozen of [true, false]) {
    const g = frozen ? frozenClock(stopAt, stopAt + at(3)) : guestClock();
    const c = chronyd(g, fixedServer(g.engine, 'host', 1_000_000n));
    g.engine.run(stopAt);
    const src = c.sources[0]!;
    const lastTx = src.transmits.at(-1)!;
    assert.ok(lastTx + 2_000_000n <= stopAt, 'its reply has come');
    const due = lastTx + 2_000_000n + at(0.5); // the pending request: a poll after that reply
    c.stop();
    g.engine.run(stopAt + at(3));
    c.resume();
    g.engine.run(stopAt + at(3.5));
    // a clock that stood still: what was left; one that ran on through the pause: at once
    assert.equal(
      src.transmits.find((t) => t > stopAt),
      frozen ? due + at(3) : stopAt + at(3),
      `frozen ${frozen}`,
    );
  }
});
