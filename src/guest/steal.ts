// Steal time accounting (kernel/sched/cputime.c steal_account_process_time, account_process_tick;
// arch/x86/kernel/kvm.c kvm_steal_clock) and the cpu lines of /proc/stat (fs/proc/stat.c), in
// USER_HZ clock ticks (nsec_to_clock_t). Time is accounted tick by tick, as with a periodic tick or
// CONFIG_TICK_CPU_ACCOUNTING; the steal clock is read from the vCPU's steal-time record.
import type { Ns } from '../core/index.ts';
import type { KvmStealTime } from '../core/index.ts';

export type CpuMode = 'user' | 'nice' | 'system' | 'idle' | 'iowait' | 'irq' | 'softirq';

export interface CpuStat {
  user: Ns;
  nice: Ns;
  system: Ns;
  idle: Ns;
  iowait: Ns;
  irq: Ns;
  softirq: Ns;
  steal: Ns;
  guest: Ns;
  guestNice: Ns;
}

const zero = (): CpuStat => ({
  user: 0n,
  nice: 0n,
  system: 0n,
  idle: 0n,
  iowait: 0n,
  irq: 0n,
  softirq: 0n,
  steal: 0n,
  guest: 0n,
  guestNice: 0n,
});

/** kvm_steal_clock(): retry while the record's version is odd or changes. */
export function kvmStealClock(read: () => KvmStealTime): Ns {
  for (;;) {
    const a = read();
    const b = read();
    if ((a.version & 1) === 0 && a.version === b.version) return a.steal;
  }
}

export class StealAccounting {
  readonly cpus: CpuStat[];
  private readonly prevSteal: Ns[];

  constructor(
    nrCpus: number,
    private readonly tickNsec: Ns,
    /** paravirt_steal_clock(cpu), or null when steal accounting is off (no KVM_FEATURE_STEAL_TIME, no-steal-acc). */
    private readonly stealClock: ((cpu: number) => Ns) | null,
  ) {
    this.cpus = Array.from({ length: nrCpus }, zero);
    this.prevSteal = Array.from({ length: nrCpus }, () => (stealClock ? stealClock(0) : 0n));
    if (stealClock) for (let c = 0; c < nrCpus; c++) this.prevSteal[c] = stealClock(c);
  }

  /** steal_account_process_time(maxtime). */
  private stealAccount(cpu: number, maxtime: Ns): Ns {
    if (!this.stealClock) return 0n;
    let steal = this.stealClock(cpu) - this.prevSteal[cpu]!;
    if (steal < 0n) steal = 0n;
    if (steal > maxtime) steal = maxtime;
    this.cpus[cpu]!.steal += steal;
    this.prevSteal[cpu]! += steal;
    return steal;
  }

  /** account_process_tick(): one tick of `mode` on `cpu`, minus what was stolen. */
  tick(cpu: number, mode: CpuMode): void {
    let cputime = this.tickNsec;
    const steal = this.stealAccount(cpu, BigInt(Number.MAX_SAFE_INTEGER) * 1000n);
    if (steal >= cputime) return;
    cputime -= steal;
    this.cpus[cpu]![mode] += cputime;
  }

  /**
   * Account `n` ticks at once. The steal clock does not move between them (KVM updates the record
   * only at guest entry), so the first tick takes all new steal and the rest are whole ticks:
   * the same sums as n calls of tick().
   */
  ticks(cpu: number, mode: CpuMode, n: number): void {
    if (n <= 0) return;
    this.tick(cpu, mode);
    if (n > 1) this.cpus[cpu]![mode] += this.tickNsec * BigInt(n - 1);
  }

  /** The cpu lines of /proc/stat (show_stat), values in USER_HZ ticks. */
  procStat(): string {
    const clk = (ns: Ns): string => String(ns / 10_000_000n);
    const line = (name: string, s: CpuStat): string =>
      `${name} ${clk(s.user)} ${clk(s.nice)} ${clk(s.system)} ${clk(s.idle)} ${clk(s.iowait)} ${clk(s.irq)} ${clk(s.softirq)} ${clk(s.steal)} ${clk(s.guest)} ${clk(s.guestNice)}\n`;
    const sum = zero();
    for (const c of this.cpus) for (const k of Object.keys(sum) as (keyof CpuStat)[]) sum[k] += c[k];
    let out = line('cpu ', sum);
    this.cpus.forEach((c, i) => (out += line(`cpu${i}`, c)));
    return out;
  }
}
