// Guest physical memory as KVM's kvm_read_guest/kvm_write_guest see it. The simulation backs it
// with a byte array; a live VM's mmap'ed memory satisfies the same interface.
import { InputError } from '../core/index.ts';

export interface GuestMemory {
  read(gpa: bigint, len: number): Uint8Array;
  write(gpa: bigint, bytes: Uint8Array): void;
}

/** Flat guest RAM starting at GPA 0. */
export class FlatGuestMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  private readonly size: bigint;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
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
