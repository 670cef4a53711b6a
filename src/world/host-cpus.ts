// A host's physical CPUs shared by its runnable threads: every VM's vCPU threads and the host's other busy
// work (hosts[].cpus, hosts[].load), scheduled by a fair-share round robin in time slices.
//
// Model (docs/fidelity.md): vCPU threads are always runnable (CPU-bound guests) unless their VM is stopped;
// busy threads always are. While the set of runnable threads stays the same (an epoch), slot k of the
// epoch (slice S from its start) runs threads k·C … k·C+C−1 modulo N (C CPUs, N runnable threads in a fixed
// order), so every thread gets exactly C/N of the CPUs over N/gcd(N, C) slots, as CFS/EEVDF give
// equal-weight CPU-bound tasks. Thread i's m-th run is slot ⌊(i + m·N)/C⌋, which answers every query in
// O(1) integer arithmetic and needs no engine event per slice. A change of the set (a VM created, stopped,
// restarted) starts a new epoch; its first slot goes to the first C threads in creation order.
import type { Ns } from '../core/index.ts';
import type { VcpuSchedule } from '../vmm/index.ts';

/**
 * The host kernel's base slice: sysctl_sched_base_slice = 0.70 ms × (1 + ilog2(min(ncpus, 8)))
 * (kernel/sched/fair.c since v6.15 — 0.75 ms in v6.6–6.14, sched_min_granularity before — scaled by
 * get_update_sysctl_factor under the default SCHED_TUNABLESCALING_LOG).
 */
export function schedBaseSliceNs(cpus: number): Ns {
  const factor = 1 + Math.floor(Math.log2(Math.min(cpus, 8)));
  return 700_000n * BigInt(factor);
}

export interface HostCpusConfig {
  cpus: number;
  /** Other always-runnable threads on the host. */
  busyThreads: number;
  /** Default: schedBaseSliceNs(cpus). */
  sliceNs?: Ns;
}

class Thread {
  runnable = true;
  /** Position among the current epoch's runnable threads (-1: sleeping). */
  index = -1;
  /** sched_info.run_delay at the start of the current epoch. */
  delay0: Ns = 0n;
  constructor(readonly name: string) {}
}

export class HostCpus {
  readonly cpus: bigint;
  readonly sliceNs: Ns;
  private readonly threads: Thread[] = [];
  private epochStart: Ns;
  /** Runnable threads this epoch. */
  private n = 0n;

  constructor(
    cfg: HostCpusConfig,
    /** The engine's clock: an epoch starts at the time of a change. */
    private readonly now: () => Ns,
  ) {
    if (!Number.isInteger(cfg.cpus) || cfg.cpus < 1) throw new RangeError(`host CPUs must be a whole number ≥ 1, got ${cfg.cpus}`);
    this.cpus = BigInt(cfg.cpus);
    this.sliceNs = cfg.sliceNs ?? schedBaseSliceNs(cfg.cpus);
    if (this.sliceNs <= 0n) throw new RangeError('the time slice must be positive');
    this.epochStart = now();
    for (let i = 0; i < cfg.busyThreads; i++) this.threads.push(new Thread(`busy${i}`));
    this.reschedule();
  }

  /** New runnable threads for a VM's vCPUs (created now), with the VMM's view of them. */
  vcpuThreads(count: number, name = 'vm'): VcpuSchedule {
    const ths = Array.from({ length: count }, (_, i) => new Thread(`${name}/vcpu${i}`));
    this.threads.push(...ths);
    this.reschedule();
    const th = (cpu: number): Thread => {
      const t = ths[cpu];
      if (!t) throw new RangeError(`no vCPU ${cpu} (${count} vCPUs)`);
      return t;
    };
    return {
      running: (cpu, t) => this.running(th(cpu), t),
      nextRun: (cpu, t) => this.nextRun(th(cpu), t),
      runDelay: (cpu, t) => this.runDelay(th(cpu), t),
      alwaysRuns: (cpu) => th(cpu).index >= 0 && this.n <= this.cpus,
      setRunnable: (runnable) => {
        if (ths.every((x) => x.runnable === runnable)) return;
        this.fold();
        for (const x of ths) x.runnable = runnable;
        this.reschedule(false);
      },
    };
  }

  /** Threads runnable now. */
  get runnableThreads(): number {
    return Number(this.n);
  }

  /** Bring every thread's run_delay up to now and start a new epoch with the runnable ones in creation order. */
  private reschedule(fold = true): void {
    if (fold) this.fold();
    this.epochStart = this.now();
    let i = 0;
    for (const th of this.threads) th.index = th.runnable ? i++ : -1;
    this.n = BigInt(i);
  }

  private fold(): void {
    const t = this.now();
    for (const th of this.threads) if (th.index >= 0) th.delay0 = this.runDelay(th, t);
  }

  /** Slot number and offset into it at t (t in the current epoch). */
  private slot(t: Ns): { k: bigint; f: Ns } {
    const d = t - this.epochStart;
    if (d < 0n) throw new RangeError(`host CPU schedule asked about ${t} ns, before its current epoch (${this.epochStart} ns)`);
    return { k: d / this.sliceNs, f: d % this.sliceNs };
  }

  /** (i − k·C) mod N < C: slot k runs threads k·C … k·C+C−1 modulo N. */
  private runsIn(i: bigint, k: bigint): boolean {
    const N = this.n;
    const r = (((i - k * this.cpus) % N) + N) % N;
    return r < this.cpus;
  }

  /** Whether the thread runs on a host CPU at t. */
  running(th: Thread, t: Ns): boolean {
    if (th.index < 0) return false;
    if (this.n <= this.cpus) return true;
    return this.runsIn(BigInt(th.index), this.slot(t).k);
  }

  /** The first time ≥ t at which it runs (t itself when running; far future while it sleeps). */
  nextRun(th: Thread, t: Ns): Ns {
    if (th.index < 0) return t + 1_000_000_000n; // asleep: nothing runs it until it is made runnable again
    if (this.n <= this.cpus) return t;
    const i = BigInt(th.index);
    const { k } = this.slot(t);
    if (this.runsIn(i, k)) return t;
    // its first run after slot k: the smallest m with i + m·N ≥ (k+1)·C, in slot ⌊(i + m·N)/C⌋
    const N = this.n;
    const C = this.cpus;
    const m = ((k + 1n) * C - i + N - 1n) / N;
    return this.epochStart + ((i + m * N) / C) * this.sliceNs;
  }

  /** sched_info.run_delay at t: the time it spent runnable and waiting for a CPU. */
  runDelay(th: Thread, t: Ns): Ns {
    if (th.index < 0 || this.n <= this.cpus) return th.delay0;
    const i = BigInt(th.index);
    const N = this.n;
    const { k, f } = this.slot(t);
    // runs in slots [0, k): m ≥ 0 with i + m·N < k·C, i.e. ⌈(k·C − i)/N⌉ (k·C − i + N − 1 ≥ 0 as i < N)
    const runs = (k * this.cpus - i + N - 1n) / N;
    return th.delay0 + (k - runs) * this.sliceNs + (this.runsIn(i, k) ? 0n : f);
  }
}
