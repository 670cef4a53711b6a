// The guest's read of a pvclock record, as arch/x86/kernel/pvclock.c does it:
// pvclock_read_begin/retry (the version protocol: odd = being written, changed = torn read),
// __pvclock_read_cycles at the current TSC, consumption of PVCLOCK_GUEST_STOPPED (the guest clears
// it and touches the soft-lockup watchdogs), and — unless the record has PVCLOCK_TSC_STABLE_BIT and
// the guest trusts it (pvclock_set_flags(PVCLOCK_TSC_STABLE_BIT), kvmclock.c does so when CPUID
// 0x40000001 has KVM_FEATURE_CLOCKSOURCE_STABLE_BIT) — the global monotonic guard `last_value`.
// Imports only core: the guest sees nothing of the hypervisor but memory and the TSC.
import type { Cycles, Ns } from '../core/index.ts';
import {
  PVCLOCK_GUEST_STOPPED,
  PVCLOCK_TSC_STABLE_BIT,
  PVCLOCK_VCPU_TIME_INFO_LAYOUT,
  PVCLOCK_VCPU_TIME_INFO_SIZE,
  decodePvclock,
  decodeWallClock,
  PVCLOCK_WALL_CLOCK_SIZE,
  pvclockReadCycles,
  pvclockReadCyclesView,
  pvclockReadCyclesWords,
  PvclockScaler,
  type PvclockVcpuTimeInfo,
  type RamWords,
  ramWords,
} from '../core/index.ts';
import { NSEC_PER_SEC } from '../core/index.ts';

// Module-level copies of the constants readNs tests on every read: an imported binding read in a hot
// function costs a re-export getter call per access under tsx's module transform.
const GUEST_STOPPED = PVCLOCK_GUEST_STOPPED;
const TSC_STABLE = PVCLOCK_TSC_STABLE_BIT;
const VERSION_AT = PVCLOCK_VCPU_TIME_INFO_LAYOUT.version;
const FLAGS_AT = PVCLOCK_VCPU_TIME_INFO_LAYOUT.flags;
const RECORD_SIZE = PVCLOCK_VCPU_TIME_INFO_SIZE;
const readCyclesWords = pvclockReadCyclesWords;

/**
 * kvm-unit-tests' PVCLOCK_RAW_CYCLE_BIT (x86/kvmclock.h): a valid flag of the test's own pvclock reader
 * that returns the computed value without the last_value guard ("raw cycle" test of x86/kvmclock_test.c).
 * Linux's pvclock.c has no such flag.
 */
export const PVCLOCK_RAW_CYCLE_BIT = 1 << 7;

/** Guest memory as the guest kernel reads and writes it (bytes at a guest physical address). */
export interface PvclockMemory {
  read(gpa: bigint, len: number): Uint8Array;
  write(gpa: bigint, bytes: Uint8Array): void;
  /** Flat RAM from GPA 0, when the memory is that (the model's FlatGuestMemory): records are then
   *  read in place, as the kernel dereferences its hv_clock pointer, with no copy per read. */
  readonly bytes?: Uint8Array;
}

export interface PvclockReadResult {
  ns: Ns;
  /** Flags seen in the consistent read. */
  flags: number;
  /** Attempts the version loop needed (1 = no retry). */
  attempts: number;
  /** The record had GUEST_STOPPED: the guest cleared it and touched its watchdogs. */
  guestStopped: boolean;
  /** The monotonic guard replaced the computed value with last_value. */
  clamped: boolean;
}

function readU32(mem: PvclockMemory, gpa: bigint): number {
  const b = mem.read(gpa, 4);
  return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
}

/** Error thrown when the version never settles (a hypervisor that leaves the record odd). */
export class PvclockTornError extends Error {
  override name = 'PvclockTornError';
}

/**
 * The guest kernel's pvclock state: `valid_flags` (pvclock_set_flags) and the single global
 * `last_value` shared by every vCPU's read, exactly as in pvclock.c.
 */
export class PvclockGuest {
  validFlags = 0;
  lastValue: Ns = 0n;
  /** Calls of pvclock_touch_watchdogs() (GUEST_STOPPED seen). */
  watchdogTouches = 0;

  /** A DataView on the flat RAM of the memory last read (see PvclockMemory.bytes). */
  private viewMem: PvclockMemory | null = null;
  private view: DataView | null = null;
  /** The last record address found inside the view, and its offset. */
  private viewGpa = -1n;
  private viewOff = 0;
  /** Word views on the same flat RAM (a little-endian host), and the record's scale factors as words. */
  private words: RamWords | null = null;
  private readonly scaler = new PvclockScaler();

  constructor(opts: { stableBitTrusted?: boolean } = {}) {
    if (opts.stableBitTrusted) this.validFlags |= PVCLOCK_TSC_STABLE_BIT;
  }

  /** The in-place view for a record at `gpa`, or null (memory without flat bytes, or out of range:
   *  the copying path then reports the bad address as the memory does). */
  private recordView(mem: PvclockMemory, gpa: bigint): DataView | null {
    if (mem !== this.viewMem) {
      const b = mem.bytes;
      this.viewMem = mem;
      this.view = b ? new DataView(b.buffer, b.byteOffset, b.byteLength) : null;
      this.words = ramWords(b);
      this.viewGpa = -1n;
    }
    const v = this.view;
    if (!v) return null;
    if (gpa === this.viewGpa) return v;
    if (gpa < 0n || gpa + BigInt(RECORD_SIZE) > BigInt(v.byteLength)) return null;
    this.viewGpa = gpa;
    this.viewOff = Number(gpa);
    return v;
  }

  /** read(...).ns without the result object: what kvm_clock_read() returns. */
  readNs(mem: PvclockMemory, gpa: bigint, rdtsc: () => Cycles): Ns {
    const v = this.recordView(mem, gpa);
    if (!v) return this.read(mem, gpa, rdtsc).ns;
    const off = this.viewOff;
    // In the model nothing writes guest memory during a read, so the version loop settles at once
    // unless the version is odd (the copying path then reports the stuck record).
    const version = v.getUint32(off + VERSION_AT, true);
    const flags = v.getUint8(off + FLAGS_AT);
    if (version & 1 || flags & GUEST_STOPPED) return this.read(mem, gpa, rdtsc).ns;
    // word views need the record's u64 fields 8-byte aligned (kvmclock's records are 64-byte apart)
    const w = this.words;
    const ret = w !== null && (off & 7) === 0 ? readCyclesWords(w, off, rdtsc(), this.scaler) : pvclockReadCyclesView(v, off, rdtsc());
    if (this.validFlags & PVCLOCK_RAW_CYCLE_BIT || (this.validFlags & TSC_STABLE && flags & TSC_STABLE)) return ret;
    if (ret <= this.lastValue) return this.lastValue;
    this.lastValue = ret;
    return ret;
  }

  /** pvclock_set_flags(). */
  setFlags(flags: number): void {
    this.validFlags = flags;
  }

  /**
   * __pvclock_clocksource_read(src, dowd = true): the version loop around the read, then the
   * GUEST_STOPPED consumption, then the monotonic guard unless stable.
   * `rdtsc` is called inside the loop (rdtsc_ordered in the kernel), once per attempt.
   */
  read(mem: PvclockMemory, gpa: bigint, rdtsc: () => Cycles, maxAttempts = 1000): PvclockReadResult {
    let attempts = 0;
    let rec: PvclockVcpuTimeInfo;
    let ret: Ns;
    for (;;) {
      attempts++;
      if (attempts > maxAttempts)
        throw new PvclockTornError(`pvclock record at 0x${gpa.toString(16)} never reached an even, unchanged version`);
      const before = decodePvclock(mem.read(gpa, PVCLOCK_VCPU_TIME_INFO_SIZE));
      const version = before.version & ~1; // pvclock_read_begin
      rec = before;
      ret = pvclockReadCycles(rec, rdtsc());
      const after = readU32(mem, gpa); // pvclock_read_retry re-reads version
      if (version === after) break;
    }
    const flags = rec.flags;
    let guestStopped = false;
    if (flags & PVCLOCK_GUEST_STOPPED) {
      // src->flags &= ~PVCLOCK_GUEST_STOPPED; pvclock_touch_watchdogs();
      const off = BigInt(PVCLOCK_VCPU_TIME_INFO_LAYOUT.flags);
      const cur = mem.read(gpa + off, 1)[0]!;
      mem.write(gpa + off, Uint8Array.of(cur & ~PVCLOCK_GUEST_STOPPED));
      this.watchdogTouches++;
      guestStopped = true;
    }
    if (this.validFlags & PVCLOCK_RAW_CYCLE_BIT || (this.validFlags & PVCLOCK_TSC_STABLE_BIT && flags & PVCLOCK_TSC_STABLE_BIT)) {
      return { ns: ret, flags, attempts, guestStopped, clamped: false };
    }
    // last_value: the value returned never goes below one any vCPU returned before.
    if (ret <= this.lastValue) return { ns: this.lastValue, flags, attempts, guestStopped, clamped: true };
    this.lastValue = ret;
    return { ns: ret, flags, attempts, guestStopped, clamped: false };
  }

  /**
   * pvclock_read_wallclock(): the boot wall clock (the wall-clock MSR record) plus the current
   * kvmclock, as a timespec in ns since the epoch.
   */
  readWallclock(
    mem: PvclockMemory,
    wallGpa: bigint,
    vcpuGpa: bigint,
    rdtsc: () => Cycles,
    maxAttempts = 1000,
  ): { sec: bigint; nsec: number } {
    let wc: ReturnType<typeof decodeWallClock>;
    let attempts = 0;
    for (;;) {
      if (++attempts > maxAttempts) throw new PvclockTornError(`wall clock record at 0x${wallGpa.toString(16)} never settled`);
      const version = readU32(mem, wallGpa);
      wc = decodeWallClock(mem.read(wallGpa, PVCLOCK_WALL_CLOCK_SIZE));
      const again = readU32(mem, wallGpa);
      if (!(again & 1) && version === again && wc.version === version) break;
    }
    const delta = this.read(mem, vcpuGpa, rdtsc).ns + BigInt(wc.sec) * NSEC_PER_SEC + BigInt(wc.nsec);
    return { sec: delta / NSEC_PER_SEC, nsec: Number(delta % NSEC_PER_SEC) };
  }
}

/** Convenience: read a record held in a plain object (no memory, no retry needed). */
export function pvclockReadRecord(rec: PvclockVcpuTimeInfo, tsc: Cycles): Ns {
  return pvclockReadCycles(rec, tsc);
}
