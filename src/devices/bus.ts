// Port-I/O and MMIO buses: map address ranges to devices and split accesses the way QEMU's memory core
// does for a region whose implementation handles only narrower accesses (softmmu/memory.c
// access_with_adjusted_size: little-endian, one device access per byte or word). Unmapped ports read as
// all ones, unmapped memory as zero (QEMU's unassigned_io_ops / unassigned_mem_ops).
import { InputError } from '../core/index.ts';

export type AccessSize = 1 | 2 | 4 | 8;

/** A device on the port-I/O bus. `port` is the absolute port; values are at most 32 bits. */
export interface PortDevice {
  portRead(port: number, size: 1 | 2 | 4): number;
  portWrite(port: number, size: 1 | 2 | 4, value: number): void;
}

/** A device on the memory bus. `offset` is relative to the region base. */
export interface MmioDevice {
  mmioRead(offset: number, size: AccessSize): bigint;
  mmioWrite(offset: number, size: AccessSize, value: bigint): void;
}

interface PortRange {
  base: number;
  length: number;
  device: PortDevice;
  /** Largest access the device implements; wider accesses are split into this size. */
  maxSize: 1 | 2 | 4;
}

interface MmioRange {
  base: bigint;
  length: bigint;
  device: MmioDevice;
  /** Narrowest valid access: narrower reads return 0, narrower writes are dropped. */
  minSize: AccessSize;
  /** Widest access the device implements: wider ones are split, low part first. */
  maxSize: AccessSize;
}

const ONES = [0, 0xff, 0xffff, 0, 0xffffffff] as const;

export class PortBus {
  private readonly byPort = new Map<number, PortRange>();

  /**
   * Map `length` ports at `base`. Overlaps are an error, unless `below` is set: then ports already taken
   * stay with their device (a guest-relocated PCI block under fixed ISA ports).
   */
  map(base: number, length: number, device: PortDevice, maxSize: 1 | 2 | 4 = 1, below = false): void {
    for (let p = base; p < base + length; p++) {
      if (this.byPort.has(p) && !below) throw new InputError(`port 0x${p.toString(16)} is already mapped`);
    }
    const r = { base, length, device, maxSize };
    for (let p = base; p < base + length && p <= 0xffff; p++) if (!this.byPort.has(p)) this.byPort.set(p, r);
  }

  /** Remove a device's ports (a guest moved or disabled a relocatable block, e.g. the PIIX4 PM base). */
  unmap(base: number, length: number, device: PortDevice): void {
    for (let p = base; p < base + length; p++) if (this.byPort.get(p)?.device === device) this.byPort.delete(p);
  }

  read(port: number, size: 1 | 2 | 4): number {
    const r = this.byPort.get(port);
    if (!r) return this.splitRead(port, size, 1, true);
    if (size <= r.maxSize) return r.device.portRead(port, size) >>> 0;
    return this.splitRead(port, size, r.maxSize, false);
  }

  write(port: number, size: 1 | 2 | 4, value: number): void {
    const r = this.byPort.get(port);
    if (!r) return this.splitWrite(port, size, 1, value, true);
    if (size <= r.maxSize) return r.device.portWrite(port, size, maskTo(value, size));
    this.splitWrite(port, size, r.maxSize, value, false);
  }

  private splitRead(port: number, size: number, step: 1 | 2 | 4, unmappedFirst: boolean): number {
    if (unmappedFirst && size === 1) return 0xff;
    let v = 0;
    for (let i = 0; i < size; i += step) {
      const p = (port + i) & 0xffff;
      const r = this.byPort.get(p);
      const part = r ? r.device.portRead(p, step) : ONES[step];
      v += (part & ONES[step]) * 2 ** (8 * i);
    }
    return v >>> 0;
  }

  private splitWrite(port: number, size: number, step: 1 | 2 | 4, value: number, unmappedFirst: boolean): void {
    if (unmappedFirst && size === 1) return;
    for (let i = 0; i < size; i += step) {
      const p = (port + i) & 0xffff;
      const r = this.byPort.get(p);
      if (r) r.device.portWrite(p, step, Math.floor(value / 2 ** (8 * i)) & ONES[step]);
    }
  }
}

export class MmioBus {
  private readonly ranges: MmioRange[] = [];

  map(base: bigint, length: bigint, device: MmioDevice, sizes: { min?: AccessSize; max?: AccessSize } = {}): void {
    for (const r of this.ranges) {
      if (base < r.base + r.length && r.base < base + length)
        throw new InputError(`MMIO range 0x${base.toString(16)} overlaps 0x${r.base.toString(16)}`);
    }
    this.ranges.push({ base, length, device, minSize: sizes.min ?? 1, maxSize: sizes.max ?? 8 });
  }

  find(addr: bigint): MmioRange | undefined {
    for (const r of this.ranges) if (addr >= r.base && addr < r.base + r.length) return r;
    return undefined;
  }

  read(addr: bigint, size: AccessSize): bigint {
    const r = this.find(addr);
    if (!r) return 0n;
    const off = Number(addr - r.base);
    if (size >= r.minSize && size <= r.maxSize) return r.device.mmioRead(off, size);
    if (size > r.maxSize) {
      let v = 0n;
      for (let i = 0; i < size; i += r.maxSize) v |= r.device.mmioRead(off + i, r.maxSize) << BigInt(8 * i);
      return v;
    }
    return 0n; // narrower than the region accepts (.valid.min_access_size): the access fails, reads 0
  }

  write(addr: bigint, size: AccessSize, value: bigint): void {
    const r = this.find(addr);
    if (!r) return;
    const off = Number(addr - r.base);
    value &= (1n << BigInt(8 * size)) - 1n;
    if (size >= r.minSize && size <= r.maxSize) return r.device.mmioWrite(off, size, value);
    if (size > r.maxSize) {
      const m = (1n << BigInt(8 * r.maxSize)) - 1n;
      for (let i = 0; i < size; i += r.maxSize) r.device.mmioWrite(off + i, r.maxSize, (value >> BigInt(8 * i)) & m);
      return;
    }
    // narrower than the region accepts: dropped, as QEMU's memory_region_access_valid() rejects it
  }
}

function maskTo(v: number, size: 1 | 2 | 4): number {
  return size === 4 ? v >>> 0 : v & ONES[size];
}
