// What the simulation records of each guest: its clock offsets against true time, sampled into a
// timeline, and the running statistics the summary reports (first, last, worst, drift).
import { NSEC_PER_SEC, type Ns } from '../core/index.ts';

export interface TimelineRow {
  /** True time since the start, ns. */
  t: Ns;
  vm: string;
  /** Guest CLOCK_REALTIME minus true UTC, ns. */
  guestOffsetNs: Ns;
  /** Guest CLOCK_MONOTONIC minus true time since the VM was created, ns. */
  monotonicLagNs: Ns;
  /** Host CLOCK_REALTIME minus true UTC, ns. */
  hostOffsetNs: Ns;
}

/** Running statistics of one guest's REALTIME offset. */
export class OffsetStats {
  initial: Ns = 0n;
  last: Ns = 0n;
  prev: Ns = 0n;
  maxAbs: Ns = 0n;
  prevT: Ns = 0n;
  lastT: Ns = 0n;
  seen = false;

  record(t: Ns, offset: Ns): void {
    if (!this.seen) {
      this.initial = offset;
      this.seen = true;
    }
    this.prev = this.last;
    this.prevT = this.lastT;
    this.last = offset;
    this.lastT = t;
    const a = offset < 0n ? -offset : offset;
    if (a > this.maxAbs) this.maxAbs = a;
  }

  /** Rate of the guest clock against true time over the last sample interval, ppm (6 decimals). */
  driftPpm(): number {
    const span = this.lastT - this.prevT;
    return span > 0n && this.prevT > 0n ? Math.round((Number(this.last - this.prev) / Number(span)) * 1e6 * 1e6) / 1e6 : 0;
  }
}

/**
 * At most 2·`keep` points of a series, evenly thinned: when full, every other point goes and the stride
 * doubles. Deterministic, and memory stays bounded however long the run.
 */
export class ThinnedSeries {
  readonly t: Ns[] = [];
  readonly v: Ns[] = [];
  private stride = 1;
  private seen = 0;

  constructor(private readonly keep = 256) {}

  push(t: Ns, v: Ns): void {
    if (this.seen++ % this.stride !== 0) return;
    this.t.push(t);
    this.v.push(v);
    if (this.t.length >= 2 * this.keep) {
      for (let i = 0; i < this.keep; i++) {
        this.t[i] = this.t[2 * i]!;
        this.v[i] = this.v[2 * i]!;
      }
      this.t.length = this.keep;
      this.v.length = this.keep;
      this.stride *= 2;
    }
  }
}

/**
 * When the sampler that fired at `at` fires next: every `interval` from 0, then once at `duration` when
 * the interval does not divide it; null after that. The sampler's own re-arm and the engine's quiet
 * participant (Engine.quietParticipant: samples run inside quiet spans) both use it.
 */
export function nextSampleAt(interval: Ns, duration: Ns): (at: Ns) => Ns | null {
  return (at) => {
    const next = at + interval;
    if (next <= duration) return next;
    return at < duration ? duration : null;
  };
}

/** The CSV header and one row of the timeline (offsets in exact integer ns). */
export const TIMELINE_CSV_HEADER = 't_s,vm,guest_offset_ns,monotonic_lag_ns,host_offset_ns';

export function timelineCsvRow(r: TimelineRow): string {
  const s = r.t / NSEC_PER_SEC;
  const frac = (r.t % NSEC_PER_SEC).toString().padStart(9, '0');
  return `${s}.${frac},${r.vm},${r.guestOffsetNs},${r.monotonicLagNs},${r.hostOffsetNs}`;
}

/** Timeline as CSV: one row per VM per sample; offsets in ns (exact integers). */
export function timelineCsv(rows: readonly TimelineRow[]): string {
  const out = [TIMELINE_CSV_HEADER];
  for (const r of rows) out.push(timelineCsvRow(r));
  return out.join('\n') + '\n';
}
