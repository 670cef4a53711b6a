// NTP servers and the network paths to them. A server's clock is true UTC (stratum 1) or a host's
// REALTIME; each request and reply crosses its path in `delay (± asymmetry/2) + jitter × Exp(1)`, and is
// lost with probability `loss` (seeded: one PRNG stream per server and client). The server stamps T2 on
// arrival and T3 as it answers (no processing time); the client stamps T1 and T4 with its own clock, and
// computes offset and delay from the four timestamps as RFC 5905 §8 defines them.
import type { Engine } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import type { Prng } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import type { NtpServerLink, NtpServerReply } from '../guest/index.ts';

export interface NtpPath {
  /** Fixed one-way delay, ns. */
  delayNs: Ns;
  /** Mean of the exponential queueing delay added to each packet, ns. */
  jitterNs: Ns;
  /** Request minus reply fixed delay, ns: the request takes delay + asymmetry/2, the reply delay − asymmetry/2. */
  asymmetryNs: Ns;
  /** Probability that a packet (either direction) is lost. */
  loss: number;
}

export interface NtpServerConfig {
  name: string;
  stratum: number;
  /** The server's clock: its REALTIME at true time t (scheduler ns). */
  clock: (t: Ns) => Ns;
  path: NtpPath;
  /** log2 of the server's clock precision (chronyd on Linux: about −25; default −23). */
  precision?: number;
}

/** RFC 5905 §8: θ = ((T2 − T1) + (T3 − T4)) / 2 and δ = (T4 − T1) − (T3 − T2). */
export function ntpOffsetDelay(t1: Ns, t2: Ns, t3: Ns, t4: Ns): { offsetNs: Ns; delayNs: Ns } {
  return { offsetNs: (t2 - t1 + (t3 - t4)) / 2n, delayNs: t4 - t1 - (t3 - t2) };
}

/** Check a path's numbers; `where` names the scenario path for the error. */
export function checkPath(p: NtpPath, where: string): void {
  if (p.delayNs < 0n) throw new InputError('delay must not be negative', 'scenario', `${where}.delay`);
  if (p.jitterNs < 0n) throw new InputError('jitter must not be negative', 'scenario', `${where}.jitter`);
  const half = p.asymmetryNs < 0n ? -p.asymmetryNs : p.asymmetryNs;
  if (half > 2n * p.delayNs)
    throw new InputError(
      '|asymmetry| must be at most 2 × delay (neither direction can take less than no time)',
      'scenario',
      `${where}.asymmetry`,
    );
  if (!(p.loss >= 0 && p.loss < 1)) throw new InputError('loss must be a probability in [0, 1)', 'scenario', `${where}.loss`);
}

export class NtpServers {
  private readonly byName = new Map<string, NtpServerConfig>();
  /** Requests sent, replies delivered, packets lost (all links). */
  readonly counts = { requests: 0, replies: 0, lost: 0 };

  constructor(
    private readonly engine: Engine,
    private readonly prng: Prng,
    servers: readonly NtpServerConfig[],
  ) {
    for (const s of servers) this.byName.set(s.name, s);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  get(name: string): NtpServerConfig {
    const s = this.byName.get(name);
    if (!s)
      throw new InputError(`no NTP server named "${name}" (ntp_servers: ${[...this.byName.keys()].join(', ') || 'none'})`, 'scenario');
    return s;
  }

  /** One packet's transit time on `p`, ns, or null if it is lost. */
  private transit(p: NtpPath, rng: Prng, fixed: Ns): Ns | null {
    if (p.loss > 0 && rng.float() < p.loss) return null;
    return fixed + BigInt(Math.round(rng.exponential(Number(p.jitterNs))));
  }

  private fixedDelays(p: NtpPath): [Ns, Ns] {
    return [p.delayNs + p.asymmetryNs / 2n, p.delayNs - p.asymmetryNs / 2n];
  }

  /** The guest's view of server `name`: requests cross the path as scheduled events. */
  link(name: string, client: string): NtpServerLink {
    const s = this.get(name);
    const rng = this.prng.fork(`ntp:${name}:${client}`);
    const [req, rep] = this.fixedDelays(s.path);
    return {
      name,
      exchange: (reply: (r: NtpServerReply) => void) => {
        this.counts.requests++;
        const d1 = this.transit(s.path, rng, req);
        const d2 = this.transit(s.path, rng, rep);
        if (d1 === null || d2 === null) {
          this.counts.lost++;
          return;
        }
        this.engine.after(d1, () => {
          const t2 = s.clock(this.engine.now);
          this.engine.after(d2, () => {
            this.counts.replies++;
            reply({
              receiveNs: t2,
              transmitNs: t2,
              stratum: s.stratum,
              rootDelay: 0,
              rootDispersion: 0,
              precision: s.precision ?? -23,
              refId: name,
            });
          });
        });
      },
    };
  }

  /**
   * One exchange measured at once, for clients that want a synchronous result (the ntpd-like model):
   * T1 and T4 from `guestNow` and the transit times (the guest clock's rate over a round trip is
   * ignored). Null if a packet is lost.
   */
  measureNow(name: string, client: string, guestNow: () => Ns): { offsetNs: Ns; delayNs: Ns } | null {
    const s = this.get(name);
    const key = `ntpd:${name}:${client}`;
    let rng = this.syncRngs.get(key);
    if (!rng) {
      rng = this.prng.fork(key);
      this.syncRngs.set(key, rng);
    }
    const [req, rep] = this.fixedDelays(s.path);
    const d1 = this.transit(s.path, rng, req);
    const d2 = this.transit(s.path, rng, rep);
    if (d1 === null || d2 === null) return null;
    const t1 = guestNow();
    const t2 = s.clock(this.engine.now + d1);
    return ntpOffsetDelay(t1, t2, t2, t1 + d1 + d2);
  }

  private readonly syncRngs = new Map<string, Prng>();
}
