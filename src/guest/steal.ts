// Steal time accounting (kernel/sched/cputime.c steal_account_process_time, account_process_tick;
// arch/x86/kernel/kvm.c kvm_steal_clock) and the cpu lines of /proc/stat (fs/proc/stat.c), in
// USER_HZ clock ticks (nsec_to_clock_t). Time is accounted tick by tick, as with a periodic tick or
// CONFIG_TICK_CPU_ACCOUNTING; the steal clock is read from the vCPU's steal-time record.
import type { Ns } from '../core/index.ts';
import { decodeStealTime, KVM_STEAL_TIME_LAYOUT, KVM_STEAL_TIME_SIZE, type KvmStealTime, ramWords } from '../core/index.ts';
import type { PvclockMemory } from './pvclock.ts';

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

/**
 * paravirt_steal_clock(cpu) for per-CPU records at `base` + 64·cpu: kvm_steal_clock() on each. In flat RAM
 * the record is read in place — the retry loop settles on the first pass there, nothing writing the record
 * during a read; an odd version (never settling) and records outside the RAM go through the copying read.
 */
export function kvmStealClockReader(mem: PvclockMemory, base: bigint): (cpu: number) => Ns {
  const copying = (cpu: number): Ns => kvmStealClock(() => decodeStealTime(mem.read(base + BigInt(cpu * 64), KVM_STEAL_TIME_SIZE)));
  const w = ramWords(mem.bytes);
  if (!w || base < 0n || base % 64n !== 0n || base >= BigInt(w.u8.length)) return copying;
  const baseOff = Number(base);
  const limit = w.u8.length - KVM_STEAL_TIME_SIZE;
  const versionAt = KVM_STEAL_TIME_LAYOUT.version;
  const stealAt = KVM_STEAL_TIME_LAYOUT.steal;
  return (cpu) => {
    const off = baseOff + cpu * 64;
    if (!(off >= 0 && off <= limit) || (w.u32[(off + versionAt) >>> 2]! & 1) !== 0) return copying(cpu);
    return w.u64[(off + stealAt) >>> 3]!;
  };
}

/** account_process_tick's maxtime (ULONG_MAX in cputime.c): the model's bound, above any steal it accumulates. */
const TICK_MAXTIME = BigInt(Number.MAX_SAFE_INTEGER) * 1000n;

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
    const steal = this.stealAccount(cpu, TICK_MAXTIME);
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
