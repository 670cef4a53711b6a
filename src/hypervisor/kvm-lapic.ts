// KVM's local APIC as far as the guest's timer interrupts go (arch/x86/kvm/lapic.c): the timer (the
// devices layer's LapicTimer: one-shot, periodic, TSC-deadline, the VMX preemption "hv" timer while the
// vCPU is in guest mode and the software hrtimer otherwise), the interrupt request register the timer and
// the in-kernel irqchip's GSIs feed (VcpuIrr), the WRMSR path the guest programs the timer through
// (kvm_set_msr_common → kvm_set_lapic_tscdeadline_msr / kvm_x2apic_msr_write), and EOI, which runs the
// irqchip's ack notifiers (kvm_notify_acked_irq → kvm_pit_ack_irq for GSI 0).
import type { Cycles, Ns, Scheduler, Timer, TraceRecorder } from '../core/index.ts';
import { IRQ0_VECTOR, LOCAL_TIMER_VECTOR, MSR_IA32_TSC_DEADLINE, X2APIC_LVTT, X2APIC_TDCR, X2APIC_TMICT } from '../core/index.ts';
import { LapicTimer, noIrq, VcpuIrr } from '../devices/index.ts';

export { IRQ0_VECTOR, LOCAL_TIMER_VECTOR };

export interface KvmLapicOptions {
  scheduler: Scheduler;
  /** vCPU id (trace events, kvm_hv_timer_state). */
  vcpuId: number;
  /** vcpu->arch.virtual_tsc_khz and the guest TSC now. */
  tscKhz: number;
  guestTsc: () => Cycles;
  /** The host has the VMX preemption timer (kvm_intel.preemption_timer): KVM's hv timer. AMD has none. */
  hvTimer: boolean;
  /** Whether the vCPU thread is on a CPU now, and when it next is (the host scheduler's answer). */
  running(): boolean;
  nextRun(): Ns;
  /** The guest takes `vector` (its IDT entry runs). */
  inject(vector: number): void;
  /** vcpu_enter_guest's requests (kvm_guest_time_update after KVM_SET_CLOCK…), handled before any injection. */
  enterGuest?(): void;
  trace?: TraceRecorder;
  /** Trace source, e.g. "vm0/vcpu0". */
  name: string;
}

const LVTT_PATH = ['apic_timer_expired', 'kvm_apic_local_deliver', '__apic_accept_irq'];
const GSI_PATH = ['kvm_set_irq', 'kvm_apic_set_irq', '__apic_accept_irq'];

export class KvmLapic {
  readonly timer: LapicTimer;
  readonly irr: VcpuIrr;
  /** kvm_register_irq_ack_notifier: called on EOI of the vector. */
  private readonly ackNotifiers = new Map<number, () => void>();
  private halted = false;

  constructor(private readonly o: KvmLapicOptions) {
    this.irr = new VcpuIrr({
      scheduler: o.scheduler,
      running: () => o.running(),
      nextRun: () => o.nextRun(),
      inject: (vector) => this.inject(vector),
    });
    this.timer = new LapicTimer({
      scheduler: o.scheduler,
      irq: noIrq,
      name: o.name,
      ...(o.trace ? { trace: o.trace } : {}),
      tscKhz: o.tscKhz,
      tsc: o.guestTsc,
      hvTimer: o.hvTimer,
      vcpuId: o.vcpuId,
      // apic_timer_expired → kvm_apic_local_deliver(APIC_LVTT): the LVT vector into the IRR; an expiry that
      // finds it still requested is coalesced (lapic_timer.pending / the IRR bit)
      deliver: (vector, deadline) => this.timerExpired(vector, deadline),
    });
    this.entryWait = o.scheduler.timer(() => this.entryWaitDone());
  }

  /** __apic_accept_irq: the vector into this vCPU's IRR (trace kvm_apic_accept_irq; coalesced when already set). */
  private accept(vector: number, path: readonly string[] = LVTT_PATH): boolean {
    const tr = this.o.trace;
    // traced before the IRR takes it: a running vCPU takes it at once (kvm_inj_virq follows)
    if (tr?.on)
      tr.instant(this.o.scheduler.now, this.o.name, 'kvm_apic_accept_irq', path, {
        apicid: this.o.vcpuId,
        vec: vector,
        coalesced: this.irr.pending(vector) ? 1 : 0,
      });
    return this.irr.accept(vector);
  }

  private readonly entryWait: Timer;
  private waitVector = 0;
  private waitDeadline: Cycles = 0n;
  private waitRecheck = false;

  /**
   * The timer interrupt goes into the IRR; with a TSC deadline the VM entry that injects it waits until the
   * guest TSC has reached the deadline (kvm_wait_lapic_expire / __wait_lapic_expire, lapic_timer_advance):
   * the software hrtimer's ns are truncated and would otherwise deliver a few ns early. __delay spins on
   * RDTSC, so the entry goes at the first ns the TSC reads the deadline; the cycles left rounded up to ns
   * can pass that ns by one (the TSC read now is truncated), so look 1 ns before.
   */
  private timerExpired(vector: number, deadline: Cycles): void {
    const tsc = this.o.guestTsc();
    if (deadline > tsc && this.o.tscKhz > 0) {
      const khz = BigInt(this.o.tscKhz);
      const wait = ((deadline - tsc) * 1_000_000n + khz - 1n) / khz;
      this.waitVector = vector;
      this.waitDeadline = deadline;
      this.waitRecheck = wait > 1n;
      this.entryWait.armIn(this.waitRecheck ? wait - 1n : wait);
      return;
    }
    this.accept(vector);
  }

  private entryWaitDone(): void {
    if (this.waitRecheck && this.o.guestTsc() < this.waitDeadline) {
      this.waitRecheck = false;
      this.entryWait.armIn(1n);
      return;
    }
    this.accept(this.waitVector);
  }

  /** A GSI routed to this vCPU raised `vector` (kvm_set_irq → IO-APIC/PIC → kvm_apic_set_irq). */
  setIrq(vector: number): boolean {
    return this.accept(vector, GSI_PATH);
  }

  onAck(vector: number, fn: () => void): void {
    this.ackNotifiers.set(vector, fn);
  }

  /** Whether `msr` is a timer MSR this LAPIC handles (IA32_TSC_DEADLINE, the x2APIC timer registers). */
  static handles(msr: number): boolean {
    return msr === MSR_IA32_TSC_DEADLINE || msr === X2APIC_LVTT || msr === X2APIC_TMICT || msr === X2APIC_TDCR;
  }

  /** The guest's WRMSR exits: kvm_set_msr_common → kvm_set_lapic_tscdeadline_msr, or kvm_x2apic_msr_write. */
  wrmsr(msr: number, value: bigint): void {
    const tr = this.o.trace;
    if (tr?.on)
      tr.instant(this.o.scheduler.now, this.o.name, 'kvm_msr', ['vcpu_enter_guest', 'kvm_emulate_wrmsr'], {
        write: 1,
        ecx: msr,
        data: value,
      });
    this.timer.msrWrite(msr, value);
  }

  /** apic_set_eoi: the highest in-service vector ends; the irqchip's ack notifier for it runs. */
  eoi(vector: number): void {
    this.ackNotifiers.get(vector)?.();
  }

  /** HLT on an idle vCPU: vcpu_block, which moves an hv timer to the software hrtimer first. */
  hlt(): void {
    this.halted = true;
    this.timer.setRunState('halted');
  }

  /** vcpu_enter_guest → inject_pending_event: a halted vCPU wakes first (kvm_vcpu_kick, back to the hv timer). */
  private inject(vector: number): void {
    this.o.enterGuest?.();
    if (this.halted) {
      this.halted = false;
      this.timer.setRunState('running');
    }
    const tr = this.o.trace;
    if (tr?.on)
      tr.instant(this.o.scheduler.now, this.o.name, 'kvm_inj_virq', ['vcpu_enter_guest', 'kvm_check_and_inject_events'], { vec: vector });
    this.o.inject(vector);
  }
}
