// One VM as KVM keeps its clock state (struct kvm_arch in arch/x86/include/asm/kvm_host.h) and the
// VM-wide clock operations of arch/x86/kvm/x86.c: the master clock (pvclock_update_vm_gtod_copy),
// TSC synchronization across vCPUs (kvm_synchronize_tsc), KVM_GET_CLOCK (get_kvmclock),
// KVM_SET_CLOCK (kvm_vm_ioctl_set_clock), KVM_SET_TSC_KHZ on the VM, the wall-clock MSR record
// (kvm_write_wall_clock / kvm_get_wall_clock_epoch) and the delayed clock-update work
// (kvmclock_update_fn every 100 ms after a global update, kvmclock_sync_fn every 300 s).
import type { Cycles, Ns } from '../core/index.ts';
import { quietScheduler, type Scheduler, type Timer } from '../core/index.ts';
import { TraceRecorder } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import { s64, u32, u64 } from '../core/index.ts';
import { NSEC_PER_MSEC, NSEC_PER_SEC } from '../core/index.ts';
import { encodeWallClock, pvclockReadCycles, pvclockScaleDelta, PVCLOCK_TSC_STABLE_BIT, type PvclockVcpuTimeInfo } from '../core/index.ts';
import type { GuestMemory } from './guest-memory.ts';
import type { HostTimekeeper } from './host-time.ts';
import { hostClockRecord, hvclockToHz, kvmclockTargetHz, kvmGetTimeScale, type TimeScale } from './timescale.ts';
import { defaultTscScalingRatio, kvmScaleTsc, NO_TSC_SCALING, type TscScalingCaps } from './tsc.ts';
import { KvmVcpu, type KvmVcpuOptions } from './vcpu.ts';

/** struct kvm_clock_data flags (include/uapi/linux/kvm.h). */
export const KVM_CLOCK_TSC_STABLE = 2;
export const KVM_CLOCK_REALTIME = 1 << 2;
export const KVM_CLOCK_HOST_TSC = 1 << 3;
export const KVM_CLOCK_VALID_FLAGS = KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;

/** KVMCLOCK_UPDATE_DELAY and KVMCLOCK_SYNC_PERIOD from arch/x86/kvm/x86.c. */
export const KVMCLOCK_UPDATE_DELAY_NS = 100n * NSEC_PER_MSEC;
export const KVMCLOCK_SYNC_PERIOD_NS = 300n * NSEC_PER_SEC;

/** struct kvm_clock_data as KVM_GET_CLOCK returns it and KVM_SET_CLOCK takes it. */
export interface KvmClockData {
  clock: Ns;
  flags: number;
  realtime: Ns;
  hostTsc: Cycles;
}

/**
 * Host-kernel KVM clock behaviours that differ between kernels. Each flag is one patch of David Woodhouse's
 * "Cleaning up the KVM clock mess" series (v6, posted 2026-07-03); none is in a released kernel as far as
 * the public sources show (docs/fidelity.md says which reached linux-next). All false = mainline.
 */
export interface KvmClockFeatures {
  /** v6 02/36 "Improve accuracy of KVM clock when TSC scaling is in force": the kvmclock scale comes from
   *  the scaled host rate in Hz, not truncated kHz (see kvmclockTargetHz). */
  hzTscScale: boolean;
  /** v6 13/36 "Fix KVM clock precision in get_kvmclock() with TSC scaling" and 14/36 "Use get_kvmclock() in
   *  kvm_get_wall_clock_epoch()" (in linux-next 2026-09-15 as abdef42276d8, c56419275caa): KVM_GET_CLOCK scales
   *  the host TSC delta to the guest's TSC and uses the guest's kvmclock scale, so it reads what the guest reads. */
  scaledGetClock: boolean;
  /** v6 05/36 "Add KVM_[GS]ET_CLOCK_GUEST for accurate KVM clock migration": the per-vCPU ioctls exist. */
  clockGuestIoctls: boolean;
}

export const MAINLINE_KVM_CLOCK: Readonly<KvmClockFeatures> = { hzTscScale: false, scaledGetClock: false, clockGuestIoctls: false };

/** A KVM ioctl's failure: the errno name KVM returns. */
export class KvmIoctlError extends Error {
  constructor(
    readonly ioctl: string,
    readonly errno: 'EINVAL' | 'ERANGE' | 'ENOTTY',
    why: string,
  ) {
    super(`${ioctl}: ${why} (${errno})`);
  }
}

/** The master clock snapshot: host TSC and kvmclock base ns read from one TSC value. */
export interface MasterClock {
  useMasterClock: boolean;
  masterKernelNs: Ns;
  masterCycleNow: Cycles;
}

export interface KvmVmOptions {
  host: HostTimekeeper;
  memory: GuestMemory;
  /** Vendor TSC scaling (VMX, SVM, or none). */
  tscScaling?: TscScalingCaps;
  /**
   * Whether the vendor applies KVM's TSC offset to the guest (VMX/SVM: yes). kvm-pvm's
   * pvm_write_tsc_offset() forces it to 0 — the guest reads the host TSC — while KVM's own
   * bookkeeping (cur_tsc_offset, generations, matching) keeps the computed offsets (arch/x86/kvm/pvm/pvm.c).
   */
  appliesTscOffset?: boolean;
  /** Drives the delayed kvmclock work; without one, no periodic sync or 100 ms fan-out happens. */
  scheduler?: Scheduler;
  /** Host-kernel clock behaviours (default: mainline). */
  clockFeatures?: KvmClockFeatures;
  /** kvmclock_periodic_sync module parameter (default true). */
  kvmclockPeriodicSync?: boolean;
  trace?: TraceRecorder;
  /** Component name in traces. */
  name?: string;
}

export class KvmVm {
  readonly host: HostTimekeeper;
  readonly memory: GuestMemory;
  readonly tscScaling: TscScalingCaps;
  readonly appliesTscOffset: boolean;
  readonly clockFeatures: KvmClockFeatures;
  readonly trace: TraceRecorder;
  readonly name: string;
  readonly vcpus: KvmVcpu[] = [];

  // struct kvm_arch clock fields
  kvmclockOffset: bigint;
  useMasterClock = false;
  masterKernelNs: Ns = 0n;
  masterCycleNow: Cycles = 0n;
  backwardsTscObserved = false;
  bootVcpuRunsOldKvmclock = false;
  defaultTscKhz: number;
  nrVcpusMatchedTsc = 0;
  curTscGeneration = 0;
  curTscNsec: Ns = 0n;
  curTscWrite: Cycles = 0n;
  curTscOffset: bigint = 0n;
  lastTscNsec: Ns = 0n;
  lastTscWrite: Cycles = 0n;
  lastTscKhz = 0;
  lastTscOffset: bigint = 0n;
  /** last_tsc_scaling_ratio, and its copy and kvmclock scale taken with each master-clock snapshot (scaledGetClock). */
  lastTscScalingRatio: bigint;
  masterTscScalingRatio: bigint;
  masterTscScale: TimeScale = { shift: 0, mul: 0 };
  userSetTsc = false;
  /** kvm->arch.wall_clock: GPA written to MSR_KVM_WALL_CLOCK(_NEW). */
  wallClockGpa = 0n;
  /** Every master-clock snapshot taken, oldest first (to explain clock differences). */
  readonly masterClockHistory: MasterClock[] = [];

  private readonly scheduler: Scheduler | null;
  private readonly updateWork: Timer | null;
  private readonly syncWork: Timer | null;
  private readonly periodicSync: boolean;

  /** kvm_arch_init_vm(): kvmclock counts from 0 at VM creation; first master-clock snapshot. */
  constructor(opts: KvmVmOptions) {
    this.host = opts.host;
    this.memory = opts.memory;
    this.tscScaling = opts.tscScaling ?? NO_TSC_SCALING;
    this.appliesTscOffset = opts.appliesTscOffset ?? true;
    this.clockFeatures = opts.clockFeatures ?? MAINLINE_KVM_CLOCK;
    this.lastTscScalingRatio = defaultTscScalingRatio(this.tscScaling);
    this.masterTscScalingRatio = this.lastTscScalingRatio;
    this.trace = opts.trace ?? TraceRecorder.off;
    this.name = opts.name ?? 'vm';
    this.scheduler = opts.scheduler ?? null;
    this.periodicSync = opts.kvmclockPeriodicSync ?? true;
    this.defaultTscKhz = this.host.tscKhz;
    this.kvmclockOffset = s64(-this.getKvmclockBaseNs());
    this.updateWork = this.scheduler ? this.scheduler.timer(() => this.kvmclockUpdateFn()) : null;
    this.syncWork = this.scheduler ? this.scheduler.timer(() => this.kvmclockSyncFn()) : null;
    // The delayed work only makes requests (and arms the update work): a quiet span may run it at its
    // time (Engine.quietParticipant); the VMM's entries then handle the requests (src/vmm/machine.ts).
    const q = this.scheduler ? quietScheduler(this.scheduler) : null;
    if (q?.quietParticipant && this.updateWork && this.syncWork) {
      q.quietParticipant(this.updateWork, () => null);
      q.quietParticipant(this.syncWork, (at) => at + KVMCLOCK_SYNC_PERIOD_NS, [this.updateWork]);
    }
    this.pvclockUpdateVmGtodCopy();
  }

  /** The model's "now" for traces: the scheduler's time if any, else the host TSC. */
  traceNow(): Ns {
    return this.scheduler ? this.scheduler.now : 0n;
  }

  /** get_kvmclock_base_ns(): CLOCK_MONOTONIC_RAW + boot offset, read now. */
  getKvmclockBaseNs(): Ns {
    return this.host.baseNsAt(this.host.rdtsc());
  }

  /** KVM_CREATE_VCPU: kvm_arch_vcpu_create + online_vcpus++ + kvm_arch_vcpu_postcreate. */
  createVcpu(opts: Omit<KvmVcpuOptions, 'vm' | 'id'> = {}): KvmVcpu {
    const vcpu = new KvmVcpu({ ...opts, vm: this, id: this.vcpus.length });
    this.vcpus.push(vcpu);
    vcpu.postcreate();
    if (this.periodicSync && vcpu.id === 0 && this.syncWork) this.syncWork.armIn(KVMCLOCK_SYNC_PERIOD_NS);
    return vcpu;
  }

  get onlineVcpus(): number {
    return this.vcpus.length;
  }

  /** KVM_SET_TSC_KHZ on the VM fd: the default for vCPUs created later; refused once a vCPU exists. */
  setDefaultTscKhz(userTscKhz: number): void {
    if (this.vcpus.length > 0) throw new InputError('KVM_SET_TSC_KHZ on the VM is only allowed before any vCPU is created (EINVAL)');
    this.defaultTscKhz = userTscKhz === 0 ? this.host.tscKhz : userTscKhz;
  }

  /**
   * pvclock_update_vm_gtod_copy(): take one master-clock snapshot (master_kernel_ns and
   * master_cycle_now from the same TSC reading) and decide whether the master clock is usable.
   */
  pvclockUpdateVmGtodCopy(cpu = 0): void {
    const vcpusMatched = this.nrVcpusMatchedTsc + 1 === this.onlineVcpus;
    const hostTscClocksource = this.host.clocksourceIsTsc;
    if (hostTscClocksource) {
      // kvm_get_time_and_clockread → vgettsc: the TSC of the CPU handling the request (host time from
      // it as well: a host that trusts unsynchronised TSCs reads its clock from whichever CPU it is on)
      const tsc = this.host.rdtscOn ? this.host.rdtscOn(cpu) : this.host.rdtsc();
      this.masterCycleNow = tsc;
      this.masterKernelNs = this.host.baseNsAt(tsc);
    }
    this.useMasterClock = hostTscClocksource && vcpusMatched && !this.backwardsTscObserved && !this.bootVcpuRunsOldKvmclock;
    if (this.useMasterClock && this.clockFeatures.scaledGetClock) {
      // the guest-TSC scale get_kvmclock() uses, computed as kvm_guest_time_update() does (v6 13/36)
      this.masterTscScalingRatio = this.lastTscScalingRatio;
      const hz = kvmclockTargetHz(this.host.tscKhz, this.masterTscScalingRatio, this.tscScaling, this.clockFeatures.hzTscScale);
      this.masterTscScale = kvmGetTimeScale(NSEC_PER_SEC, hz);
    }
    this.masterClockHistory.push({
      useMasterClock: this.useMasterClock,
      masterKernelNs: this.masterKernelNs,
      masterCycleNow: this.masterCycleNow,
    });
    if (this.trace.on) {
      this.trace.instant(this.traceNow(), this.name, 'pvclock_update_vm_gtod_copy', ['kvm_update_masterclock'], {
        use_master_clock: this.useMasterClock,
        master_kernel_ns: this.masterKernelNs,
        master_cycle_now: this.masterCycleNow,
        vcpus_matched: vcpusMatched,
      });
      // trace_kvm_update_master_clock(use_master_clock, vclock_mode, vcpus_matched) at its end (x86.c)
      this.trace.instant(this.traceNow(), this.name, 'kvm_update_master_clock', ['kvm_update_masterclock', 'pvclock_update_vm_gtod_copy'], {
        use_master_clock: this.useMasterClock,
        host_clock: hostTscClocksource ? 'tsc' : 'none',
        offset_matched: vcpusMatched,
      });
    }
  }

  /** kvm_update_masterclock(): new snapshot (on the requesting vCPU's CPU), then KVM_REQ_CLOCK_UPDATE on every vCPU. */
  updateMasterclock(cpu = 0): void {
    this.pvclockUpdateVmGtodCopy(cpu);
    this.endPvclockUpdate();
  }

  /** kvm_end_pvclock_update(): every vCPU must refresh its pvclock record. */
  endPvclockUpdate(): void {
    for (const v of this.vcpus) v.makeRequest('CLOCK_UPDATE');
    // kvm_make_mclock_inprogress_request() kicked every vCPU out of the guest; they re-enter now.
    for (const v of this.vcpus) v.kick();
  }

  /** The scale KVM's VM-wide paths use: get_cpu_tsc_khz() = tsc_khz with a constant TSC. */
  /** The current master-clock snapshot as a pvclock record in host-TSC terms (see hostClockRecord). */
  masterClockRecord(): ReturnType<typeof hostClockRecord> {
    return hostClockRecord(this, this.kvmclockOffset, this.host.tscKhz);
  }

  /**
   * get_kvmclock() → __get_kvmclock(): KVM_GET_CLOCK. With the master clock, KVM builds a pvclock
   * record in host-TSC terms from the *current* master-clock snapshot (master_cycle_now,
   * master_kernel_ns + kvmclock_offset, host tsc_khz scale) and reads it at a fresh host TSC, taking
   * CLOCK_REALTIME from the same TSC reading. Without it, clock = get_kvmclock_base_ns() + offset.
   */
  getClock(): KvmClockData {
    if (this.useMasterClock) {
      const hostTsc = this.host.rdtsc();
      let flags = KVM_CLOCK_TSC_STABLE;
      let realtime = 0n;
      if (this.host.clocksourceIsTsc) {
        realtime = this.host.realtimeNsAt(hostTsc);
        flags |= KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
      }
      return { clock: this.masterClockAt(hostTsc), flags, realtime, hostTsc };
    }
    return { clock: u64(this.getKvmclockBaseNs() + this.kvmclockOffset), flags: 0, realtime: 0n, hostTsc: 0n };
  }

  /**
   * kvmclock at a host TSC through the current master-clock snapshot, as get_kvmclock() computes it.
   * Mainline: a record in host-TSC terms at the host's scale. With scaledGetClock (v6 13/36): the host TSC
   * delta scaled by the snapshot's TSC ratio (kvm_scale_tsc), then the guest's kvmclock scale.
   */
  masterClockAt(hostTsc: Cycles): Ns {
    if (!this.clockFeatures.scaledGetClock) return pvclockReadCycles(this.masterClockRecord(), hostTsc);
    const systemTime = u64(this.masterKernelNs + this.kvmclockOffset);
    const { mul, shift } = this.masterTscScale;
    if (!this.tscScaling.hasTscControl)
      return pvclockReadCycles({ tscTimestamp: this.masterCycleNow, systemTime, tscToSystemMul: mul, tscShift: shift }, hostTsc);
    const delta = kvmScaleTsc(u64(hostTsc - this.masterCycleNow), this.masterTscScalingRatio, this.tscScaling);
    return u64(systemTime + pvclockScaleDelta(delta, mul, shift));
  }

  /** get_kvmclock_ns(). */
  getKvmclockNs(): Ns {
    return this.getClock().clock;
  }

  /**
   * kvm_vm_ioctl_set_clock(): KVM_SET_CLOCK. Takes a fresh master-clock snapshot, moves the clock
   * forward by the realtime elapsed since data.realtime when KVM_CLOCK_REALTIME is set (never
   * backwards), and sets kvmclock_offset so that kvmclock reads data.clock at the snapshot.
   */
  setClock(data: { clock: Ns; flags?: number; realtime?: Ns }): void {
    const flags = data.flags ?? 0;
    if ((flags & ~KVM_CLOCK_VALID_FLAGS) !== 0) throw new InputError(`KVM_SET_CLOCK: invalid flags 0x${flags.toString(16)} (EINVAL)`);
    this.pvclockUpdateVmGtodCopy();
    let clock = data.clock;
    if (flags & KVM_CLOCK_REALTIME) {
      const nowRealNs = this.host.realtimeNsAt(this.host.rdtsc());
      const realtime = data.realtime ?? 0n;
      if (nowRealNs > realtime) clock = u64(clock + (nowRealNs - realtime));
    }
    const nowRawNs = this.useMasterClock ? this.masterKernelNs : this.getKvmclockBaseNs();
    this.kvmclockOffset = s64(clock - nowRawNs);
    if (this.trace.on)
      this.trace.instant(this.traceNow(), this.name, 'kvm_vm_ioctl_set_clock', [], { clock, kvmclock_offset: this.kvmclockOffset });
    this.endPvclockUpdate();
  }

  /**
   * KVM_GET_CLOCK_GUEST (kvm_vcpu_ioctl_get_clock_guest, dwmw2 series v6 05/36): the vCPU's pvclock record
   * exactly as kvm_guest_time_update() writes it — tsc_timestamp = the guest TSC at master_cycle_now,
   * system_time = master_kernel_ns + kvmclock_offset, the vCPU's own kvmclock scale — after running a
   * pending clock update. Only in master-clock mode (EINVAL otherwise: the clock is not a function of the TSC).
   */
  getClockGuest(v: KvmVcpu): PvclockVcpuTimeInfo {
    const name = 'KVM_GET_CLOCK_GUEST';
    if (!this.clockFeatures.clockGuestIoctls) throw new KvmIoctlError(name, 'ENOTTY', 'not in this host kernel');
    if (v.checkRequest('CLOCK_UPDATE') || v.hwTscHz === 0n) v.guestTimeUpdate();
    if (!this.useMasterClock) throw new KvmIoctlError(name, 'EINVAL', 'KVM is not in master-clock mode');
    return {
      version: 0,
      tscTimestamp: v.readL1Tsc(this.masterCycleNow),
      systemTime: u64(this.masterKernelNs + this.kvmclockOffset),
      tscToSystemMul: v.pvclockScale.mul,
      tscShift: v.pvclockScale.shift,
      flags: PVCLOCK_TSC_STABLE_BIT,
    };
  }

  /**
   * KVM_SET_CLOCK_GUEST (kvm_vcpu_ioctl_set_clock_guest, v6 05/36): take a new master-clock snapshot, read
   * the user's pvclock record at the guest TSC of that snapshot, and set kvmclock_offset so KVM's clock
   * reads exactly that there — the guest's kvmclock stays the same function of its TSC. Refused when the
   * record's rate is more than 1 kHz from the vCPU's scaled TSC rate (ERANGE), outside master-clock mode
   * or with a guest TSC behind the record (EINVAL); every vCPU gets a clock update either way.
   */
  setClockGuest(v: KvmVcpu, rec: Pick<PvclockVcpuTimeInfo, 'tscTimestamp' | 'systemTime' | 'tscToSystemMul' | 'tscShift'>): void {
    const name = 'KVM_SET_CLOCK_GUEST';
    if (!this.clockFeatures.clockGuestIoctls) throw new KvmIoctlError(name, 'ENOTTY', 'not in this host kernel');
    if (rec.tscToSystemMul === 0) throw new KvmIoctlError(name, 'EINVAL', 'tsc_to_system_mul is 0');
    if (rec.tscShift < -31 || rec.tscShift > 31) throw new KvmIoctlError(name, 'EINVAL', `tsc_shift ${rec.tscShift} outside -31…31`);
    const userHz = hvclockToHz(rec.tscToSystemMul, rec.tscShift);
    this.pvclockUpdateVmGtodCopy();
    try {
      if (!this.useMasterClock) throw new KvmIoctlError(name, 'EINVAL', 'KVM is not in master-clock mode');
      let curHz = BigInt(this.host.tscKhz) * 1000n;
      if (this.tscScaling.hasTscControl) curHz = kvmScaleTsc(curHz, v.l1TscScalingRatio, this.tscScaling);
      if (userHz < curHz - 1000n || userHz > curHz + 1000n)
        throw new KvmIoctlError(name, 'ERANGE', `the record's ${userHz} Hz is more than 1 kHz from the vCPU's ${curHz} Hz`);
      const guestTsc = v.readL1Tsc(this.masterCycleNow);
      if (guestTsc < rec.tscTimestamp) throw new KvmIoctlError(name, 'EINVAL', 'guest TSC is behind the record');
      this.kvmclockOffset = s64(pvclockReadCycles(rec, guestTsc) - this.masterKernelNs);
      if (this.trace.on)
        this.trace.instant(this.traceNow(), this.name, 'kvm_vcpu_ioctl_set_clock_guest', [], {
          guest_tsc: guestTsc,
          kvmclock_offset: this.kvmclockOffset,
        });
    } finally {
      this.endPvclockUpdate();
    }
  }

  /**
   * kvm_get_wall_clock_epoch(): CLOCK_REALTIME at which kvmclock read 0. With the master clock,
   * realtime and kvmclock come from one TSC reading; otherwise from two separate reads.
   */
  getWallClockEpoch(): Ns {
    if (this.useMasterClock && this.host.clocksourceIsTsc) {
      // mainline builds the host-TSC record itself; v6 14/36 calls get_kvmclock(): the same arithmetic as KVM_GET_CLOCK
      const hostTsc = this.host.rdtsc();
      return u64(this.host.realtimeNsAt(hostTsc) - this.masterClockAt(hostTsc));
    }
    return u64(this.host.realtimeNsAt(this.host.rdtsc()) - this.getKvmclockNs());
  }

  /**
   * kvm_write_wall_clock(): the pvclock_wall_clock record at `gpa` (version bumped odd, then the
   * epoch's sec/nsec, then even). sec is truncated to u32 ("overflow in 2106 guest time").
   */
  writeWallClock(gpa: bigint, secHiOfs = 0): void {
    if (gpa === 0n) return;
    const old = new DataView(this.memory.read(gpa, 4).buffer).getUint32(0, true);
    let version = old;
    if (version & 1) version += 1; // first time write, random junk
    version = (version + 1) >>> 0;
    this.memory.write(gpa, encodeWallClock({ version, sec: 0, nsec: 0 }).subarray(0, 4));
    const wallNsec = this.getWallClockEpoch();
    const sec = wallNsec / NSEC_PER_SEC;
    const nsec = Number(wallNsec % NSEC_PER_SEC);
    this.memory.write(gpa, encodeWallClock({ version, sec: Number(u32(sec)), nsec }));
    if (secHiOfs) {
      const hi = new Uint8Array(4);
      new DataView(hi.buffer).setUint32(0, Number(u32(sec >> 32n)), true);
      this.memory.write(gpa + BigInt(secHiOfs), hi);
    }
    version = (version + 1) >>> 0;
    this.memory.write(gpa, encodeWallClock({ version, sec: 0, nsec: 0 }).subarray(0, 4));
    if (this.trace.on) this.trace.instant(this.traceNow(), this.name, 'kvm_write_wall_clock', [], { gpa, sec, nsec });
  }

  /** kvm_gen_kvmclock_update()'s delayed part: fan the update out to all vCPUs after 100 ms. */
  scheduleKvmclockUpdate(delayNs: Ns): void {
    if (this.updateWork && !this.updateWork.pending) this.updateWork.armIn(delayNs);
  }

  /** When the periodic kvmclock_sync_fn runs next (null: not armed). */
  get kvmclockSyncAt(): Ns | null {
    return this.syncWork?.expires ?? null;
  }

  /** When the delayed kvmclock_update_fn runs (null: not armed). */
  get kvmclockUpdateAt(): Ns | null {
    return this.updateWork?.expires ?? null;
  }

  /** How many times kvmclock_update_fn has run: a quiet span counts the clock updates it requested. */
  kvmclockUpdates = 0;

  /** kvmclock_update_fn(): KVM_REQ_CLOCK_UPDATE + kick on every vCPU. */
  private kvmclockUpdateFn(): void {
    this.kvmclockUpdates++;
    if (this.trace.on) this.trace.instant(this.traceNow(), this.name, 'kvmclock_update_fn', []);
    for (const v of this.vcpus) {
      v.makeRequest('CLOCK_UPDATE');
      v.kick();
    }
  }

  /** kvmclock_sync_fn(): every 300 s, run the update work now and re-arm. */
  private kvmclockSyncFn(): void {
    if (this.trace.on) this.trace.instant(this.traceNow(), this.name, 'kvmclock_sync_fn', []);
    this.scheduleKvmclockUpdate(0n);
    this.syncWork?.armIn(KVMCLOCK_SYNC_PERIOD_NS);
  }

  /** Release the delayed work (VM destruction). */
  destroy(): void {
    this.updateWork?.cancel();
    this.syncWork?.cancel();
  }
}
