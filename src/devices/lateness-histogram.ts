/**
 * Exact distribution of interrupt lateness (ns) in bounded memory: a count per distinct value. On a round-robin
 * host the values are few (one per phase of the expiry in the slot cycle). Beyond MAX_DISTINCT distinct values
 * a new value is counted in its log2 bucket instead, rounded down to the power of two ≤ it (0 stays 0), and
 * `exact` turns false; the max is always exact.
 */
export const MAX_DISTINCT = 4096;

export class LatenessHistogram {
  private readonly counts = new Map<bigint, number>();
  count = 0;
  max = 0n;
  exact = true;

  record(ns: bigint, times = 1): void {
    this.count += times;
    if (ns > this.max) this.max = ns;
    let key = ns;
    if (!this.counts.has(key) && this.counts.size >= MAX_DISTINCT) {
      this.exact = false;
      key = ns <= 0n ? 0n : 1n << BigInt(ns.toString(2).length - 1);
    }
    this.counts.set(key, (this.counts.get(key) ?? 0) + times);
  }

  /** Fold another histogram into this one (the VM's vCPUs). */
  merge(o: LatenessHistogram): void {
    for (const [v, c] of o.counts) this.record(v, c);
    if (o.max > this.max) this.max = o.max;
    if (!o.exact) this.exact = false;
  }

  /** Each recorded value (its log2 bucket when not exact) with its count, in increasing order. */
  entries(): [bigint, number][] {
    return [...this.counts].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Nearest-rank percentile: the smallest recorded value v with at least ceil(p/100 · n) values ≤ v; 0 when empty. */
  percentile(p: number): bigint {
    if (this.count === 0) return 0n;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (const [v, c] of this.entries()) {
      seen += c;
      if (seen >= rank) return v;
    }
    return this.max;
  }
}
