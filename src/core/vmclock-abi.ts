// The VMClock shared page (include/uapi/linux/vmclock-abi.h): a seqcount-protected record a hypervisor
// keeps in guest memory that tells the guest when its clock was disrupted (disruption_marker: live
// migration; vm_generation_counter: loaded from a snapshot) and, where the host publishes it, the exact
// relation of the guest's counter to real time. The guest's read is drivers/ptp/ptp_vmclock.c
// vmclock_get_crosststamp, bit for bit.
import { NSEC_PER_SEC } from './time.ts';

export const VMCLOCK_MAGIC = 0x4b4c4356; // "VCLK"
export const VMCLOCK_SIZE = 0x1000;
export const VMCLOCK_COUNTER_X86_TSC = 1;
export const VMCLOCK_COUNTER_INVALID = 0xff;
export const VMCLOCK_TIME_UTC = 0;
export const VMCLOCK_FLAG_TIME_ESTERROR_VALID = 1n << 5n;
export const VMCLOCK_FLAG_TIME_MAXERROR_VALID = 1n << 6n;
export const VMCLOCK_FLAG_TIME_MONOTONIC = 1n << 7n;
export const VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT = 1n << 8n;
/** Firecracker sets it: the device interrupts the guest after an update. */
export const VMCLOCK_FLAG_NOTIFICATION_PRESENT = 1n << 9n;
export const VMCLOCK_STATUS_UNKNOWN = 0;
export const VMCLOCK_STATUS_SYNCHRONIZED = 2;
export const VMCLOCK_STATUS_UNRELIABLE = 4;

/** Byte offsets of struct vmclock_abi's fields (little-endian, naturally aligned, 112 bytes). */
export const VMCLOCK_OFFSETS = {
  magic: 0,
  size: 4,
  version: 8,
  counter_id: 10,
  time_type: 11,
  seq_count: 12,
  disruption_marker: 16,
  flags: 24,
  clock_status: 34,
  leap_second_smearing_hint: 35,
  tai_offset_sec: 36,
  leap_indicator: 38,
  counter_period_shift: 39,
  counter_value: 40,
  counter_period_frac_sec: 48,
  counter_period_esterror_rate_frac_sec: 56,
  counter_period_maxerror_rate_frac_sec: 64,
  time_sec: 72,
  time_frac_sec: 80,
  time_esterror_nanosec: 88,
  time_maxerror_nanosec: 96,
  vm_generation_counter: 104,
} as const;
export const VMCLOCK_ABI_BYTES = 112;

export interface VmclockRecord {
  magic: number;
  size: number;
  version: number;
  counterId: number;
  timeType: number;
  seqCount: number;
  disruptionMarker: bigint;
  flags: bigint;
  clockStatus: number;
  counterPeriodShift: number;
  counterValue: bigint;
  counterPeriodFracSec: bigint;
  timeSec: bigint;
  timeFracSec: bigint;
  timeEsterrorNanosec: bigint;
  timeMaxerrorNanosec: bigint;
  vmGenerationCounter: bigint;
}

export function encodeVmclock(r: VmclockRecord): Uint8Array {
  const b = new Uint8Array(VMCLOCK_ABI_BYTES);
  const v = new DataView(b.buffer);
  const o = VMCLOCK_OFFSETS;
  v.setUint32(o.magic, r.magic, true);
  v.setUint32(o.size, r.size, true);
  v.setUint16(o.version, r.version, true);
  v.setUint8(o.counter_id, r.counterId);
  v.setUint8(o.time_type, r.timeType);
  v.setUint32(o.seq_count, r.seqCount >>> 0, true);
  v.setBigUint64(o.disruption_marker, BigInt.asUintN(64, r.disruptionMarker), true);
  v.setBigUint64(o.flags, r.flags, true);
  v.setUint8(o.clock_status, r.clockStatus);
  v.setUint8(o.counter_period_shift, r.counterPeriodShift);
  v.setBigUint64(o.counter_value, BigInt.asUintN(64, r.counterValue), true);
  v.setBigUint64(o.counter_period_frac_sec, r.counterPeriodFracSec, true);
  v.setBigUint64(o.time_sec, r.timeSec, true);
  v.setBigUint64(o.time_frac_sec, r.timeFracSec, true);
  v.setBigUint64(o.time_esterror_nanosec, r.timeEsterrorNanosec, true);
  v.setBigUint64(o.time_maxerror_nanosec, r.timeMaxerrorNanosec, true);
  v.setBigUint64(o.vm_generation_counter, BigInt.asUintN(64, r.vmGenerationCounter), true);
  return b;
}

export function decodeVmclock(b: Uint8Array): VmclockRecord {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const o = VMCLOCK_OFFSETS;
  return {
    magic: v.getUint32(o.magic, true),
    size: v.getUint32(o.size, true),
    version: v.getUint16(o.version, true),
    counterId: v.getUint8(o.counter_id),
    timeType: v.getUint8(o.time_type),
    seqCount: v.getUint32(o.seq_count, true),
    disruptionMarker: v.getBigUint64(o.disruption_marker, true),
    flags: v.getBigUint64(o.flags, true),
    clockStatus: v.getUint8(o.clock_status),
    counterPeriodShift: v.getUint8(o.counter_period_shift),
    counterValue: v.getBigUint64(o.counter_value, true),
    counterPeriodFracSec: v.getBigUint64(o.counter_period_frac_sec, true),
    timeSec: v.getBigUint64(o.time_sec, true),
    timeFracSec: v.getBigUint64(o.time_frac_sec, true),
    timeEsterrorNanosec: v.getBigUint64(o.time_esterror_nanosec, true),
    timeMaxerrorNanosec: v.getBigUint64(o.time_maxerror_nanosec, true),
    vmGenerationCounter: v.getBigUint64(o.vm_generation_counter, true),
  };
}

const U64 = (1n << 64n) - 1n;

/**
 * The time a counter reading `cycle` stands for, as vmclock_get_crosststamp computes it: delta = cycle −
 * counter_value (u64), (delta · period) >> shift + time_frac_sec as a 128-bit sum whose high half is
 * seconds, nsec = (frac · 10^9) >> 64. Null where the driver fails (clock_status UNRELIABLE).
 */
export function vmclockReadNs(r: VmclockRecord, cycle: bigint): bigint | null {
  if (r.clockStatus === VMCLOCK_STATUS_UNRELIABLE) return null;
  const delta = BigInt.asUintN(64, cycle - r.counterValue);
  const sum = ((delta * r.counterPeriodFracSec) >> BigInt(r.counterPeriodShift)) + r.timeFracSec;
  const sec = (sum >> 64n) + r.timeSec;
  const nsec = ((sum & U64) * NSEC_PER_SEC) >> 64n;
  return sec * NSEC_PER_SEC + nsec;
}
