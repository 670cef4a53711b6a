// The devices' time base and timers under live KVM: the host's CLOCK_MONOTONIC (process.hrtime), with
// timers on the Node event loop. A device keeps computing its registers from the clock at each access,
// as it does under simulation; only the firing of its timers is as late as the event loop makes it.
import type { EventCallback, Scheduler, Timer } from '../core/index.ts';
import type { Ns } from '../core/index.ts';

export class HostScheduler implements Scheduler {
  private readonly live = new Set<HostTimer>();

  get now(): Ns {
    return process.hrtime.bigint();
  }

  timer(callback: EventCallback): Timer {
    return new HostTimer(this, callback, this.live);
  }

  /** Cancel every pending timer (the machine is closing). */
  cancelAll(): void {
    for (const t of [...this.live]) t.cancel();
  }
}

class HostTimer implements Timer {
  private handle: NodeJS.Timeout | null = null;
  private at: Ns | null = null;

  constructor(
    private readonly s: HostScheduler,
    private readonly cb: EventCallback,
    private readonly live: Set<HostTimer>,
  ) {}

  armAt(at: Ns): void {
    this.cancel();
    this.at = at;
    const ms = Number(at - this.s.now) / 1e6;
    this.handle = setTimeout(() => this.fire(), Math.max(0, ms));
    this.live.add(this);
  }

  armIn(delayNs: number | bigint): void {
    this.armAt(this.s.now + BigInt(delayNs));
  }

  private fire(): void {
    // setTimeout may fire a fraction of a millisecond early: wait for the clock to reach the expiry.
    if (this.at !== null && this.s.now < this.at) return this.armAt(this.at);
    this.handle = null;
    this.at = null;
    this.live.delete(this);
    this.cb();
  }

  cancel(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = null;
    this.at = null;
    this.live.delete(this);
  }

  get pending(): boolean {
    return this.handle !== null;
  }

  get expires(): Ns | null {
    return this.at;
  }
}
