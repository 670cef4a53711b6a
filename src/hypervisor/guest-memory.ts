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

/** Flat guest RAM starting at GPA 0. */
export class FlatGuestMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  readonly words: RamWords | null;
  private readonly size: bigint;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.words = ramWords(this.bytes);
    this.size = BigInt(size);
  }

  private check(gpa: bigint, len: number): number {
    if (gpa < 0n || gpa + BigInt(len) > this.size) {
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
