// One vCPU's clock state (struct kvm_vcpu_arch) and its clock paths in arch/x86/kvm/x86.c:
// the guest TSC (offset + scaling, kvm_read_l1_tsc), kvm_set_tsc_khz, kvm_synchronize_tsc and TSC
// MSR writes, the kvmclock MSRs (kvm_write_system_time), the per-vCPU pvclock record
// (kvm_guest_time_update → kvm_setup_guest_pvclock), KVMCLOCK_CTRL (kvm_set_guest_paused), steal
// time (record_steal_time, kvm_steal_time_set_preempted), and the request processing of
// vcpu_enter_guest in the order KVM checks the requests.
import type { Cycles, Ns, TscPlan } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import { s64, u64, withTscAdd } from '../core/index.ts';
import {
  KVM_MSR_ENABLED,
  KVM_STEAL_RESERVED_MASK,
  KVM_STEAL_TIME_LAYOUT,
  KVM_STEAL_VALID_BITS,
  KVM_VCPU_PREEMPTED,
  MSR_IA32_TSC,
  MSR_IA32_TSC_ADJUST,
  MSR_KVM_STEAL_TIME,
  MSR_KVM_SYSTEM_TIME,
  MSR_KVM_SYSTEM_TIME_NEW,
  MSR_KVM_WALL_CLOCK,
  MSR_KVM_WALL_CLOCK_NEW,
  PVCLOCK_GUEST_STOPPED,
  PVCLOCK_TSC_STABLE_BIT,
  PVCLOCK_VCPU_TIME_INFO_LAYOUT,
  PVCLOCK_VCPU_TIME_INFO_SIZE,
  decodePvclock,
  decodeStealTime,
  encodePvclock,
  pvclockScaleDelta,
  putLe32,
  le32,
  putLe64,
  type PvclockVcpuTimeInfo,
  type RamWords,
} from '../core/index.ts';
import type { KvmVm } from './kvm.ts';
import { KVMCLOCK_UPDATE_DELAY_NS } from './kvm.ts';
import { kvmGetTimeScale, kvmclockTargetHz, nsecToCycles, type TimeScale } from './timescale.ts';
import { TSC_TOLERANCE_PPM, adjustTscKhz, defaultTscScalingRatio, kvmScaleTsc, tscScalingRatio } from './tsc.ts';

/** The KVM requests this model processes, in vcpu_enter_guest's order. */
export type KvmRequest = 'MASTERCLOCK_UPDATE' | 'GLOBAL_CLOCK_UPDATE' | 'CLOCK_UPDATE' | 'STEAL_UPDATE';
const REQUEST_ORDER: readonly KvmRequest[] = ['MASTERCLOCK_UPDATE', 'GLOBAL_CLOCK_UPDATE', 'CLOCK_UPDATE', 'STEAL_UPDATE'];
// Module-level copies of the record layouts read on every entry: an imported binding read in a hot
// function costs a re-export getter call per access under tsx's module transform.
const STEAL_LAYOUT = { ...KVM_STEAL_TIME_LAYOUT };
const PVCLOCK_LAYOUT = { ...PVCLOCK_VCPU_TIME_INFO_LAYOUT };

export interface KvmVcpuOptions {
  vm: KvmVm;
  id: number;
  /** The vCPU thread's sched_info.run_delay (ns it waited runnable), read at guest entry. */
  runDelayNs?: () => Ns;
  /** RDTSC exiting, as a VMM that traps RDTSC sets it up (see RdtscExiting). */
  rdtscExiting?: RdtscExiting;
}

/**
 * RDTSC exiting: the VMM sets CPU_BASED_RDTSC_EXITING (VMX) / the RDTSC intercept (SVM), so every guest
 * RDTSC exits and is answered with the guest TSC at the exit (KVM's em_rdtsc reads MSR_IA32_TSC,
 * arch/x86/kvm/emulate.c; upstream KVM sets no RDTSC exiting for its own guests: vmx.c leaves the
 * control clear, nested.c only reflects EXIT_REASON_RDTSC to an L1 that asked for it). Each exit takes
 * `exitCostNs` of real time. With `offsetCompensation` the VMM subtracts each exit's time from the TSC
 * offset, so the guest TSC does not count the exits and runs slow by `ratePerSec · exitCostNs` ns per
 * second; the model spreads those exits evenly over host time (a steady RDTSC rate).
 */
export interface RdtscExiting {
  exitCostNs: Ns;
  offsetCompensation: boolean;
  /** Guest RDTSCs per second on this vCPU (the workload's, the kernel's clock reads included). */
  ratePerSec: number;
}

export class KvmVcpu {
  readonly vm: KvmVm;
  readonly id: number;
  private readonly runDelayNs: () => Ns;
  private readonly requests = new Set<KvmRequest>();
  readonly rdtscExiting: RdtscExiting | null;
  /** CPU 0's host TSC when RDTSC exiting started counting compensated exits. */
  private readonly rdtscExitingSince: Cycles;

  // TSC (kvm_vcpu_arch)
  virtualTscKhz = 0;
  virtualTsc: TimeScale = { shift: 0, mul: 0 };
  /** kvm_vcpu_arch.l1_tsc_offset (u64). */
  get l1TscOffset(): bigint {
    return this.l1TscOffsetU64;
  }
  set l1TscOffset(v: bigint) {
    this.l1TscOffsetU64 = u64(v);
    this.l1TscOffsetS64 = s64(v); // the same sum mod 2^64 in readL1Tsc without a 65-bit BigInt operand
  }
  private l1TscOffsetU64 = 0n;
  private l1TscOffsetS64 = 0n;
  /** defaultTscScalingRatio(vm.tscScaling): the ratio that scales nothing. */
  private readonly unitRatio: bigint;
  l1TscScalingRatio: bigint;
  tscCatchup = false;
  tscAlwaysCatchup = false;
  thisTscGeneration = 0;
  thisTscNsec: Ns = 0n;
  thisTscWrite: Cycles = 0n;
  lastGuestTsc: Cycles = 0n;
  lastHostTsc: Cycles = 0n;
  ia32TscAdjustMsr: bigint = 0n;

  // kvmclock
  /** vcpu->arch.time: the value written to MSR_KVM_SYSTEM_TIME(_NEW). */
  systemTimeMsr = 0n;
  pvTimeActive = false;
  /** hw_tsc_hz: the TSC rate the kvmclock scale was last built from (kvmclockTargetHz). */
  hwTscHz = 0n;
  pvclockScale: TimeScale = { shift: 0, mul: 0 };
  pvclockSetGuestStoppedRequest = false;
  /** The last record KVM wrote (hv_clock as built in kvm_guest_time_update), for inspection. */
  lastPvclock: PvclockVcpuTimeInfo | null = null;

  // steal time (vcpu->arch.st)
  /** MSR_KVM_STEAL_TIME as written (vcpu->arch.st.msr_val). */
  get stealMsr(): bigint {
    return this.stealMsrVal;
  }
  set stealMsr(v: bigint) {
    this.stealMsrVal = v;
    this.stealOn = (v & KVM_MSR_ENABLED) !== 0n;
    const gpa = v & KVM_STEAL_VALID_BITS;
    // the record in place when it lies in flat RAM; else (no word views, a bad GPA) through read/write
    const ram = this.vm.memory.words;
    this.stealOff = ram && gpa + 64n <= BigInt(ram.u8.length) ? Number(gpa) : -1;
  }
  private stealMsrVal = 0n;
  private stealOn = false;
  /** Byte offset of the steal-time record in vm.memory.words, or -1. */
  private stealOff = -1;
  lastSteal: Ns = 0n;
  stealPreempted = 0;

  /** vcpu->cpu: -1 until first loaded. */
  cpu = -1;
  /** Between vcpu_load and vcpu_put: a kick is handled at once. */
  running = false;
  private inEntry = false;

  constructor(opts: KvmVcpuOptions) {
    this.vm = opts.vm;
    this.id = opts.id;
    this.runDelayNs = opts.runDelayNs ?? (() => 0n);
    this.rdtscExiting = opts.rdtscExiting ?? null;
    this.rdtscExitingSince = this.vm.host.rdtsc();
    this.l1TscScalingRatio = defaultTscScalingRatio(this.vm.tscScaling);
    this.unitRatio = this.l1TscScalingRatio;
    // kvm_arch_vcpu_create(): kvm_set_tsc_khz(vcpu, kvm->arch.default_tsc_khz)
    this.setTscKhz(this.vm.defaultTscKhz);
  }

  /** kvm_arch_vcpu_postcreate(): synchronize the new vCPU's TSC with the others (value 0). */
  postcreate(): void {
    this.synchronizeTsc(null);
  }

  makeRequest(req: KvmRequest): void {
    this.requests.add(req);
  }

  hasRequest(req: KvmRequest): boolean {
    return this.requests.has(req);
  }

  /** kvm_check_request(): test and clear. */
  checkRequest(req: KvmRequest): boolean {
    return this.requests.delete(req);
  }

  /** kvm_vcpu_kick(): a running vCPU exits and re-enters at once, handling its requests. */
  kick(): void {
    if (this.running && !this.inEntry) this.enterGuest();
  }

  // ---------------------------------------------------------------- TSC

  /**
   * rdtsc() on the host CPU this vCPU is loaded on (CPU 0 before its first load: KVM_CREATE_VCPU runs
   * on the VMM's thread). Hosts whose TSCs are not synchronised give each CPU its own value.
   */
  hostRdtsc(cpu: number = this.cpu): Cycles {
    const host = this.vm.host;
    return host.rdtscOn ? host.rdtscOn(cpu < 0 ? 0 : cpu) : host.rdtsc();
  }

  /**
   * The TSC offset an RDTSC-exiting VMM has subtracted so far (guest cycles): one exit's time per
   * guest RDTSC at ratePerSec, counted on CPU 0's TSC since the vCPU was created.
   */
  rdtscCompensation(): bigint {
    const x = this.rdtscExiting;
    if (!x?.offsetCompensation) return 0n;
    const host = this.vm.host;
    const elapsed = host.rdtsc() - this.rdtscExitingSince;
    // exits so far = elapsed / hostHz · rate; each hides exitCostNs · hostHz / 10^9 host cycles
    const hostCycles = (elapsed * BigInt(Math.round(x.ratePerSec)) * x.exitCostNs) / 1_000_000_000n;
    return kvmScaleTsc(hostCycles, this.l1TscScalingRatio, this.vm.tscScaling);
  }

  /**
   * readL1Tsc() as a TscPlan, given the host TSC's (`hostPlan`, the one hostRdtsc reads): the host TSC
   * plus l1_tsc_offset, mod 2^64, at the default ratio without RDTSC exiting; null otherwise.
   */
  tscPlan(hostPlan: TscPlan | null): TscPlan | null {
    if (this.rdtscExiting !== null || this.l1TscScalingRatio !== this.unitRatio) return null;
    return withTscAdd(hostPlan, this.l1TscOffsetS64);
  }

  /** kvm_read_l1_tsc(): the TSC the guest reads when the host TSC is `hostTsc`. */
  readL1Tsc(hostTsc: Cycles = this.hostRdtsc()): Cycles {
    // l1_tsc_offset + kvm_scale_tsc(host_tsc, ratio), a u64 sum (x86.c); at the default ratio
    // kvm_scale_tsc is the TSC itself. asUintN(64) lets V8 add in int64 instead of allocating.
    if (this.rdtscExiting === null && this.l1TscScalingRatio === this.unitRatio)
      return BigInt.asUintN(64, this.l1TscOffsetS64 + BigInt.asUintN(64, hostTsc));
    // the signed offset: the same sum mod 2^64 without a 65-bit BigInt operand
    const offset = this.rdtscExiting ? this.l1TscOffsetS64 - this.rdtscCompensation() : this.l1TscOffsetS64;
    // kvm_scale_tsc() at the default ratio is the TSC itself (checked here without rebuilding the ratio)
    const scaled =
      this.l1TscScalingRatio === this.unitRatio ? u64(hostTsc) : kvmScaleTsc(hostTsc, this.l1TscScalingRatio, this.vm.tscScaling);
    return u64(offset + scaled);
  }

  /**
   * A guest RDTSC. Natively it reads the TSC (kvm_read_l1_tsc's value, no exit); with RDTSC exiting
   * it exits and KVM answers as em_rdtsc does — MSR_IA32_TSC read at the exit, the same value.
   */
  guestRdtsc(): Cycles {
    return this.readL1Tsc();
  }

  /** kvm_compute_l1_tsc_offset(): the offset that makes the guest TSC read `targetTsc` now (on `cpu`). */
  private computeL1TscOffset(targetTsc: Cycles, cpu: number = this.cpu): bigint {
    const comp = this.rdtscExiting ? this.rdtscCompensation() : 0n;
    return u64(targetTsc + comp - kvmScaleTsc(this.hostRdtsc(cpu), this.l1TscScalingRatio, this.vm.tscScaling));
  }

  /** kvm_vcpu_write_tsc_offset() → vendor write_tsc_offset (kvm-pvm drops it: see KvmVmOptions). */
  private writeTscOffset(offset: bigint): void {
    const prev = this.l1TscOffset;
    this.l1TscOffset = this.vm.appliesTscOffset ? u64(offset) : 0n;
    // trace_kvm_write_tsc_offset(vcpu_id, l1_tsc_offset, l1_offset) in kvm_vcpu_write_tsc_offset (x86.c)
    const vm = this.vm;
    if (vm.trace.on)
      vm.trace.instant(vm.traceNow(), `${vm.name}/vcpu${this.id}`, 'kvm_write_tsc_offset', ['kvm_vcpu_write_tsc_offset'], {
        vcpu_id: this.id,
        previous_tsc_offset: prev,
        next_tsc_offset: u64(offset),
      });
  }

  /**
   * kvm_set_tsc_khz() (KVM_SET_TSC_KHZ on the vCPU): virtual_tsc scale for nsec_to_cycles, and a
   * scaling ratio (or catch-up without hardware scaling) when the rate is outside ±250 ppm.
   */
  setTscKhz(userTscKhz: number): void {
    const caps = this.vm.tscScaling;
    if (userTscKhz === 0) {
      this.l1TscScalingRatio = defaultTscScalingRatio(caps);
      throw new InputError('KVM_SET_TSC_KHZ: 0 kHz (EINVAL)');
    }
    this.virtualTsc = kvmGetTimeScale(BigInt(userTscKhz) * 1000n, 1_000_000_000n);
    this.virtualTscKhz = userTscKhz;
    const hostKhz = this.vm.host.tscKhz;
    const lo = adjustTscKhz(hostKhz, -TSC_TOLERANCE_PPM);
    const hi = adjustTscKhz(hostKhz, TSC_TOLERANCE_PPM);
    const useScaling = userTscKhz < lo || userTscKhz > hi;
    if (!useScaling) {
      this.l1TscScalingRatio = defaultTscScalingRatio(caps);
      return;
    }
    if (!caps.hasTscControl) {
      if (userTscKhz > hostKhz) {
        this.tscCatchup = true;
        this.tscAlwaysCatchup = true;
        return;
      }
      throw new InputError(
        `KVM_SET_TSC_KHZ: ${userTscKhz} kHz is below the host's ${hostKhz} kHz and the CPU cannot scale the TSC (EINVAL)`,
      );
    }
    const ratio = tscScalingRatio(userTscKhz, hostKhz, caps);
    if (ratio === 0n || ratio >= caps.maxRatio)
      throw new InputError(`KVM_SET_TSC_KHZ: invalid TSC scaling ratio for ${userTscKhz} kHz (EINVAL)`);
    this.l1TscScalingRatio = ratio;
  }

  /**
   * kvm_synchronize_tsc(): a TSC write from the host (`value` = null on vCPU creation). Writes of 0,
   * and host writes within one second of the expected value once userspace has set a TSC, are taken
   * as "meant to be in sync" and reuse the current generation's offset, so vCPUs created or restored
   * together share one TSC.
   */
  synchronizeTsc(value: Cycles | null): void {
    const vm = this.vm;
    let data = value ?? 0n;
    let offset = this.computeL1TscOffset(data);
    const ns = vm.getKvmclockBaseNs();
    const elapsed = u64(ns - vm.lastTscNsec);
    let synchronizing = false;
    let matched = false;
    if (this.virtualTscKhz) {
      if (data === 0n) {
        synchronizing = true;
      } else if (vm.userSetTsc) {
        const tscExp = u64(vm.lastTscWrite + nsecToCycles(elapsed, this.virtualTsc));
        const tscHz = BigInt(this.virtualTscKhz) * 1000n;
        synchronizing = data < tscExp + tscHz && data + tscHz > tscExp;
      }
    }
    if (synchronizing && this.virtualTscKhz === vm.lastTscKhz) {
      if (!vm.host.tscUnstable) {
        offset = vm.curTscOffset;
      } else {
        data = u64(data + nsecToCycles(elapsed, this.virtualTsc));
        offset = this.computeL1TscOffset(data);
      }
      matched = true;
    }
    this.__synchronizeTsc(offset, data, ns, matched, value !== null);
  }

  private __synchronizeTsc(offset: bigint, tsc: Cycles, ns: Ns, matched: boolean, userSetTsc: boolean): void {
    const vm = this.vm;
    if (userSetTsc) vm.userSetTsc = true;
    vm.lastTscNsec = ns;
    vm.lastTscWrite = tsc;
    vm.lastTscKhz = this.virtualTscKhz;
    vm.lastTscOffset = offset;
    vm.lastTscScalingRatio = this.l1TscScalingRatio;
    this.lastGuestTsc = tsc;
    this.writeTscOffset(offset);
    if (!matched) {
      vm.curTscGeneration++;
      vm.curTscNsec = ns;
      vm.curTscWrite = tsc;
      vm.curTscOffset = offset;
      vm.nrVcpusMatchedTsc = 0;
    } else if (this.thisTscGeneration !== vm.curTscGeneration) {
      vm.nrVcpusMatchedTsc++;
    }
    this.thisTscGeneration = vm.curTscGeneration;
    this.thisTscNsec = vm.curTscNsec;
    this.thisTscWrite = vm.curTscWrite;
    this.trackTscMatching(!matched);
    if (vm.trace.on)
      vm.trace.instant(vm.traceNow(), `${vm.name}/vcpu${this.id}`, 'kvm_synchronize_tsc', [], {
        offset,
        tsc,
        matched,
        generation: vm.curTscGeneration,
      });
  }

  /** kvm_track_tsc_matching(): request a master-clock update when it must toggle or re-snapshot. */
  private trackTscMatching(newGeneration: boolean): void {
    const vm = this.vm;
    const use = vm.nrVcpusMatchedTsc + 1 === vm.onlineVcpus && vm.host.clocksourceIsTsc;
    if ((vm.useMasterClock && newGeneration) || vm.useMasterClock !== use) this.makeRequest('MASTERCLOCK_UPDATE');
    // trace_kvm_track_tsc at the end of kvm_track_tsc_matching (x86.c)
    if (vm.trace.on)
      vm.trace.instant(vm.traceNow(), `${vm.name}/vcpu${this.id}`, 'kvm_track_tsc', ['kvm_synchronize_tsc', 'kvm_track_tsc_matching'], {
        vcpu_id: this.id,
        nr_vcpus_matched_tsc: vm.nrVcpusMatchedTsc,
        online_vcpus: vm.onlineVcpus,
        use_master_clock: vm.useMasterClock,
        host_clock: vm.host.clocksourceIsTsc ? 'tsc' : 'none',
      });
  }

  /** compute_guest_tsc(): where the guest TSC should be at kernel_ns (used for catch-up). */
  private computeGuestTsc(kernelNs: Ns): Cycles {
    return u64(pvclockScaleDelta(u64(kernelNs - this.thisTscNsec), this.virtualTsc.mul, this.virtualTsc.shift) + this.thisTscWrite);
  }

  // ---------------------------------------------------------------- MSRs

  /**
   * kvm_set_msr_common() for the clock MSRs. Returns false where KVM would inject #GP (guest) or
   * fail the ioctl (host). `hostInitiated` = KVM_SET_MSRS from userspace.
   */
  setMsr(index: number, data: bigint, hostInitiated = false): boolean {
    data = u64(data);
    const ok = this.setMsrCommon(index, data, hostInitiated);
    // trace_kvm_msr_write / trace_kvm_msr_write_ex in kvm_emulate_wrmsr (x86.c): guest WRMSR exits only
    const vm = this.vm;
    if (!hostInitiated && vm.trace.on)
      vm.trace.instant(vm.traceNow(), `${vm.name}/vcpu${this.id}`, 'kvm_msr', ['vcpu_enter_guest', 'kvm_emulate_wrmsr'], {
        write: 1,
        ecx: index,
        data,
        exception: !ok,
      });
    return ok;
  }

  /** kvm_set_msr_common() proper. */
  private setMsrCommon(index: number, data: bigint, hostInitiated: boolean): boolean {
    switch (index) {
      case MSR_IA32_TSC:
        if (hostInitiated) {
          this.synchronizeTsc(data);
        } else {
          const adj = s64(this.computeL1TscOffset(data) - this.l1TscOffset);
          this.writeTscOffset(this.l1TscOffset + adj);
          this.ia32TscAdjustMsr = s64(this.ia32TscAdjustMsr + adj);
        }
        return true;
      case MSR_IA32_TSC_ADJUST: {
        if (!hostInitiated) {
          this.writeTscOffset(this.l1TscOffset + s64(data - this.ia32TscAdjustMsr));
          // "tsc_timestamp must be adjusted as well, otherwise guest's percpu pvclock time could jump"
          this.makeRequest('CLOCK_UPDATE');
        }
        this.ia32TscAdjustMsr = s64(data);
        return true;
      }
      case MSR_KVM_WALL_CLOCK_NEW:
      case MSR_KVM_WALL_CLOCK:
        this.vm.wallClockGpa = data;
        this.vm.writeWallClock(data, 0);
        return true;
      case MSR_KVM_SYSTEM_TIME_NEW:
      case MSR_KVM_SYSTEM_TIME:
        this.writeSystemTime(data, index === MSR_KVM_SYSTEM_TIME, hostInitiated);
        return true;
      case MSR_KVM_STEAL_TIME:
        if (data & KVM_STEAL_RESERVED_MASK) return false;
        this.stealMsr = data;
        if (data & KVM_MSR_ENABLED) this.makeRequest('STEAL_UPDATE');
        return true;
      default:
        return false;
    }
  }

  getMsr(index: number): bigint | null {
    switch (index) {
      case MSR_IA32_TSC:
        return this.readL1Tsc();
      case MSR_IA32_TSC_ADJUST:
        return u64(this.ia32TscAdjustMsr);
      case MSR_KVM_SYSTEM_TIME_NEW:
      case MSR_KVM_SYSTEM_TIME:
        return this.systemTimeMsr;
      case MSR_KVM_WALL_CLOCK_NEW:
      case MSR_KVM_WALL_CLOCK:
        return this.vm.wallClockGpa;
      case MSR_KVM_STEAL_TIME:
        return this.stealMsr;
      default:
        return null;
    }
  }

  /** kvm_write_system_time(). */
  private writeSystemTime(systemTime: bigint, oldMsr: boolean, hostInitiated: boolean): void {
    const vm = this.vm;
    if (this.id === 0 && !hostInitiated) {
      if (vm.bootVcpuRunsOldKvmclock !== oldMsr) this.makeRequest('MASTERCLOCK_UPDATE');
      vm.bootVcpuRunsOldKvmclock = oldMsr;
    }
    this.systemTimeMsr = systemTime;
    this.makeRequest('GLOBAL_CLOCK_UPDATE');
    this.pvTimeActive = (systemTime & 1n) === 1n;
  }

  /** The GPA of this vCPU's pvclock record, or null while kvmclock is off. */
  get pvTimeGpa(): bigint | null {
    return this.pvTimeActive ? this.systemTimeMsr & ~1n : null;
  }

  // ---------------------------------------------------------------- kvmclock

  /**
   * kvm_guest_time_update(): build this vCPU's pvclock record from the master-clock snapshot (or a
   * fresh host TSC + base ns without the master clock) and write it with the version protocol.
   */
  guestTimeUpdate(): void {
    const vm = this.vm;
    const useMasterClock = vm.useMasterClock;
    let hostTsc: Cycles;
    let kernelNs: Ns;
    if (useMasterClock) {
      hostTsc = vm.masterCycleNow;
      kernelNs = vm.masterKernelNs;
    } else {
      // local_irq_save; host_tsc = rdtsc() on this vCPU's CPU; kernel_ns = get_kvmclock_base_ns()
      hostTsc = this.hostRdtsc();
      kernelNs = vm.getKvmclockBaseNs();
    }
    let tscTimestamp = this.readL1Tsc(hostTsc);
    if (this.tscCatchup) {
      const tsc = this.computeGuestTsc(kernelNs);
      if (tsc > tscTimestamp) {
        this.writeTscOffset(this.l1TscOffset + (tsc - tscTimestamp));
        tscTimestamp = tsc;
      }
    }
    const tgtTscHz = kvmclockTargetHz(vm.host.tscKhz, this.l1TscScalingRatio, vm.tscScaling, vm.clockFeatures.hzTscScale);
    if (this.hwTscHz !== tgtTscHz) {
      this.pvclockScale = kvmGetTimeScale(1_000_000_000n, tgtTscHz);
      this.hwTscHz = tgtTscHz;
    }
    const hv: PvclockVcpuTimeInfo = {
      version: 0,
      tscTimestamp,
      systemTime: u64(kernelNs + vm.kvmclockOffset),
      tscToSystemMul: this.pvclockScale.mul,
      tscShift: this.pvclockScale.shift,
      flags: useMasterClock ? PVCLOCK_TSC_STABLE_BIT : 0,
    };
    this.lastGuestTsc = tscTimestamp;
    if (this.pvTimeActive) {
      if (this.pvclockSetGuestStoppedRequest) {
        hv.flags |= PVCLOCK_GUEST_STOPPED;
        this.pvclockSetGuestStoppedRequest = false;
      }
      this.setupGuestPvclock(hv);
    }
    this.lastPvclock = hv;
    if (vm.trace.on) {
      vm.trace.instant(vm.traceNow(), `${vm.name}/vcpu${this.id}`, 'kvm_guest_time_update', ['vcpu_enter_guest'], {
        tsc_timestamp: hv.tscTimestamp,
        system_time: hv.systemTime,
        tsc_to_system_mul: hv.tscToSystemMul,
        tsc_shift: hv.tscShift,
        flags: hv.flags,
        version: hv.version,
      });
    }
    // the function tracer prints kvm_guest_time_update's entry first, then the tracepoint inside it:
    // trace_kvm_pvclock_update(v->vcpu_id, &hv_clock) at the end of kvm_setup_guest_pvclock (x86.c)
    if (this.pvTimeActive && vm.trace.on)
      vm.trace.instant(
        vm.traceNow(),
        `${vm.name}/vcpu${this.id}`,
        'kvm_pvclock_update',
        ['vcpu_enter_guest', 'kvm_guest_time_update', 'kvm_setup_guest_pvclock'],
        {
          vcpu_id: this.id,
          version: hv.version,
          tsc_timestamp: hv.tscTimestamp,
          system_time: hv.systemTime,
          tsc_to_system_mul: hv.tscToSystemMul,
          tsc_shift: hv.tscShift,
          flags: hv.flags,
        },
      );
  }

  /**
   * kvm_setup_guest_pvclock(): version made odd, record written (keeping a GUEST_STOPPED the guest
   * has not yet consumed), version made even again.
   */
  private setupGuestPvclock(hv: PvclockVcpuTimeInfo): void {
    const gpa = this.pvTimeGpa!;
    const w = this.vm.memory.words;
    if (w && gpa % 8n === 0n && gpa + BigInt(PVCLOCK_VCPU_TIME_INFO_SIZE) <= BigInt(w.u8.length)) {
      this.setupGuestPvclockInPlace(hv, w, Number(gpa));
      return;
    }
    const mem = this.vm.memory;
    const guest = decodePvclock(mem.read(gpa, PVCLOCK_VCPU_TIME_INFO_SIZE));
    hv.version = ((guest.version + 1) | 1) >>> 0;
    mem.write(gpa, encodePvclock({ ...guest, version: hv.version }).subarray(0, 4));
    hv.flags |= guest.flags & PVCLOCK_GUEST_STOPPED;
    mem.write(gpa, encodePvclock(hv));
    hv.version = (hv.version + 1) >>> 0;
    mem.write(gpa, encodePvclock(hv).subarray(0, 4));
  }

  /**
   * setupGuestPvclock on a record in flat RAM: the bytes encodePvclock(hv) writes, with the final even
   * version (nothing reads the record between KVM's odd and even version writes).
   */
  private setupGuestPvclockInPlace(hv: PvclockVcpuTimeInfo, w: RamWords, off: number): void {
    const L = PVCLOCK_LAYOUT;
    const version = w.u32[(off + L.version) >>> 2]!;
    hv.version = ((version + 1) | 1) >>> 0;
    hv.flags |= w.u8[off + L.flags]! & PVCLOCK_GUEST_STOPPED;
    hv.version = (hv.version + 1) >>> 0;
    w.u32[(off + L.version) >>> 2] = hv.version;
    w.u32[(off + L.pad0) >>> 2] = 0;
    w.u64[(off + L.tsc_timestamp) >>> 3] = BigInt.asUintN(64, hv.tscTimestamp);
    w.u64[(off + L.system_time) >>> 3] = BigInt.asUintN(64, hv.systemTime);
    w.u32[(off + L.tsc_to_system_mul) >>> 2] = hv.tscToSystemMul >>> 0;
    w.s8[off + L.tsc_shift] = hv.tscShift;
    w.u8[off + L.flags] = hv.flags & 0xff;
    w.u8[off + L.pad] = 0;
    w.u8[off + L.pad + 1] = 0;
  }

  /** KVM_KVMCLOCK_CTRL → kvm_set_guest_paused(): GUEST_STOPPED on the next record update. */
  kvmclockCtrl(): void {
    if (!this.pvTimeActive) throw new InputError('KVM_KVMCLOCK_CTRL: kvmclock is not enabled on this vCPU (EINVAL)');
    this.pvclockSetGuestStoppedRequest = true;
    this.makeRequest('CLOCK_UPDATE');
  }

  // ---------------------------------------------------------------- steal time

  /**
   * record_steal_time(): on guest entry, add the thread's run_delay since the last entry to the
   * record's steal field, bumping version around the update and clearing preempted.
   */
  recordStealTime(): void {
    if (!this.stealOn) return;
    const w = this.vm.memory.words;
    const off = this.stealOff;
    if (w && off >= 0) {
      this.recordStealTimeInPlace(w, off);
      return;
    }
    const gpa = this.stealMsr & KVM_STEAL_VALID_BITS;
    const mem = this.vm.memory;
    const L = KVM_STEAL_TIME_LAYOUT;
    const buf = mem.read(gpa, 64);
    const st = decodeStealTime(buf);
    buf[L.preempted] = 0;
    this.stealPreempted = 0;
    let version = st.version;
    if (version & 1) version += 1; // first time write, random junk
    version = (version + 1) >>> 0;
    putLe32(buf, L.version, version);
    mem.write(gpa, buf.subarray(0, 20));
    const runDelay = this.runDelayNs();
    const steal = u64(st.steal + runDelay - this.lastSteal);
    this.lastSteal = runDelay;
    putLe64(buf, L.steal, steal);
    version = (version + 1) >>> 0;
    putLe32(buf, L.version, version);
    mem.write(gpa, buf.subarray(0, 20));
    this.traceStealRecord(steal, version, runDelay);
  }

  /**
   * record_steal_time() on the record in flat RAM: the same bytes as the copying path leaves (KVM's two
   * version bumps around the update are one +2 here: nothing reads the record in between).
   */
  private recordStealTimeInPlace(w: RamWords, off: number): void {
    const L = STEAL_LAYOUT;
    w.u8[off + L.preempted] = 0;
    this.stealPreempted = 0;
    const vi = (off + L.version) >>> 2;
    let version = w.u32[vi]!;
    if (version & 1) version += 1; // first time write, random junk
    version = (version + 2) >>> 0;
    w.u32[vi] = version;
    const runDelay = this.runDelayNs();
    const si = (off + L.steal) >>> 3;
    // steal += run_delay - last_steal: u64 arithmetic in record_steal_time (x86.c)
    const steal = BigInt.asUintN(64, w.u64[si]! + runDelay - this.lastSteal);
    w.u64[si] = steal;
    this.lastSteal = runDelay;
    this.traceStealRecord(steal, version, runDelay);
  }

  private traceStealRecord(steal: bigint, version: number, runDelay: bigint): void {
    const vm = this.vm;
    if (vm.trace.on)
      vm.trace.instant(vm.traceNow(), `${vm.name}/vcpu${this.id}`, 'record_steal_time', ['vcpu_enter_guest'], {
        steal,
        version,
        run_delay: runDelay,
      });
  }

  /** kvm_steal_time_set_preempted(): on vcpu_put of a preempted vCPU. */
  private setStealPreempted(): void {
    if (!this.stealOn || this.stealPreempted) return;
    const w = this.vm.memory.words;
    if (w && this.stealOff >= 0) w.u8[this.stealOff + STEAL_LAYOUT.preempted] = KVM_VCPU_PREEMPTED;
    else {
      const gpa = this.stealMsr & KVM_STEAL_VALID_BITS;
      this.vm.memory.write(gpa + BigInt(KVM_STEAL_TIME_LAYOUT.preempted), Uint8Array.of(KVM_VCPU_PREEMPTED));
    }
    this.stealPreempted = KVM_VCPU_PREEMPTED;
  }

  // ---------------------------------------------------------------- entry / load / put

  /**
   * kvm_arch_vcpu_load(): on a new physical CPU (or the first load) KVM asks for a global clock
   * update unless the master clock is on; every load requests a steal-time update.
   */
  load(cpu: number): void {
    // "if (unlikely(vcpu->cpu != cpu) || kvm_check_tsc_unstable())": with an unstable host TSC on every load
    if (this.cpu !== cpu || this.vm.host.tscUnstable) {
      const hostTsc = this.hostRdtsc(cpu);
      if (this.lastHostTsc !== 0n && hostTsc < this.lastHostTsc) this.vm.backwardsTscObserved = true;
      if (this.vm.host.tscUnstable) {
        // the guest TSC resumes from its value at the last exit, on this CPU's TSC; catch-up follows
        this.writeTscOffset(this.computeL1TscOffset(this.lastGuestTsc, cpu));
        this.tscCatchup = true;
      }
      if (!this.vm.useMasterClock || this.cpu === -1) this.makeRequest('GLOBAL_CLOCK_UPDATE');
      this.cpu = cpu;
    }
    this.makeRequest('STEAL_UPDATE');
    this.running = true;
  }

  /** vcpu_enter_guest() after the VM exit: "vcpu->arch.last_guest_tsc = kvm_read_l1_tsc(vcpu, rdtsc())". */
  exit(): void {
    this.lastGuestTsc = this.readL1Tsc();
  }

  /** kvm_arch_vcpu_put(): `preempted` = the thread was preempted while runnable. */
  put(preempted: boolean): void {
    if (preempted) this.setStealPreempted();
    this.lastHostTsc = this.hostRdtsc();
    this.running = false;
  }

  /** vcpu_enter_guest(): handle pending clock requests in KVM's order. */
  enterGuest(): void {
    this.inEntry = true;
    try {
      this.handleRequests();
    } finally {
      this.inEntry = false;
    }
  }

  private handleRequests(): void {
    for (const req of REQUEST_ORDER) {
      if (!this.requests.delete(req)) continue;
      switch (req) {
        case 'MASTERCLOCK_UPDATE':
          this.vm.updateMasterclock(this.cpu);
          break;
        case 'GLOBAL_CLOCK_UPDATE':
          // kvm_gen_kvmclock_update(): this vCPU now, the others after KVMCLOCK_UPDATE_DELAY.
          this.requests.add('CLOCK_UPDATE');
          this.vm.scheduleKvmclockUpdate(KVMCLOCK_UPDATE_DELAY_NS);
          break;
        case 'CLOCK_UPDATE':
          this.guestTimeUpdate();
          break;
        case 'STEAL_UPDATE':
          this.recordStealTime();
          break;
      }
    }
  }

  /**
   * One KVM_RUN round: the guest, running since the last round, exits now; load on `cpu`, enter
   * (requests handled), and put.
   */
  run(cpu = 0, preempted = false): void {
    if (this.cpu !== -1) this.exit();
    this.load(cpu);
    this.enterGuest();
    this.put(preempted);
  }

  /** Whether a round on its own CPU would only re-record steal time: nothing requested, already loaded there. */
  quietEntry(): boolean {
    const vm = this.vm;
    return (
      this.requests.size === 0 &&
      this.cpu === this.id &&
      !this.running &&
      !this.inEntry &&
      !vm.trace.on &&
      !vm.host.tscUnstable && // every load then rewrites the TSC offset
      !this.rdtscExiting // the TSC read at an exit then depends on the time of the read
    );
  }

  /**
   * `n` rounds of run(this.id) while quietEntry() holds and the thread's run delay does not move: each
   * round only re-records steal time (record_steal_time: steal + 0, version + 2), so they equal one
   * round with the record's version moved on by 2(n − 1). `hostTsc`: the host TSC at the last round's put.
   */
  runRepeated(n: number, hostTsc: Cycles): void {
    // On a quiet vCPU run(this.id) is: exit() and put() set lastGuestTsc/lastHostTsc (set below), load() on
    // its own CPU requests only STEAL_UPDATE, and the entry handles just that.
    if (this.quietEntry()) this.recordStealTime();
    else this.run(this.id);
    this.lastHostTsc = hostTsc;
    this.lastGuestTsc = this.readL1Tsc(hostTsc); // exit() at the last round's entry
    const w = this.vm.memory.words;
    if (n > 1 && this.stealOn && w && this.stealOff >= 0) {
      const vi = (this.stealOff + STEAL_LAYOUT.version) >>> 2;
      w.u32[vi] = (w.u32[vi]! + 2 * (n - 1)) >>> 0;
    } else if (n > 1 && this.stealOn) {
      const gpa = (this.stealMsr & KVM_STEAL_VALID_BITS) + BigInt(KVM_STEAL_TIME_LAYOUT.version);
      const b = this.vm.memory.read(gpa, 4);
      putLe32(b, 0, (le32(b, 0) + 2 * (n - 1)) >>> 0);
      this.vm.memory.write(gpa, b);
    }
  }
}
