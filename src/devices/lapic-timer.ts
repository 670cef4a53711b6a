// The local APIC timer as KVM emulates it (arch/x86/kvm/lapic.c): LVT timer register with one-shot,
// periodic and TSC-deadline modes, divide configuration, initial and current count, the
// IA32_TSC_DEADLINE MSR (0x6e0), the min_timer_period_us clamp, and the switch KVM makes between the
// hardware (VMX preemption) timer while the vCPU runs and a software hrtimer while it halts.
// Only the timer's registers live here; the rest of the APIC belongs to the hypervisor layer.
import type { Timer } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import type { Cycles, Ns } from '../core/index.ts';
import { big, type DeviceDeps, resolveDeps, str } from './common.ts';
import type { AccessSize, MmioDevice } from './bus.ts';

import {
  APIC_LVT_MASKED,
  APIC_LVT_TIMER_ONESHOT,
  APIC_LVT_TIMER_PERIODIC,
  APIC_LVT_TIMER_TSCDEADLINE,
  APIC_LVTT,
  APIC_TDCR,
  APIC_TMCCT,
  APIC_TMICT,
  MSR_IA32_TSC_DEADLINE,
  X2APIC_LVTT,
  X2APIC_TDCR,
  X2APIC_TMCCT,
  X2APIC_TMICT,
} from '../core/index.ts';

// the architectural numbers live in core (src/core/apic-abi.ts); the devices layer keeps offering them
export {
  APIC_LVT_MASKED,
  APIC_LVT_TIMER_ONESHOT,
  APIC_LVT_TIMER_PERIODIC,
  APIC_LVT_TIMER_TSCDEADLINE,
  APIC_LVTT,
  APIC_TDCR,
  APIC_TMCCT,
  APIC_TMICT,
  MSR_IA32_TSC_DEADLINE,
  X2APIC_LVTT,
  X2APIC_TDCR,
  X2APIC_TMCCT,
  X2APIC_TMICT,
};

const APIC_SEND_PENDING = 1 << 12;
const APIC_VECTOR_MASK = 0xff;

export type LapicTimerMode = 'oneshot' | 'periodic' | 'tscdeadline';
/** Where the vCPU is: in guest mode, halted (blocked in KVM), or runnable but not on a CPU. */
export type VcpuRunState = 'running' | 'halted' | 'preempted';

export interface LapicTimerOptions extends DeviceDeps {
  /** Guest TSC rate (vcpu->arch.virtual_tsc_khz). */
  tscKhz: number;
  /** Guest TSC now; defaults to the clock scaled by tscKhz. */
  tsc?: () => Cycles;
  /** APIC bus cycle in ns: KVM's APIC_BUS_CYCLE_NS_DEFAULT is 1 (a 1 GHz bus). */
  busCycleNs?: number;
  /** kvm.min_timer_period_us, default 200. */
  minTimerPeriodUs?: number;
  /** VMX preemption timer usable (kvm_intel.preemption_timer and enable_hv_timer). Default false. */
  hvTimer?: boolean;
  /** Guest CPUID advertises TSC-deadline (timer_mode_mask becomes 3 << 17). Default true. */
  tscDeadlineCpuid?: boolean;
  /** lapic_timer_advance_ns; default 0. */
  timerAdvanceNs?: number;
  /** Called with the LVT vector each time the timer interrupt is delivered (unmasked), and the TSC deadline
   *  that expired (0 when the timer counted ns: one-shot or periodic on the software timer). */
  deliver?: (vector: number, expiredTscDeadline: Cycles) => void;
  /** The vCPU's id, for trace events (kvm_hv_timer_state's vcpu_id). Default 0. */
  vcpuId?: number;
}

// The call paths an expiry takes in arch/x86/kvm/lapic.c: the software hrtimer (apic_timer_fn), the VMX
// preemption timer's exit (kvm_lapic_expired_hv_timer), or a deadline already past when it was armed.
const SW_EXPIRY_PATH = ['hrtimer_expire_entry', 'apic_timer_fn'];
const HV_EXPIRY_PATH = ['handle_preemption_timer', 'kvm_lapic_expired_hv_timer'];
const RESTART_EXPIRY_PATH = ['kvm_set_msr_common', 'kvm_set_lapic_tscdeadline_msr', 'restart_apic_timer'];

export interface LapicTimerState {
  version: 1;
  lvtt: number;
  tmict: number;
  tdcr: number;
  divideCount: number;
  period: string;
  targetExpiration: string;
  tscdeadline: string;
  hvTimerInUse: boolean;
  hvExpiredOutside: boolean;
  runState: VcpuRunState;
  expires: string | null;
}

export class LapicTimer implements MmioDevice {
  private readonly d: ReturnType<typeof resolveDeps>;
  private readonly tscKhz: bigint;
  private readonly tscFn: () => Cycles;
  private readonly busCycleNs: bigint;
  private readonly minPeriod: Ns;
  private readonly hvAvailable: boolean;
  private readonly timerModeMask: number;
  private readonly advanceNs: bigint;
  private readonly deliverFn: ((vector: number, expiredTscDeadline: Cycles) => void) | undefined;
  private readonly vcpuId: number;
  private lvtt = APIC_LVT_MASKED;
  private tmict = 0;
  private tdcr = 0;
  private divideCount = 2;
  private period: Ns = 0n;
  private targetExpiration: Ns = 0n;
  private tscdeadline: Cycles = 0n;
  private hvTimerInUse = false;
  private hvExpiredOutside = false;
  private runState: VcpuRunState = 'running';
  private readonly timer: Timer;
  /** Interrupts delivered, expiries while masked, and how many fired from each backend. */
  readonly stats = { delivered: 0, masked: 0, hv: 0, sw: 0, clamped: 0, switches: 0 };

  constructor(opts: LapicTimerOptions) {
    this.d = resolveDeps(opts, 'lapic-timer');
    this.tscKhz = BigInt(opts.tscKhz);
    this.tscFn = opts.tsc ?? (() => (this.d.clock() * this.tscKhz) / 1_000_000n);
    this.busCycleNs = BigInt(opts.busCycleNs ?? 1);
    this.minPeriod = BigInt(opts.minTimerPeriodUs ?? 200) * 1000n;
    this.hvAvailable = opts.hvTimer ?? false;
    this.timerModeMask = (opts.tscDeadlineCpuid ?? true) ? 3 << 17 : 1 << 17;
    this.advanceNs = BigInt(opts.timerAdvanceNs ?? 0);
    this.deliverFn = opts.deliver;
    this.vcpuId = opts.vcpuId ?? 0;
    this.timer = this.d.scheduler.timer(() => this.timerFired());
  }

  // --- register access (xAPIC MMIO offsets inside the APIC page) ---

  mmioRead(offset: number, _size: AccessSize): bigint {
    return BigInt(this.readReg(offset));
  }

  mmioWrite(offset: number, _size: AccessSize, value: bigint): void {
    this.writeReg(offset, Number(value & 0xffff_ffffn));
  }

  readReg(offset: number): number {
    switch (offset) {
      case APIC_LVTT:
        return this.lvtt;
      case APIC_TMICT:
        return this.tmict;
      case APIC_TMCCT:
        return this.tmcct();
      case APIC_TDCR:
        return this.tdcr;
      default:
        return 0;
    }
  }

  writeReg(offset: number, val: number): void {
    val >>>= 0;
    switch (offset) {
      case APIC_LVTT:
        this.lvtt = (val & (APIC_LVT_MASKED | APIC_SEND_PENDING | APIC_VECTOR_MASK | this.timerModeMask)) >>> 0;
        return this.updateLvtt();
      case APIC_TMICT:
        if (this.mode() === 'tscdeadline') return; // ignored in TSC-deadline mode
        this.cancelTimer();
        this.tmict = val;
        return this.startApicTimer();
      case APIC_TDCR: {
        const old = this.divideCount;
        this.tdcr = val & 0xb;
        this.updateDivideCount();
        if (this.divideCount !== old && this.period) {
          this.timer.cancel();
          this.updateTargetExpiration(old);
          this.restartApicTimer();
        }
        return;
      }
      default:
    }
  }

  msrRead(msr: number): bigint {
    switch (msr) {
      case MSR_IA32_TSC_DEADLINE:
        return this.mode() === 'tscdeadline' ? this.tscdeadline : 0n; // kvm_get_lapic_tscdeadline_msr
      case X2APIC_LVTT:
        return BigInt(this.lvtt);
      case X2APIC_TMICT:
        return BigInt(this.tmict);
      case X2APIC_TMCCT:
        return BigInt(this.tmcct());
      case X2APIC_TDCR:
        return BigInt(this.tdcr);
      default:
        return 0n;
    }
  }

  msrWrite(msr: number, value: bigint): void {
    switch (msr) {
      case MSR_IA32_TSC_DEADLINE:
        // kvm_set_lapic_tscdeadline_msr: ignored unless in TSC-deadline mode; 0 disarms
        if (this.mode() !== 'tscdeadline') return;
        this.cancelTimer();
        this.tscdeadline = value & ((1n << 64n) - 1n);
        return this.startApicTimer();
      case X2APIC_LVTT:
        return this.writeReg(APIC_LVTT, Number(value & 0xffff_ffffn));
      case X2APIC_TMICT:
        return this.writeReg(APIC_TMICT, Number(value & 0xffff_ffffn));
      case X2APIC_TDCR:
        return this.writeReg(APIC_TDCR, Number(value & 0xffff_ffffn));
      default:
    }
  }

  mode(): LapicTimerMode {
    const m = this.lvtt & this.timerModeMask;
    return m === APIC_LVT_TIMER_TSCDEADLINE ? 'tscdeadline' : m === APIC_LVT_TIMER_PERIODIC ? 'periodic' : 'oneshot';
  }

  /** Whether the hardware (preemption) timer currently carries the deadline. */
  get usingHvTimer(): boolean {
    return this.hvTimerInUse;
  }

  get divisor(): number {
    return this.divideCount;
  }

  // --- vCPU state: KVM's hv/sw timer switch ---

  /**
   * The vCPU enters or leaves guest mode. Halting moves an armed hardware timer to a software hrtimer
   * (kvm_lapic_switch_to_sw_timer, from vcpu_block); running again moves it back
   * (kvm_lapic_switch_to_hv_timer). A preempted vCPU keeps its hardware timer, which cannot fire until
   * the vCPU re-enters the guest: its interrupt arrives late, at the next VM entry.
   */
  setRunState(state: VcpuRunState): void {
    if (state === this.runState) return;
    const prev = this.runState;
    this.runState = state;
    if (state === 'halted' && this.hvTimerInUse) this.switchToSwTimer();
    else if (state === 'running') {
      if (this.hvExpiredOutside) {
        this.hvExpiredOutside = false;
        this.expireHvTimer();
      }
      if (prev === 'halted' && this.hvAvailable && this.timer.pending) this.switchToHvTimer();
    }
  }

  private switchToSwTimer(): void {
    this.hvTimerInUse = false;
    this.stats.switches++;
    this.traceEvent('kvm_lapic_switch_to_sw_timer', {});
    if (this.hvExpiredOutside) {
      // the deadline passed while the vCPU was out of guest mode: expire now
      this.hvExpiredOutside = false;
      this.apicTimerExpired(['kvm_vcpu_block', 'kvm_lapic_switch_to_sw_timer']);
      return;
    }
    // the armed engine timer keeps its expiry; it is now the software hrtimer (start_sw_timer)
  }

  private switchToHvTimer(): void {
    if (!this.tscdeadline && this.mode() !== 'periodic') return;
    this.hvTimerInUse = true;
    this.stats.switches++;
    this.traceEvent('kvm_lapic_switch_to_hv_timer', {});
  }

  // --- KVM's timer logic ---

  private updateDivideCount(): void {
    const tmp1 = this.tdcr & 0xf;
    const tmp2 = ((tmp1 & 0x3) | ((tmp1 & 0x8) >> 1)) + 1;
    this.divideCount = 1 << (tmp2 & 0x7);
  }

  private updateLvtt(): void {
    // apic_update_lvtt: leaving or entering TSC-deadline mode stops the timer and clears TMICT
    const newMode = this.mode();
    if ((newMode === 'tscdeadline') !== this.wasTscDeadline) {
      this.cancelTimer();
      this.tmict = 0;
      this.period = 0n;
      this.tscdeadline = 0n;
    }
    this.wasTscDeadline = newMode === 'tscdeadline';
    this.limitPeriodicTimerFrequency();
  }
  private wasTscDeadline = false;

  private limitPeriodicTimerFrequency(): void {
    if (this.mode() === 'periodic' && this.period !== 0n && this.period < this.minPeriod) {
      this.period = this.minPeriod;
      this.stats.clamped++;
    }
  }

  private nsecToCycles(ns: Ns): Cycles {
    return (ns * this.tscKhz) / 1_000_000n;
  }

  private tmictToNs(tmict: number): Ns {
    return BigInt(tmict) * this.busCycleNs * BigInt(this.divideCount);
  }

  /** set_target_expiration: period from TMICT, clamp, absolute expiry in ns and in guest TSC. */
  private setTargetExpiration(): boolean {
    const now = this.d.clock();
    this.period = this.tmictToNs(this.tmict);
    if (!this.period) {
      this.tscdeadline = 0n;
      return false;
    }
    this.limitPeriodicTimerFrequency();
    this.tscdeadline = this.tscFn() + this.nsecToCycles(this.period);
    this.targetExpiration = now + this.period;
    return true;
  }

  private updateTargetExpiration(oldDivisor: number): void {
    const now = this.d.clock();
    let remaining = this.targetExpiration - now;
    if (remaining < 0n) remaining = 0n;
    this.period = this.tmictToNs(this.tmict);
    this.limitPeriodicTimerFrequency();
    const ns = (remaining * BigInt(this.divideCount)) / BigInt(oldDivisor);
    this.tscdeadline = this.tscFn() + this.nsecToCycles(ns);
    this.targetExpiration = now + ns;
  }

  private startApicTimer(): void {
    if (this.mode() !== 'tscdeadline' && !this.setTargetExpiration()) return;
    this.restartApicTimer();
  }

  /** restart_apic_timer: the hardware timer if usable and the vCPU is in guest mode, else the hrtimer. */
  private restartApicTimer(): void {
    const mode = this.mode();
    let delay: Ns;
    if (mode === 'tscdeadline') {
      if (!this.tscdeadline || !this.tscKhz) return;
      const guestTsc = this.tscFn();
      const ns = ((this.tscdeadline - guestTsc) * 1_000_000n) / this.tscKhz;
      if (this.tscdeadline <= guestTsc || ns <= this.advanceNs) {
        // a deadline already passed fires at once
        this.apicTimerExpired(RESTART_EXPIRY_PATH);
        return;
      }
      delay = ns - this.advanceNs;
    } else {
      delay = this.targetExpiration - this.d.clock();
      if (delay < 0n) delay = 0n;
    }
    this.hvTimerInUse = this.hvAvailable && this.runState === 'running';
    this.timer.armIn(delay);
    this.traceEvent(this.hvTimerInUse ? 'start_hv_timer' : 'start_sw_timer', { delay: Number(delay) });
  }

  private cancelTimer(): void {
    this.timer.cancel();
    this.hvTimerInUse = false;
    this.hvExpiredOutside = false;
  }

  private timerFired(): void {
    if (this.hvTimerInUse) {
      if (this.runState !== 'running') {
        // the preemption timer only counts in guest mode: the expiry waits for the next VM entry
        this.hvExpiredOutside = true;
        return;
      }
      this.expireHvTimer();
      return;
    }
    this.stats.sw++;
    this.traceEvent('apic_timer_fn', {});
    this.apicTimerExpired(SW_EXPIRY_PATH);
    if (this.mode() === 'periodic' && this.period) {
      this.advancePeriodicTargetExpiration();
      this.timer.armIn(this.targetExpiration > this.d.clock() ? this.targetExpiration - this.d.clock() : 0n);
    }
  }

  /** kvm_lapic_expired_hv_timer */
  private expireHvTimer(): void {
    this.stats.hv++;
    this.traceEvent('kvm_lapic_expired_hv_timer', {});
    this.apicTimerExpired(HV_EXPIRY_PATH);
    if (this.mode() === 'periodic' && this.period) {
      this.advancePeriodicTargetExpiration();
      this.restartApicTimer();
    } else if (!this.timer.pending) {
      // cancel_hv_timer, unless the guest's handler (run at once here) armed the next deadline already
      this.hvTimerInUse = false;
    }
  }

  private advancePeriodicTargetExpiration(): void {
    const now = this.d.clock();
    this.targetExpiration += this.period;
    const delta = this.targetExpiration - now;
    this.tscdeadline = this.tscFn() + this.nsecToCycles(delta > 0n ? delta : 0n);
  }

  /** apic_timer_expired + kvm_apic_inject_pending_timer_irqs: deliver unless masked, then disarm one-shots. */
  private apicTimerExpired(path: readonly string[]): void {
    if (this.d.trace.on) this.d.trace.instant(this.d.scheduler.now, this.d.name, 'apic_timer_expired', path, { vcpu_id: this.vcpuId });
    // ktimer->expired_tscdeadline: what kvm_wait_lapic_expire holds the next VM entry back for
    const expired = this.mode() === 'tscdeadline' || this.hvTimerInUse ? this.tscdeadline : 0n;
    // kvm_apic_inject_pending_timer_irqs disarms a one-shot before the guest can run: here delivery runs the
    // guest's handler at once, and a deadline it writes there must not be cleared after it
    const mode = this.mode();
    if (mode === 'tscdeadline') this.tscdeadline = 0n;
    else if (mode === 'oneshot') {
      this.tscdeadline = 0n;
      this.targetExpiration = 0n;
    }
    if (this.lvtt & APIC_LVT_MASKED) {
      this.stats.masked++;
    } else {
      this.stats.delivered++;
      this.deliverFn?.(this.lvtt & APIC_VECTOR_MASK, expired);
      this.d.irq.raise();
      this.d.irq.lower();
    }
  }

  /** apic_get_tmcct: remaining time modulo the period, in bus cycles of the divided clock. */
  private tmcct(): number {
    if (this.tmict === 0 || this.period === 0n) return 0;
    let remaining = this.targetExpiration - this.d.clock();
    if (remaining < 0n) remaining = 0n;
    const ns = remaining % this.period;
    return Number(ns / (this.busCycleNs * BigInt(this.divideCount)));
  }

  private traceEvent(name: string, args: Record<string, number>): void {
    if (this.d.trace.on) this.d.trace.instant(this.d.scheduler.now, this.d.name, name, [], { vcpu_id: this.vcpuId, ...args });
  }

  // --- snapshot ---

  saveState(): LapicTimerState {
    const e = this.timer.expires;
    return {
      version: 1,
      lvtt: this.lvtt,
      tmict: this.tmict,
      tdcr: this.tdcr,
      divideCount: this.divideCount,
      period: str(this.period),
      targetExpiration: str(this.targetExpiration),
      tscdeadline: str(this.tscdeadline),
      hvTimerInUse: this.hvTimerInUse,
      hvExpiredOutside: this.hvExpiredOutside,
      runState: this.runState,
      expires: e === null ? null : str(e - this.d.scheduler.now + this.d.clock()),
    };
  }

  restore(s: LapicTimerState): void {
    if (s.version !== 1) throw new InputError('unsupported LAPIC timer state');
    this.lvtt = s.lvtt >>> 0;
    this.wasTscDeadline = this.mode() === 'tscdeadline';
    this.tmict = s.tmict >>> 0;
    this.tdcr = s.tdcr & 0xb;
    this.updateDivideCount();
    this.period = big(s.period);
    this.targetExpiration = big(s.targetExpiration);
    this.tscdeadline = big(s.tscdeadline);
    this.hvTimerInUse = s.hvTimerInUse;
    this.hvExpiredOutside = s.hvExpiredOutside;
    this.runState = s.runState;
    this.timer.cancel();
    if (s.expires !== null) {
      const d = big(s.expires) - this.d.clock();
      this.timer.armIn(d > 0n ? d : 0n);
    }
  }
}
