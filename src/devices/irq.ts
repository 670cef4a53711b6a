// An interrupt line as a device sees it: it can raise and lower its output. `raise()` reports whether
// the interrupt was delivered (true) or coalesced with one still pending (false): QEMU's RTC asks the
// same question through kvm_get_irq_delivered() to implement lost-tick reinjection (hw/rtc/mc146818rtc.c).

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
