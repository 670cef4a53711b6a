// The engine's far tier: pending events later than the near heap's range, kept unsorted in a
// calendar of equal-width buckets (a timing wheel) plus an overflow heap for what lies past the wheel.
//
// Keys never go below the engine's "now", so only the bucket after the near heap's range is ever
// needed next: when the near heap runs dry, the engine moves the next non-empty bucket into it, and
// the heap orders those few entries exactly by (key, sequence). Each event therefore pays one O(1)
// bucket insert and a push/pop on a heap of a few dozen entries instead of ~13 levels of a
// 10,000-entry heap. The order of dispatch is decided by the near heap alone, so the wheel's geometry
// (bucket width, bucket count) changes speed, never results.

/** Where the wheel delivers a bucket's entries: the engine's near heap. */
export interface NearHeap {
  pushNear(key: number, seq: number, slot: number): void;
}

/** A copy of `a` with room for `n` elements. */
function grown<T extends Float64Array | Int32Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

export class EventWheel {
  /** Keys below this belong to the near heap; Infinity while the wheel is not in use. */
  nearEnd = Infinity;
  /** Entries held in buckets. */
  bucketCount = 0;
  /** Entries held in the overflow heap. */
  overflowCount = 0;
  /** Buckets stepped through and entries moved to the near heap since the last layout (resize heuristics). */
  steps = 0;
  moved = 0;

  private width = 1; // ns per bucket, a power of two so `key * inv` is exact
  private inv = 1;
  private cur = 0; // index (key / width) of the bucket the near heap covers
  private nb = 0; // bucket count, a power of two
  private mask = 0;
  private head = new Int32Array(0); // first node of each bucket, -1 when empty

  // node pool: singly linked bucket lists
  private nKey = new Float64Array(256);
  private nSeq = new Float64Array(256);
  private nSlot = new Int32Array(256);
  private nNext = new Int32Array(256);
  private nUsed = 0;
  private freeNode = -1;

  // overflow: a binary heap on key (their order among equal keys is settled later, in the near heap)
  private oKey = new Float64Array(64);
  private oSeq = new Float64Array(64);
  private oSlot = new Int32Array(64);

  get count(): number {
    return this.bucketCount + this.overflowCount;
  }

  get engaged(): boolean {
    return this.nearEnd !== Infinity;
  }

  get bucketWidth(): number {
    return this.width;
  }

  get buckets(): number {
    return this.nb;
  }

  /**
   * Start a layout: buckets of 2^`bits` ns, `buckets` of them (a power of two), the near heap covering
   * the bucket that holds `firstKey`. The wheel must be empty (see drain).
   */
  layout(bits: number, buckets: number, firstKey: number): void {
    this.width = 2 ** bits;
    this.inv = 2 ** -bits;
    this.nb = buckets;
    this.mask = buckets - 1;
    if (this.head.length !== buckets) this.head = new Int32Array(buckets);
    this.head.fill(-1);
    this.cur = Math.floor(firstKey * this.inv);
    this.nearEnd = (this.cur + 1) * this.width;
    this.steps = 0;
    this.moved = 0;
  }

  /** Stop using the wheel (it must be empty): every key then belongs to the near heap. */
  disengage(): void {
    this.nearEnd = Infinity;
    this.nb = 0;
  }

  /** Hold an entry whose key is ≥ nearEnd. */
  add(key: number, seq: number, slot: number): void {
    const idx = Math.floor(key * this.inv);
    if (idx - this.cur < this.nb) {
      let node = this.freeNode;
      if (node !== -1) this.freeNode = this.nNext[node]!;
      else {
        node = this.nUsed++;
        if (node === this.nKey.length) this.growNodes();
      }
      const b = idx & this.mask;
      this.nKey[node] = key;
      this.nSeq[node] = seq;
      this.nSlot[node] = slot;
      this.nNext[node] = this.head[b]!;
      this.head[b] = node;
      this.bucketCount++;
    } else this.overflowPush(key, seq, slot);
  }

  /**
   * Step to the next bucket holding a live entry (one whose seq still matches `armedSeq[slot]`) and
   * move its live entries into `near`; stale ones are dropped. Returns the number moved (0 once the
   * wheel is empty).
   */
  refill(near: NearHeap, armedSeq: Float64Array): number {
    for (;;) {
      if (this.bucketCount === 0) {
        if (this.overflowCount === 0) return 0;
        this.cur = Math.floor(this.oKey[0]! * this.inv) - 1; // nothing in between: jump
      }
      const cur = ++this.cur;
      this.steps++;
      this.nearEnd = (cur + 1) * this.width;
      while (this.overflowCount > 0) {
        const k = this.oKey[0]!;
        if (Math.floor(k * this.inv) - cur >= this.nb) break;
        const seq = this.oSeq[0]!;
        const slot = this.oSlot[0]!;
        this.overflowPop();
        this.add(k, seq, slot);
      }
      const b = cur & this.mask;
      let node = this.head[b]!;
      if (node === -1) continue;
      this.head[b] = -1;
      // read the pool only now: pulling from the overflow above may have grown it
      const nKey = this.nKey;
      const nSeq = this.nSeq;
      const nSlot = this.nSlot;
      const nNext = this.nNext;
      let moved = 0;
      while (node !== -1) {
        const next = nNext[node]!;
        const slot = nSlot[node]!;
        const seq = nSeq[node]!;
        if (armedSeq[slot] === seq) {
          near.pushNear(nKey[node]!, seq, slot);
          moved++;
        }
        nNext[node] = this.freeNode;
        this.freeNode = node;
        this.bucketCount--;
        node = next;
      }
      if (moved > 0) {
        this.moved += moved;
        return moved;
      }
    }
  }

  /** The earliest key of a live entry whose slot is not in `skip`, or Infinity. */
  earliestLive(armedSeq: Float64Array, skip: readonly number[]): number {
    let seen = 0;
    for (let i = 1; i < this.nb && seen < this.bucketCount; i++) {
      let best = Infinity;
      for (let node = this.head[(this.cur + i) & this.mask]!; node !== -1; node = this.nNext[node]!) {
        seen++;
        const slot = this.nSlot[node]!;
        if (this.nKey[node]! < best && armedSeq[slot] === this.nSeq[node] && !skip.includes(slot)) best = this.nKey[node]!;
      }
      if (best !== Infinity) return best;
    }
    let best = Infinity;
    for (let i = 0; i < this.overflowCount; i++) {
      const slot = this.oSlot[i]!;
      if (this.oKey[i]! < best && armedSeq[slot] === this.oSeq[i] && !skip.includes(slot)) best = this.oKey[i]!;
    }
    return best;
  }

  /** Hand every entry to `sink` (live or not) and leave the wheel empty, still engaged. */
  drain(sink: (key: number, seq: number, slot: number) => void): void {
    for (let b = 0; b < this.nb; b++) {
      for (let node = this.head[b]!; node !== -1; ) {
        const next = this.nNext[node]!;
        sink(this.nKey[node]!, this.nSeq[node]!, this.nSlot[node]!);
        this.nNext[node] = this.freeNode;
        this.freeNode = node;
        node = next;
      }
      this.head[b] = -1;
    }
    for (let i = 0; i < this.overflowCount; i++) sink(this.oKey[i]!, this.oSeq[i]!, this.oSlot[i]!);
    this.bucketCount = 0;
    this.overflowCount = 0;
  }

  private growNodes(): void {
    const n = this.nKey.length * 2;
    this.nKey = grown(this.nKey, n);
    this.nSeq = grown(this.nSeq, n);
    this.nSlot = grown(this.nSlot, n);
    this.nNext = grown(this.nNext, n);
  }

  private overflowPush(key: number, seq: number, slot: number): void {
    if (this.overflowCount === this.oKey.length) {
      const n = this.oKey.length * 2;
      this.oKey = grown(this.oKey, n);
      this.oSeq = grown(this.oSeq, n);
      this.oSlot = grown(this.oSlot, n);
    }
    const keys = this.oKey;
    let i = this.overflowCount++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (keys[p]! <= key) break;
      keys[i] = keys[p]!;
      this.oSeq[i] = this.oSeq[p]!;
      this.oSlot[i] = this.oSlot[p]!;
      i = p;
    }
    keys[i] = key;
    this.oSeq[i] = seq;
    this.oSlot[i] = slot;
  }

  private overflowPop(): void {
    const n = --this.overflowCount;
    if (n === 0) return;
    const keys = this.oKey;
    const key = keys[n]!;
    const seq = this.oSeq[n]!;
    const slot = this.oSlot[n]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && keys[c + 1]! < keys[c]!) c++;
      if (key <= keys[c]!) break;
      keys[i] = keys[c]!;
      this.oSeq[i] = this.oSeq[c]!;
      this.oSlot[i] = this.oSlot[c]!;
      i = c;
    }
    keys[i] = key;
    this.oSeq[i] = seq;
    this.oSlot[i] = slot;
  }
}
