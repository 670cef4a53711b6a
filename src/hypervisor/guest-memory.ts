// Guest physical memory as KVM's kvm_read_guest/kvm_write_guest see it. The simulation backs it
// with a byte array; a live VM's mmap'ed memory satisfies the same interface.
import { InputError, type RamWords, ramWords } from '../core/index.ts';

export interface GuestMemory {
  read(gpa: bigint, len: number): Uint8Array;
  write(gpa: bigint, bytes: Uint8Array): void;
  /** Flat RAM from GPA 0, when the memory is that: KVM's per-entry records (steal time) are then
   *  updated in place, as the kernel writes through its cached mapping (gfn_to_pfn_cache). */
  readonly bytes?: Uint8Array;
  /** Word views on `bytes` (core's ramWords), or null where they cannot be had (a big-endian host). */
  readonly words?: RamWords | null;
}

/** A RAM buffer and its word views, all zero: what a finished VM hands back for the next one. */
interface SpareRam {
  bytes: Uint8Array;
  words: RamWords | null;
}

/**
 * RAM of VMs that have finished (FlatGuestMemory.recycle), zeroed, for the next VM of the same size
 * in this thread. A fleet worker runs thousands of VMs one after another: a fresh zeroed 2-MiB
 * ArrayBuffer each (calloc, page faults, and V8's external-memory accounting, which brings on full
 * collections) cost ≈ 20 % of a VM-day (docs/performance.md "Per-VM set-up"). A recycled buffer is
 * zeroed as it is handed back, so a VM sees the same all-zero RAM either way.
 */
const spare = new Map<number, SpareRam[]>();
/** Per size: enough for a world's VMs to be handed on to the next world, bounded in memory. */
const MAX_SPARE = 16;

/** The buffers held for reuse (tests: to compare a recycled run with a fresh one). */
export const guestRamSpares = {
  count(size: number): number {
    return spare.get(size)?.length ?? 0;
  },
  clear(): void {
    spare.clear();
  },
};

const RELEASED = new Uint8Array(0);

/** Flat guest RAM starting at GPA 0. */
export class FlatGuestMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  readonly words: RamWords | null;
  private size: bigint;
  constructor(size: number) {
    const s = spare.get(size)?.pop();
    this.bytes = s ? s.bytes : new Uint8Array(size);
    this.words = s ? s.words : ramWords(this.bytes);
    this.size = BigInt(size);
  }

  /**
   * The VM owning this memory has finished and nothing reads its RAM again: the buffer, zeroed, goes to
   * the next FlatGuestMemory of its size in this thread. Reads and writes through this object fail
   * afterwards (views taken from `bytes` before would see the next VM's RAM: the owner releases last).
   */
  recycle(): void {
    const bytes = this.bytes;
    if (bytes === RELEASED) return;
    const list = spare.get(bytes.length) ?? [];
    if (list.length < MAX_SPARE) {
      bytes.fill(0);
      list.push({ bytes, words: this.words });
      spare.set(bytes.length, list);
    }
    (this as { bytes: Uint8Array }).bytes = RELEASED;
    (this as { words: RamWords | null }).words = null;
    this.size = 0n;
  }

  private check(gpa: bigint, len: number): number {
    if (gpa < 0n || gpa + BigInt(len) > this.size) {
      if (this.bytes === RELEASED) throw new Error('guest memory used after its VM was released (FlatGuestMemory.recycle)');
      throw new InputError(`guest physical address 0x${gpa.toString(16)}+${len} is outside guest memory (${this.bytes.length} bytes)`);
    }
    return Number(gpa);
  }

  read(gpa: bigint, len: number): Uint8Array {
    const at = this.check(gpa, len);
    return this.bytes.slice(at, at + len);
  }

  write(gpa: bigint, bytes: Uint8Array): void {
    this.bytes.set(bytes, this.check(gpa, bytes.length));
  }
}
