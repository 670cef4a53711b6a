// The paravirtual clock ABI shared by host (KVM) and guest (Linux), as
// arch/x86/include/asm/pvclock-abi.h, arch/x86/include/uapi/asm/kvm_para.h and
// arch/x86/include/asm/pvclock.h define it: record layouts, flag bits, MSR numbers, and the one
// piece of arithmetic both sides must agree on (pvclock_scale_delta / __pvclock_read_cycles).
// Both the hypervisor model and the guest model import this; it depends on nothing above core.
import type { Cycles, Ns } from './time.ts';
import { mulU64U32Shr, u64 } from './u64.ts';

// --- MSRs (arch/x86/include/uapi/asm/kvm_para.h, Documentation/virt/kvm/x86/msr.rst) ---
export const MSR_KVM_WALL_CLOCK = 0x11;
export const MSR_KVM_SYSTEM_TIME = 0x12;
export const MSR_KVM_WALL_CLOCK_NEW = 0x4b564d00;
export const MSR_KVM_SYSTEM_TIME_NEW = 0x4b564d01;
export const MSR_KVM_ASYNC_PF_EN = 0x4b564d02;
export const MSR_KVM_STEAL_TIME = 0x4b564d03;
export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_TSC_ADJUST = 0x3b;

/** Bit 0 of MSR_KVM_SYSTEM_TIME(_NEW) and MSR_KVM_STEAL_TIME: enable. */
export const KVM_MSR_ENABLED = 1n;
/** Steal-time record alignment: the GPA must be 64-byte aligned, bits 1..5 reserved. */
export const KVM_STEAL_ALIGNMENT_BITS = 5n;
export const KVM_STEAL_VALID_BITS = u64(-1n << (KVM_STEAL_ALIGNMENT_BITS + 1n));
export const KVM_STEAL_RESERVED_MASK = ((1n << KVM_STEAL_ALIGNMENT_BITS) - 1n) << 1n;

// --- CPUID (Documentation/virt/kvm/x86/cpuid.rst) ---
export const KVM_CPUID_SIGNATURE = 0x40000000;
export const KVM_CPUID_FEATURES = 0x40000001;
export const KVM_CPUID_TIMING_INFO = 0x40000010;
export const KVM_FEATURE_CLOCKSOURCE = 0;
export const KVM_FEATURE_CLOCKSOURCE2 = 3;
export const KVM_FEATURE_STEAL_TIME = 5;
export const KVM_FEATURE_CLOCKSOURCE_STABLE_BIT = 24;

// --- pvclock flags (pvclock-abi.h) ---
export const PVCLOCK_TSC_STABLE_BIT = 1 << 0;
export const PVCLOCK_GUEST_STOPPED = 1 << 1;
export const PVCLOCK_COUNTS_FROM_ZERO = 1 << 2;

// --- steal time preempted bits (kvm_para.h) ---
export const KVM_VCPU_PREEMPTED = 1 << 0;
export const KVM_VCPU_FLUSH_TLB = 1 << 1;

/** struct pvclock_vcpu_time_info: 32 bytes, 32-byte aligned. */
export interface PvclockVcpuTimeInfo {
  version: number; // u32
  tscTimestamp: Cycles; // u64
  systemTime: Ns; // u64
  tscToSystemMul: number; // u32
  tscShift: number; // s8
  flags: number; // u8
}

export const PVCLOCK_VCPU_TIME_INFO_SIZE = 32;
export const PVCLOCK_VCPU_TIME_INFO_LAYOUT = {
  version: 0,
  pad0: 4,
  tsc_timestamp: 8,
  system_time: 16,
  tsc_to_system_mul: 24,
  tsc_shift: 28,
  flags: 29,
  pad: 30,
} as const;

/** struct pvclock_wall_clock: 12 bytes, packed. */
export interface PvclockWallClock {
  version: number; // u32
  sec: number; // u32
  nsec: number; // u32
}
export const PVCLOCK_WALL_CLOCK_SIZE = 12;
export const PVCLOCK_WALL_CLOCK_LAYOUT = { version: 0, sec: 4, nsec: 8 } as const;

/** struct kvm_steal_time: 64 bytes, 64-byte aligned. */
export interface KvmStealTime {
  steal: Ns; // u64
  version: number; // u32
  flags: number; // u32
  preempted: number; // u8
}
export const KVM_STEAL_TIME_SIZE = 64;
export const KVM_STEAL_TIME_LAYOUT = { steal: 0, version: 8, flags: 12, preempted: 16, u8_pad: 17, pad: 20 } as const;

/**
 * Word views on flat guest RAM for reading and writing the little-endian records above in place: a
 * BigUint64Array element is a plain 64-bit load in V8's optimized code, a DataView's getBigUint64 a call.
 * Offsets index bytes; a u64 field must be 8-byte aligned (pvclock records are 32-, steal-time records
 * 64-byte aligned), a u32 4-byte aligned.
 */
export interface RamWords {
  readonly u8: Uint8Array;
  readonly s8: Int8Array;
  readonly u32: Uint32Array;
  readonly u64: BigUint64Array;
}

/** Whether this machine stores integers little-endian, as x86 guest memory does (typed arrays use host order). */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** RamWords on `bytes`, or null (a big-endian host, or bytes not 8-byte aligned in their buffer): use the bytes. */
export function ramWords(bytes: Uint8Array | undefined): RamWords | null {
  if (!bytes || !HOST_LITTLE_ENDIAN || bytes.byteOffset % 8 !== 0) return null;
  const { buffer, byteOffset, byteLength } = bytes;
  return {
    u8: bytes,
    s8: new Int8Array(buffer, byteOffset, byteLength),
    u32: new Uint32Array(buffer, byteOffset, byteLength >>> 2),
    u64: new BigUint64Array(buffer, byteOffset, byteLength >>> 3),
  };
}

/** A little-endian view on some bytes (guest memory, a test buffer). */
function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function decodePvclock(buf: Uint8Array, off = 0): PvclockVcpuTimeInfo {
  return decodePvclockView(view(buf), off);
}

/** decodePvclock on a DataView the caller keeps (no allocation but the record). */
export function decodePvclockView(v: DataView, off = 0): PvclockVcpuTimeInfo {
  const L = PVCLOCK_VCPU_TIME_INFO_LAYOUT;
  return {
    version: v.getUint32(off + L.version, true),
    tscTimestamp: v.getBigUint64(off + L.tsc_timestamp, true),
    systemTime: v.getBigUint64(off + L.system_time, true),
    tscToSystemMul: v.getUint32(off + L.tsc_to_system_mul, true),
    tscShift: v.getInt8(off + L.tsc_shift),
    flags: v.getUint8(off + L.flags),
  };
}

export function encodePvclock(
  rec: PvclockVcpuTimeInfo,
  buf: Uint8Array = new Uint8Array(PVCLOCK_VCPU_TIME_INFO_SIZE),
  off = 0,
): Uint8Array {
  const v = view(buf);
  const L = PVCLOCK_VCPU_TIME_INFO_LAYOUT;
  v.setUint32(off + L.version, rec.version >>> 0, true);
  v.setUint32(off + L.pad0, 0, true);
  v.setBigUint64(off + L.tsc_timestamp, u64(rec.tscTimestamp), true);
  v.setBigUint64(off + L.system_time, u64(rec.systemTime), true);
  v.setUint32(off + L.tsc_to_system_mul, rec.tscToSystemMul >>> 0, true);
  v.setInt8(off + L.tsc_shift, rec.tscShift);
  v.setUint8(off + L.flags, rec.flags & 0xff);
  v.setUint16(off + L.pad, 0, true);
  return buf;
}

export function decodeWallClock(buf: Uint8Array, off = 0): PvclockWallClock {
  const v = view(buf);
  return { version: v.getUint32(off, true), sec: v.getUint32(off + 4, true), nsec: v.getUint32(off + 8, true) };
}

export function encodeWallClock(wc: PvclockWallClock, buf: Uint8Array = new Uint8Array(PVCLOCK_WALL_CLOCK_SIZE), off = 0): Uint8Array {
  const v = view(buf);
  v.setUint32(off, wc.version >>> 0, true);
  v.setUint32(off + 4, wc.sec >>> 0, true);
  v.setUint32(off + 8, wc.nsec >>> 0, true);
  return buf;
}

/** Little-endian u32 at `off` (byte by byte: a DataView per small record costs more than the decode). */
export function le32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

export function putLe32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

/** Little-endian u64 (v in 0 … 2^64−1). */
export function putLe64(b: Uint8Array, off: number, v: bigint): void {
  putLe32(b, off, Number(v & 0xffff_ffffn));
  putLe32(b, off + 4, Number(v >> 32n));
}

export function decodeStealTime(buf: Uint8Array, off = 0): KvmStealTime {
  if (off + KVM_STEAL_TIME_LAYOUT.u8_pad > buf.length) throw new RangeError('Offset is outside the bounds of the DataView');
  const L = KVM_STEAL_TIME_LAYOUT;
  return {
    steal: (BigInt(le32(buf, off + L.steal + 4)) << 32n) | BigInt(le32(buf, off + L.steal)),
    version: le32(buf, off + L.version),
    flags: le32(buf, off + L.flags),
    preempted: buf[off + L.preempted]!,
  };
}

export function encodeStealTime(st: KvmStealTime, buf: Uint8Array = new Uint8Array(KVM_STEAL_TIME_SIZE), off = 0): Uint8Array {
  const v = view(buf);
  const L = KVM_STEAL_TIME_LAYOUT;
  v.setBigUint64(off + L.steal, u64(st.steal), true);
  v.setUint32(off + L.version, st.version >>> 0, true);
  v.setUint32(off + L.flags, st.flags >>> 0, true);
  v.setUint8(off + L.preempted, st.preempted & 0xff);
  return buf;
}

/**
 * pvclock_scale_delta() from arch/x86/include/asm/pvclock.h: shift the delta left or right by
 * tsc_shift first, then take the high part of the 96-bit product with the 32.32 fraction.
 */
export function pvclockScaleDelta(delta: bigint, mulFrac: number, shift: number): bigint {
  let d = u64(delta);
  if (shift < 0) d >>= BigInt(-shift);
  else d = u64(d << BigInt(shift));
  return mulU64U32Shr(d, mulFrac, 32);
}

/**
 * pvclock_scale_delta() for one (tsc_to_system_mul, tsc_shift) at a time, in int64: V8 computes
 * BigInt.asUintN(64, …) of + − × ÷ and constant shifts on 64-bit operands (locals, BigUint64Array
 * elements) without allocating, but neither a shift by a variable amount nor BigInt(number). So the
 * factors are kept as words — mul, and 2^|tsc_shift| — rebuilt when the record's scale changes; the
 * shift becomes a multiply (left: wraps at 64 bits like the u64 in C) or a divide (right: floors, as >>
 * does on a u64). The 96-bit product is taken as include/linux/math64.h's generic mul_u64_u32_shr does:
 * (lo32 · mul >> 32) + hi32 · mul, both products below 2^64, as is their sum (d · mul / 2^32 < 2^64).
 * |tsc_shift| ≥ 64 (2^|shift| not a u64) goes through pvclockScaleDelta.
 */
export class PvclockScaler {
  private mulFrac = -1;
  private shift = 0;
  /** [tsc_to_system_mul, 2^|tsc_shift|] */
  private readonly factors = new BigUint64Array(2);

  scaleDelta(delta: bigint, mulFrac: number, shift: number): bigint {
    if (mulFrac !== this.mulFrac || shift !== this.shift) {
      if (shift <= -64 || shift >= 64) return pvclockScaleDelta(delta, mulFrac, shift);
      this.factors[0] = BigInt(mulFrac >>> 0);
      this.factors[1] = 1n << BigInt(shift < 0 ? -shift : shift);
      this.mulFrac = mulFrac;
      this.shift = shift;
    }
    const f = this.factors;
    const m = f[0]!;
    // d and the operand of >> wrapped again: a right shift (or a quotient) of a value V8 cannot see is 64-bit
    // does not commute with the truncation, so it would fall back to a BigInt call
    const d = BigInt.asUintN(64, shift < 0 ? BigInt.asUintN(64, delta) / f[1]! : delta * f[1]!);
    return BigInt.asUintN(
      64,
      (BigInt.asUintN(64, BigInt.asUintN(32, d) * m) >> 32n) + BigInt.asUintN(64, (BigInt.asUintN(64, d) >> 32n) * m),
    );
  }
}

/**
 * __pvclock_read_cycles() on a record in flat guest RAM at byte offset `off` (32-byte aligned), read
 * through word views: the hot path of every kvm-clock read. The same u64 arithmetic as pvclockReadCycles.
 */
export function pvclockReadCyclesWords(w: RamWords, off: number, tsc: Cycles, scaler: PvclockScaler): Ns {
  const delta = BigInt.asUintN(64, tsc - w.u64[(off + 8) >>> 3]!); // tsc_timestamp
  const scaled = scaler.scaleDelta(delta, w.u32[(off + 24) >>> 2]!, w.s8[off + 28]!); // tsc_to_system_mul, tsc_shift
  return BigInt.asUintN(64, w.u64[(off + 16) >>> 3]! + scaled); // system_time
}

/**
 * __pvclock_read_cycles() on a record in place (a DataView on guest memory at `off`), without
 * decoding it into an object: the hot path of every kvm-clock read.
 */
export function pvclockReadCyclesView(v: DataView, off: number, tsc: Cycles): Ns {
  const L = PVCLOCK_VCPU_TIME_INFO_LAYOUT;
  const delta = u64(tsc - v.getBigUint64(off + L.tsc_timestamp, true));
  const scaled = pvclockScaleDelta(delta, v.getUint32(off + L.tsc_to_system_mul, true), v.getInt8(off + L.tsc_shift));
  return u64(v.getBigUint64(off + L.system_time, true) + scaled);
}

/**
 * __pvclock_read_cycles() from arch/x86/include/asm/pvclock.h: the record's time at a TSC value.
 * The TSC delta is a u64 subtraction, so a TSC behind tsc_timestamp wraps (as in the kernel).
 */
export function pvclockReadCycles(
  rec: Pick<PvclockVcpuTimeInfo, 'tscTimestamp' | 'systemTime' | 'tscToSystemMul' | 'tscShift'>,
  tsc: Cycles,
): Ns {
  const delta = u64(tsc - rec.tscTimestamp);
  return u64(rec.systemTime + pvclockScaleDelta(delta, rec.tscToSystemMul, rec.tscShift));
}
