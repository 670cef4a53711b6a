// A guest clock for chronyd tests: Linux's timekeeper on a 1 GHz counter running `ppm` fast, accumulated
// every `tickNs` like update_wall_time, and an NTP server at true time behind fixed one-way delays.
import { Engine } from '../../../src/core/engine.ts';
import { NSEC_PER_SEC, type Ns } from '../../../src/core/time.ts';
import { standaloneTimekeeper } from '../../../src/guest/timekeeper.ts';
import type { NtpServerLink } from '../../../src/guest/chrony/index.ts';

export const EPOCH = 1_767_225_600n * NSEC_PER_SEC;

export function guestClock(o: { ppm?: number; offsetNs?: Ns; tickNs?: Ns } = {}) {
  const engine = new Engine();
  const ppb = BigInt(Math.round((o.ppm ?? 0) * 1000));
  const tk = standaloneTimekeeper({
    name: 'tsc',
    read: () => engine.now + (engine.now * ppb) / 1_000_000_000n,
    freq: 1_000_000_000,
    wallNs: EPOCH + (o.offsetNs ?? 0n),
  });
  const tick = engine.timer(() => {
    tk.advance();
    tick.armIn(o.tickNs ?? 50_000_000n);
  });
  tick.armIn(o.tickNs ?? 50_000_000n);
  return {
    engine,
    tk,
    readRaw: () => tk.get('realtime'),
    adjtimex: tk.adjtimex.bind(tk),
    /** Guest REALTIME minus true time, ns. */
    offset: () => tk.get('realtime') - (EPOCH + engine.now),
  };
}

export function fixedServer(
  engine: Engine,
  name = 'ntp1',
  oneWayNs: Ns = 1_000_000n,
  lose: (n: number) => boolean = () => false,
): NtpServerLink & { requests: number } {
  const link = {
    name,
    requests: 0,
    exchange(reply: Parameters<NtpServerLink['exchange']>[0]) {
      const n = link.requests++;
      if (lose(n)) return;
      engine.after(oneWayNs, () => {
        const t2 = EPOCH + engine.now;
        engine.after(oneWayNs, () =>
          reply({ receiveNs: t2, transmitNs: t2, stratum: 1, rootDelay: 0, rootDispersion: 0, precision: -23, refId: 'GPS' }),
        );
      });
    },
  };
  return link;
}
