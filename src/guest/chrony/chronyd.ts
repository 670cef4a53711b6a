// chronyd in the guest: its `server` sources (ntp_core.c), the source selection and combining of
// sources.c, the reference update (reference.c) and the Linux clock driver (sys_generic.c, sys_linux.c).
// Pure guest-layer code: it is handed a scheduler, the guest's adjtimex and CLOCK_REALTIME, and links
// to its servers; the world (or a test) provides the network.
//
//   const c = new Chronyd({ scheduler, adjtimex, readRaw, servers: [link], iburst: true, makestep: { threshold: 1, limit: 3 } });
//   c.start();  engine.run(t);  c.tracking();  c.adjustments
import type { Scheduler } from '../../core/index.ts';
import type { Ns } from '../../core/index.ts';
import type { Timex, TimexResult } from '../ntp.ts';
import { DEFAULT_MAX_SLEW_RATE_PPM, LocalClock } from './local.ts';
import { type ChronyAdjustment, Reference, type TrackingReport } from './reference.ts';
import { NtpSource, type NtpServerLink } from './source.ts';
import { type PhcDevice, RefclockSource, type RefclockPhcOptions } from './refclock.ts';

/** What source selection reads of a source: an NTP server (NtpSource) or a refclock (RefclockSource). */
type Selectable = NtpSource | RefclockSource;

/** conf.c defaults: maxdistance 3 s, maxjitter 1 s, combinelimit 3, reselectdist 100 µs, stratumweight 1 ms. */
export const DEFAULT_MAX_DISTANCE = 3.0;
export const DEFAULT_MAX_JITTER = 1.0;
const COMBINE_LIMIT = 3.0;
const RESELECT_DISTANCE = 1e-4;
const STRATUM_WEIGHT = 1e-3;
/** A Linux guest's clock_gettime resolution as chronyd measures it (LCL_GetSysPrecisionAsQuantum), ~2^-25 s. */
export const DEFAULT_PRECISION = 2 ** -25;

export interface ChronydOptions {
  scheduler: Scheduler;
  adjtimex: (txc: Timex) => TimexResult;
  /** The guest's CLOCK_REALTIME now, ns. */
  readRaw: () => Ns;
  servers: NtpServerLink[];
  iburst?: boolean;
  minpoll?: number;
  maxpoll?: number;
  /** `makestep threshold limit` (limit −1: no limit); absent: never step. */
  makestep?: { threshold: number; limit: number } | null;
  maxSlewRatePpm?: number;
  rtcsync?: boolean;
  precision?: number;
  /** Replay a recorded schedule of requests (one list per server, scheduler ns): NtpSourceOptions.transmitTimes. */
  transmitTimes?: readonly (readonly Ns[])[];
  /** `refclock PHC …` lines: each with the PHC device it reads (src/guest/ptp-kvm.ts). */
  refclocks?: { phc: PhcDevice; options: RefclockPhcOptions }[];
}

export class Chronyd {
  readonly local: LocalClock;
  readonly reference: Reference;
  readonly sources: NtpSource[];
  /** The refclocks (refclock.c), selected alongside the servers. */
  readonly refclocks: RefclockSource[];
  selected: Selectable | null = null;
  /** Scheduler time chronyd started at. */
  readonly startAt: Ns;

  constructor(o: ChronydOptions) {
    const precision = o.precision ?? DEFAULT_PRECISION;
    this.startAt = o.scheduler.now;
    this.local = new LocalClock({
      scheduler: o.scheduler,
      adjtimex: o.adjtimex,
      readRaw: o.readRaw,
      maxSlewRatePpm: o.maxSlewRatePpm ?? DEFAULT_MAX_SLEW_RATE_PPM,
      rtcsync: o.rtcsync ?? false,
    });
    this.reference = new Reference(this.local, () => Number(o.scheduler.now - this.startAt) / 1e9, { makestep: o.makestep ?? null });
    const hooks = {
      scheduler: o.scheduler,
      readCooked: () => this.local.readCooked(),
      precision,
      onSample: (s: NtpSource) => this.selectSource(s),
      isSyncPeer: (s: NtpSource) => s === this.selected,
    };
    this.sources = o.servers.map(
      (link, i) =>
        new NtpSource(
          link,
          {
            ...(o.minpoll !== undefined ? { minpoll: o.minpoll } : {}),
            ...(o.maxpoll !== undefined ? { maxpoll: o.maxpoll } : {}),
            iburst: o.iburst ?? false,
            ...(o.transmitTimes?.[i] ? { transmitTimes: o.transmitTimes[i] } : {}),
          },
          hooks,
        ),
    );
    this.refclocks = (o.refclocks ?? []).map(
      (r, i) =>
        new RefclockSource(r.phc, i, r.options, {
          scheduler: o.scheduler,
          local: this.local,
          precision,
          onSample: (s) => this.selectSource(s),
        }),
    );
    // sources.c slew_sources and ntp_sources.c slew_sources: every clock change shifts the stored
    // samples and each source's local timestamps
    this.local.addHandler((cooked, dfreq, doffset) => {
      for (const s of this.sources) {
        s.stats.slewSamples(cooked, dfreq, doffset);
        s.slewTimes(cooked, dfreq, doffset);
      }
      for (const r of this.refclocks) {
        r.stats.slewSamples(cooked, dfreq, doffset);
        r.slewTimes(cooked, dfreq, doffset);
      }
    });
  }

  start(): void {
    for (const s of this.sources) s.start();
    for (const r of this.refclocks) r.start();
  }

  /** chronyd stopped (the VM paused: its timers do not run). */
  stop(): void {
    for (const s of this.sources) s.stop();
    for (const r of this.refclocks) r.stop();
    this.local.stop();
  }

  /** chronyd runs again after `stop`: its timeouts come due after what was left of them. */
  resume(): void {
    this.local.resume();
    for (const s of this.sources) s.resume();
    for (const r of this.refclocks) r.resume();
  }

  /** sources.c SRC_SelectSource, for one updated source. */
  private selectSource(updated: Selectable): void {
    const now = this.local.readCooked();
    const cands: { s: Selectable; lo: number; hi: number; dist: number }[] = [];
    for (const s of [...this.sources, ...this.refclocks]) {
      if (!s.reachable) continue;
      const d = s.stats.selectionData(now);
      if (!d || d.rootDistance > DEFAULT_MAX_DISTANCE) continue;
      if (d.stdDev > DEFAULT_MAX_JITTER) continue; // sources.c: SRC_JITTERY (the regression's sd above maxjitter)
      cands.push({ s, lo: d.lo, hi: d.hi, dist: d.rootDistance });
    }
    const truechimers = intersect(cands);
    if (truechimers.length === 0) {
      this.selected = null;
      return;
    }
    const minStratum = Math.min(...truechimers.map((c) => c.s.stratum));
    const score = (c: (typeof truechimers)[number]) => c.dist + (c.s.stratum - minStratum) * STRATUM_WEIGHT;
    let best = truechimers[0]!;
    for (const c of truechimers) if (score(c) < score(best)) best = c;
    // keep the current selection unless another source is better by more than reselectdist
    const current = truechimers.find((c) => c.s === this.selected);
    if (current && score(current) <= score(best) + RESELECT_DISTANCE) best = current;
    this.selected = best.s;
    if (best.s !== updated) return; // the reference is updated only by a new sample of the selected source
    const t = best.s.stats.trackingData();
    let { offset, offsetSd, frequency, frequencySd, skew } = t;
    if (truechimers.length > 1) {
      // combine_sources: offsets weighted by 1/root distance, frequencies by 1/sd²
      const selDist = best.dist + RESELECT_DISTANCE;
      let sow = 0;
      let so = 0;
      let s2 = 0;
      let sfw = 0;
      let sf = 0;
      let invFsd = 0;
      let invSkew = 0;
      for (const c of truechimers) {
        const ct = c.s.stats.trackingData();
        if (
          c !== best &&
          (c.dist > COMBINE_LIMIT * selDist || Math.abs(frequency - ct.frequency) > COMBINE_LIMIT * (skew + ct.skew + 1e-6))
        )
          continue;
        const elapsed = Number(t.refTime - ct.refTime) / 1e9;
        const o = ct.offset + elapsed * ct.frequency;
        const osd = ct.offsetSd + elapsed * ct.frequencySd;
        const ow = 1.0 / c.dist;
        const fw = 1.0 / ct.frequencySd ** 2;
        sow += ow;
        so += ow * o;
        s2 += ow * (osd ** 2 + (o - offset) ** 2);
        sfw += fw;
        sf += fw * ct.frequency;
        invFsd += 1.0 / ct.frequencySd ** 2;
        invSkew += 1.0 / ct.skew ** 2;
      }
      offset = so / sow;
      offsetSd = Math.sqrt(s2 / sow);
      frequency = sf / sfw;
      frequencySd = 1.0 / Math.sqrt(invFsd);
      skew = 1.0 / Math.sqrt(invSkew);
    }
    this.reference.setReference(
      best.s.stratum,
      best.s.refId,
      t.refTime,
      offset,
      offsetSd,
      frequency,
      frequencySd,
      skew,
      t.rootDelay,
      t.rootDispersion,
    );
  }

  /** `chronyc tracking`. */
  tracking(): TrackingReport {
    const r = this.reference.tracking();
    return this.selected ? { ...r, referenceId: this.selected.link.name } : r;
  }

  get adjustments(): readonly ChronyAdjustment[] {
    return this.reference.adjustments;
  }
}

/**
 * The intersection step of source selection (Marzullo's algorithm as sources.c applies it): the sources
 * whose intervals contain the interval agreed by the most sources, if that is a majority.
 */
function intersect<T extends { lo: number; hi: number }>(cands: T[]): T[] {
  const n = cands.length;
  if (n === 0) return [];
  const ends: { x: number; d: number }[] = [];
  for (const c of cands) ends.push({ x: c.lo, d: 1 }, { x: c.hi, d: -1 });
  ends.sort((a, b) => a.x - b.x || b.d - a.d);
  let depth = 0;
  let best = 0;
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < ends.length; i++) {
    depth += ends[i]!.d;
    if (depth > best) {
      best = depth;
      lo = ends[i]!.x;
      hi = ends[i + 1]!.x;
    }
  }
  if (best <= n / 2) return [];
  return cands.filter((c) => c.lo <= hi && c.hi >= lo);
}
