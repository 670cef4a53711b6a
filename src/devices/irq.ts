// An interrupt line as a device sees it: it can raise and lower its output. `raise()` reports whether
// the interrupt was delivered (true) or coalesced with one still pending (false): QEMU's RTC asks the
// same question through kvm_get_irq_delivered() to implement lost-tick reinjection (hw/rtc/mc146818rtc.c).
import type { Ns, Scheduler, Timer } from '../core/index.ts';
import { LatenessHistogram } from './lateness-histogram.ts';

export interface IrqLine {
  /** Assert the line. Returns false when the interrupt coalesced with an undelivered one. */
  raise(): boolean;
  /** Deassert the line. */
  lower(): void;
}

/** Edge interrupt: raise then lower at once (qemu_irq_pulse, kvm_set_irq 1 then 0 in KVM's pit_do_work). */
export function pulse(irq: IrqLine): boolean {
  const delivered = irq.raise();
  irq.lower();
  return delivered;
}

/** A line connected to nothing. */
export const noIrq: IrqLine = Object.freeze({ raise: () => true, lower: () => {} });

/**
 * A line that remembers its level and counts edges: the fake interrupt controller of the tests and the
 * IOAPIC input of the `pc` machine. `delivered` decides what raise() answers; by default an interrupt is
 * delivered unless the guest has not acknowledged the previous one (`ack()`), which is what an edge
 * interrupt pending in the IRR looks like to KVM.
 */
export class RecordingIrq implements IrqLine {
  level = false;
  raises = 0;
  lowers = 0;
  /** Interrupts raised and not yet acknowledged by ack(). */
  pending = 0;
  /** When set, overrides the coalescing rule for raise()'s answer. */
  delivered: boolean | null = null;
  /** Called on every level change (qtest's "IRQ raise N" / "IRQ lower N"). */
  onChange: ((level: boolean) => void) | null = null;

  raise(): boolean {
    this.raises++;
    const coalesced = this.pending > 0;
    if (!coalesced) this.pending++;
    if (!this.level) {
      this.level = true;
      this.onChange?.(true);
    }
    return this.delivered ?? !coalesced;
  }

  lower(): void {
    this.lowers++;
    if (this.level) {
      this.level = false;
      this.onChange?.(false);
    }
  }

  /** The guest acknowledged (EOI) one interrupt. */
  ack(): void {
    if (this.pending > 0) this.pending--;
  }

  reset(): void {
    this.raises = 0;
    this.lowers = 0;
    this.pending = 0;
  }
}

/** What a vCPU's interrupt acceptance needs from whoever runs the vCPU thread. */
export interface VcpuIrrDeps {
  scheduler: Scheduler;
  /** Whether the vCPU thread is on a CPU now (an interrupt can be taken). */
  running(): boolean;
  /** When it next is, while it is not (absolute scheduler time). */
  nextRun(): Ns;
  /** The guest takes the interrupt (its IDT entry runs). */
  inject(vector: number): void;
}

/**
 * A vCPU's interrupt request register as a local APIC keeps it (arch/x86/kvm/lapic.c __apic_accept_irq,
 * QEMU hw/intc/apic.c apic_set_irq): one bit per vector, so an interrupt that finds its vector still
 * requested is coalesced (KVM reports it to the source as not delivered). Requests are taken when the vCPU
 * runs, highest vector first (its priority class); while the thread is off its CPU they wait for its next
 * run. Interrupts raised while one is being taken (a reinjected PIT tick released by the EOI) are taken in
 * the same pass, at the same instant.
 */
export class VcpuIrr {
  private readonly irr = new Map<number, bigint>();
  private readonly entry: Timer;
  private delivering = false;
  /** Interrupts accepted, coalesced with a pending one, and the longest wait from request to entry (ns). */
  readonly stats = { accepted: 0, coalesced: 0, maxLatenessNs: 0n };
  /** Every taken interrupt's wait from request to entry (ns), exact. */
  readonly lateness = new LatenessHistogram();
  /** Per-vector counts of coalesced requests. */
  readonly coalescedByVector = new Map<number, number>();

  constructor(private readonly d: VcpuIrrDeps) {
    this.entry = d.scheduler.timer(() => this.deliver());
  }

  /** Request `vector`. False when it coalesced with one already requested. */
  accept(vector: number): boolean {
    if (this.irr.has(vector)) {
      this.stats.coalesced++;
      this.coalescedByVector.set(vector, (this.coalescedByVector.get(vector) ?? 0) + 1);
      return false;
    }
    this.stats.accepted++;
    this.irr.set(vector, this.d.scheduler.now);
    this.deliver();
    return true;
  }

  /** Whether `vector` is requested and not yet taken. */
  pending(vector: number): boolean {
    return this.irr.has(vector);
  }

  /** The vCPU (re)enters the guest: take what is requested (vcpu_enter_guest → kvm_inject_pending_timer_irqs / inject_pending_event). */
  deliver(): void {
    if (this.delivering || this.irr.size === 0) return;
    if (!this.d.running()) {
      // wait for the thread's next run; when that is not known (a stopped VM with no planned resume) look
      // again a millisecond later — the VMM also calls deliver() when it restarts the vCPUs
      const now = this.d.scheduler.now;
      const at = this.d.nextRun();
      const when = at > now ? at : now + 1_000_000n;
      if (!this.entry.pending || this.entry.expires !== when) this.entry.armAt(when);
      return;
    }
    this.delivering = true;
    try {
      while (this.irr.size > 0 && this.d.running()) {
        let vector = -1;
        for (const v of this.irr.keys()) if (v > vector) vector = v;
        const at = this.irr.get(vector)!;
        this.irr.delete(vector);
        const late = this.d.scheduler.now - at;
        if (late > this.stats.maxLatenessNs) this.stats.maxLatenessNs = late;
        this.lateness.record(late);
        this.d.inject(vector);
      }
    } finally {
      this.delivering = false;
    }
    if (this.irr.size > 0) this.deliver();
  }
}
