// A literal round robin for tests: a FIFO run queue stepped slot by slot. Each slot the first C threads run
// and then move to the back; every thread not running waits and adds to its run_delay. It shares nothing
// with src/world/host-cpus.ts (whose closed form it checks) but the rule that a change of the runnable set
// starts a new queue in creation order at the time of the change. Queries go forward in time only.
import type { Ns } from '../../src/core/index.ts';

export class FifoRoundRobin {
  private queue: string[] = [];
  private readonly delay = new Map<string, Ns>();
  private slotStart: Ns;
  private t: Ns;

  constructor(
    private readonly cpus: number,
    private readonly sliceNs: Ns,
    runnable: readonly string[],
    at: Ns = 0n,
  ) {
    this.t = at;
    this.slotStart = at;
    this.setRunnable(runnable);
  }

  get now(): Ns {
    return this.t;
  }

  /** A new epoch now: these threads (creation order) are runnable, the others sleep. */
  setRunnable(runnable: readonly string[]): void {
    this.queue = [...runnable];
    this.slotStart = this.t;
    for (const n of runnable) if (!this.delay.has(n)) this.delay.set(n, 0n);
  }

  private contended(): boolean {
    return this.queue.length > this.cpus;
  }

  advanceTo(t: Ns): void {
    if (t < this.t) throw new Error(`oracle queried backwards: ${t} < ${this.t}`);
    if (!this.contended()) {
      this.t = t;
      return;
    }
    while (this.slotStart + this.sliceNs <= t) {
      this.wait(this.slotStart + this.sliceNs - this.t);
      this.queue = [...this.queue.slice(this.cpus), ...this.queue.slice(0, this.cpus)];
      this.slotStart += this.sliceNs;
      this.t = this.slotStart;
    }
    this.wait(t - this.t);
    this.t = t;
  }

  private wait(ns: Ns): void {
    for (const n of this.queue.slice(this.cpus)) this.delay.set(n, this.delay.get(n)! + ns);
  }

  running(name: string, t: Ns): boolean {
    this.advanceTo(t);
    const i = this.queue.indexOf(name);
    return i >= 0 && (!this.contended() || i < this.cpus);
  }

  runDelay(name: string, t: Ns): Ns {
    this.advanceTo(t);
    return this.delay.get(name) ?? 0n;
  }

  /** The first time ≥ t at which `name` runs (it must be runnable). */
  nextRun(name: string, t: Ns): Ns {
    if (this.running(name, t)) return t;
    if (!this.queue.includes(name)) throw new Error(`${name} is not runnable`);
    let q = this.queue;
    let s = this.slotStart;
    for (;;) {
      q = [...q.slice(this.cpus), ...q.slice(0, this.cpus)];
      s += this.sliceNs;
      if (q.indexOf(name) < this.cpus) return s;
    }
  }
}
