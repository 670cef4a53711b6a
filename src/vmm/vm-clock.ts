// QEMU_CLOCK_VIRTUAL as the VMM's devices see it: ns since the VM was created, standing still while
// the VM is stopped. QEMU stops it in vm_stop (cpu_disable_ticks, softmmu/cpus.c do_vm_stop) and
// restarts it in vm_start, so every device timed by it (HPET, PM timer, the PIT, an RTC with
// clock=vm) neither counts nor fires while the VM is paused.
//
// The devices' timers run on `scheduler`, which arms them on the VMM's scheduler while the clock
// runs and holds them, with the time they had left, while it is stopped.
import type { EventCallback, Scheduler, Timer } from '../core/index.ts';
import type { Clock, Ns } from '../core/index.ts';

export class VmVirtualClock {
  /** Timers for devices on this clock (expiries in the VMM scheduler's time while running). */
  readonly scheduler: Scheduler;
  /** The clock's reading (ns of virtual time since the VM was created). */
  readonly clock: Clock;
  private stoppedAt: Ns | null = null;
  /** Scheduler time at which the clock would read 0 had it never stopped, plus all stopped time. */
  private offset: Ns;
  private readonly timers: HeldTimer[] = [];

  constructor(private readonly host: Scheduler) {
    this.offset = host.now;
    this.clock = () => (this.stoppedAt ?? this.host.now) - this.offset;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const vc = this;
    this.scheduler = {
      get now() {
        return vc.host.now;
      },
      timer: (cb: EventCallback) => {
        const t = new HeldTimer(vc.host, cb, () => vc.stoppedAt !== null);
        vc.timers.push(t);
        return t;
      },
    };
  }

  get running(): boolean {
    return this.stoppedAt === null;
  }

  /** vm_stop: the clock stands still and pending device timers keep what they had left. */
  stop(): void {
    if (this.stoppedAt !== null) return;
    this.stoppedAt = this.host.now;
    for (const t of this.timers) t.hold();
  }

  /** vm_start: the clock goes on from where it stood; held timers are re-armed for their remainder. */
  start(): void {
    if (this.stoppedAt === null) return;
    this.offset += this.host.now - this.stoppedAt;
    this.stoppedAt = null;
    for (const t of this.timers) t.release();
  }
}

/** A device timer that can be held (its remaining time kept) while its clock is stopped. */
class HeldTimer implements Timer {
  private readonly inner: Timer;
  private remaining: Ns | null = null;

  constructor(
    private readonly host: Scheduler,
    cb: EventCallback,
    private readonly stopped: () => boolean,
  ) {
    this.inner = host.timer(cb);
  }

  armAt(at: Ns): void {
    if (this.stopped()) this.remaining = at > this.host.now ? at - this.host.now : 0n;
    else this.inner.armAt(at);
  }

  armIn(delayNs: number | bigint): void {
    if (this.stopped()) this.remaining = BigInt(delayNs);
    else this.inner.armIn(delayNs);
  }

  cancel(): void {
    this.remaining = null;
    this.inner.cancel();
  }

  get pending(): boolean {
    return this.remaining !== null || this.inner.pending;
  }

  /** While held: when it would fire if the clock restarted now (what expiresOnClock needs). */
  get expires(): Ns | null {
    return this.remaining !== null ? this.host.now + this.remaining : this.inner.expires;
  }

  hold(): void {
    const e = this.inner.expires;
    if (e === null) return;
    this.remaining = e - this.host.now;
    this.inner.cancel();
  }

  release(): void {
    if (this.remaining === null) return;
    const r = this.remaining;
    this.remaining = null;
    this.inner.armIn(r);
  }
}
