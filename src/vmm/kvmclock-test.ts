// A multi-vCPU kvmclock check in the manner of kvm-unit-tests' x86/kvmclock_test.c, run against the
// model's KVM (src/hypervisor) and the guest's pvclock reader (src/guest/pvclock.ts): every vCPU registers
// its own record (kvm_clock_init on each CPU), then reads interleave across the vCPUs and each read is
// compared with the previous read made on any vCPU (cycle_test: t1 = kvm_clock_read(); t0 = last;
// last = kvm_clock_read(); delta = t1 - t0 < 0 is a warp, 0 a stall, the most negative the worst warp).
// Two readers as the test has them: "raw cycle" (PVCLOCK_RAW_CYCLE_BIT: no last_value guard) and
// "monotonic cycle" (valid flag PVCLOCK_TSC_STABLE_BIT: the guard applies unless the record is stable).
//
// What the model chooses (docs/fidelity.md): the host (its TSC counts tsc_khz per ms exactly; each host CPU
// may be skewed), vCPU i pinned to a host CPU, and when each vCPU's thread is put and loaded again
// (preempted, or halted and woken): vCPU i every `wakeIntervalNs`, at phase i·wakeInterval/N. On a host
// whose TSC is unstable every load re-anchors that vCPU's record (kvm_arch_vcpu_load → KVM_REQ_GLOBAL_CLOCK_UPDATE),
// so records are computed at different times; reads at a fixed interval, round-robin over the vCPUs.
import { Engine, InputError, MSR_KVM_SYSTEM_TIME_NEW, NSEC_PER_SEC, PVCLOCK_TSC_STABLE_BIT } from '../core/index.ts';
import type { Cycles, Ns } from '../core/index.ts';
import { hvClockGpa, PVCLOCK_RAW_CYCLE_BIT, PvclockGuest } from '../guest/index.ts';
import { FlatGuestMemory, HOST_HPET_PERIOD_FS, KvmVm, LinuxHostTimekeeper, type KvmVcpu, type RdtscExiting } from '../hypervisor/index.ts';

export interface KvmclockTestHost {
  tscKhz: number;
  /** Each host CPU's TSC minus CPU 0's, ns (index = host CPU; missing CPUs: 0). */
  tscSkewNs?: readonly number[];
  /**
   * The host kernel trusts its TSC (`tsc=reliable`): check_tsc_sync_source() is skipped
   * (arch/x86/kernel/tsc_sync.c), so a skew goes unnoticed, the TSC stays the host clocksource and KVM
   * keeps its master clock. Otherwise any skew fails that check: "Marking TSC unstable due to
   * check_tsc_sync_source failed", and the host runs on the HPET.
   */
  tscReliable?: boolean;
}

export interface KvmclockTestOptions {
  host: KvmclockTestHost;
  vcpus: number;
  /** The host CPU each vCPU runs on (default: vCPU i on CPU i). */
  placement?: readonly number[];
  /** Reads in all, round-robin over the vCPUs (kvm-unit-tests: loops per vCPU × vCPUs). */
  reads: number;
  /** Time between two consecutive reads (on different vCPUs). */
  readIntervalNs: Ns;
  /** How often each vCPU's thread is put and loaded again (staggered across vCPUs). */
  wakeIntervalNs: Ns;
  rdtscExiting?: RdtscExiting;
}

/** One reader's figures, as cycle_test prints them. */
export interface WarpCount {
  warps: number;
  stalls: number;
  /** The most negative t1 - t0, ns (0 when no warp). */
  worstNs: bigint;
}

export interface KvmclockTestResult {
  vcpus: number;
  reads: number;
  /** KVM's master clock was in use when the reads ran (pvclock_update_vm_gtod_copy). */
  masterClock: boolean;
  /** The records had PVCLOCK_TSC_STABLE_BIT. */
  tscStable: boolean;
  /** The host kernel marked its TSC unstable (the skew failed its sync check). */
  hostTscUnstable: boolean;
  raw: WarpCount;
  monotonic: WarpCount;
}

/** The host CPU uptime at which the test starts (the host TSC's count then). */
const HOST_UPTIME_NS = 3600n * NSEC_PER_SEC;
/** Bring-up of the APs: kvm_clock_init runs on CPU i this long after CPU i-1 (on_cpu is synchronous). */
const BRINGUP_GAP_NS = 1_000_000n;

/** Validate the options; a bad one is an InputError naming it. */
function check(o: KvmclockTestOptions): number[] {
  if (!Number.isInteger(o.vcpus) || o.vcpus < 1 || o.vcpus > 64) throw new InputError(`vCPU count must be 1…64, got ${o.vcpus}`, 'vcpus');
  if (!Number.isInteger(o.reads) || o.reads < 1) throw new InputError(`reads must be a positive whole number, got ${o.reads}`, 'reads');
  if (o.readIntervalNs <= 0n) throw new InputError('read interval must be greater than 0', 'read_interval');
  if (o.wakeIntervalNs <= 0n) throw new InputError('wake interval must be greater than 0', 'wake_interval');
  const placement = o.placement ? [...o.placement] : Array.from({ length: o.vcpus }, (_, i) => i);
  if (placement.length !== o.vcpus) throw new InputError(`placement names ${placement.length} host CPUs for ${o.vcpus} vCPUs`, 'placement');
  return placement;
}

/** Host CPU skews in cycles (ns · kHz / 10^6, truncated toward zero like a C cast). */
export function skewCycles(skewNs: readonly number[], tscKhz: number): Cycles[] {
  return skewNs.map((ns) => (BigInt(Math.trunc(ns)) * BigInt(tscKhz)) / 1_000_000n);
}

/** Whether a host with these skews and that trust in its TSC marks it unstable (see KvmclockTestHost). */
export function hostMarksTscUnstable(host: KvmclockTestHost): boolean {
  const skew = skewCycles(host.tscSkewNs ?? [], host.tscKhz);
  return !host.tscReliable && skew.some((c) => c !== (skew[0] ?? 0n));
}

/** Run the check; deterministic for given options. */
export function runKvmclockTest(o: KvmclockTestOptions): KvmclockTestResult {
  const placement = check(o);
  const engine = new Engine();
  const khz = BigInt(o.host.tscKhz);
  const tsc0 = (HOST_UPTIME_NS * khz) / 1_000_000n;
  const unstable = hostMarksTscUnstable(o.host);
  const host = new LinuxHostTimekeeper({
    tscKhz: o.host.tscKhz,
    rdtsc: () => tsc0 + (engine.now * khz) / 1_000_000n,
    cpuTscSkew: skewCycles(o.host.tscSkewNs ?? [], o.host.tscKhz),
    tscUnstable: unstable,
    ...(unstable ? { hpet: { periodFs: HOST_HPET_PERIOD_FS } } : {}),
  });
  const memory = new FlatGuestMemory(0x20_0000);
  const kvm = new KvmVm({ host, memory, scheduler: engine });
  const vcpus: KvmVcpu[] = [];
  for (let i = 0; i < o.vcpus; i++) vcpus.push(kvm.createVcpu(o.rdtscExiting ? { rdtscExiting: o.rdtscExiting } : {}));
  // smp_init, then on_cpu(i, kvm_clock_init) one CPU after the other
  for (let i = 0; i < o.vcpus; i++) {
    engine.run(BigInt(i) * BRINGUP_GAP_NS);
    const v = vcpus[i]!;
    v.run(placement[i]!);
    v.setMsr(MSR_KVM_SYSTEM_TIME_NEW, hvClockGpa(i) | 1n);
    v.run(placement[i]!);
  }
  // each vCPU thread is put and loaded again every wakeInterval, vCPU i at phase i/N of it
  const start = BigInt(o.vcpus) * BRINGUP_GAP_NS;
  for (let i = 0; i < o.vcpus; i++) {
    const v = vcpus[i]!;
    const t = engine.timer(() => {
      v.run(placement[i]!);
      t.armIn(o.wakeIntervalNs);
    });
    t.armAt(start + (BigInt(i) * o.wakeIntervalNs) / BigInt(o.vcpus));
  }
  const raw = new PvclockGuest();
  raw.setFlags(PVCLOCK_TSC_STABLE_BIT | PVCLOCK_RAW_CYCLE_BIT);
  const mono = new PvclockGuest();
  mono.setFlags(PVCLOCK_TSC_STABLE_BIT);
  const counts = { raw: { warps: 0, stalls: 0, worstNs: 0n }, monotonic: { warps: 0, stalls: 0, worstNs: 0n } };
  let lastRaw = 0n;
  let lastMono = 0n;
  const tally = (c: WarpCount, delta: bigint): void => {
    if (delta < 0n) {
      c.warps++;
      if (delta < c.worstNs) c.worstNs = delta;
    } else if (delta === 0n) c.stalls++;
  };
  // reads start one wake interval in, once every vCPU has been loaded again at least once
  const firstRead = start + o.wakeIntervalNs;
  let masterClock = kvm.useMasterClock;
  let tscStable = false;
  for (let j = 0; j < o.reads; j++) {
    engine.run(firstRead + BigInt(j) * o.readIntervalNs);
    if (j === 0) masterClock = kvm.useMasterClock;
    const cpu = j % o.vcpus;
    const v = vcpus[cpu]!;
    const gpa = hvClockGpa(cpu);
    const rdtsc = (): Cycles => v.guestRdtsc();
    if (j === 0) tscStable = ((v.lastPvclock?.flags ?? 0) & PVCLOCK_TSC_STABLE_BIT) !== 0;
    const r = raw.readNs(memory, gpa, rdtsc);
    tally(counts.raw, r - lastRaw);
    lastRaw = r;
    const m = mono.readNs(memory, gpa, rdtsc);
    tally(counts.monotonic, m - lastMono);
    lastMono = m;
  }
  kvm.destroy();
  return {
    vcpus: o.vcpus,
    reads: o.reads,
    masterClock,
    tscStable,
    hostTscUnstable: unstable,
    raw: counts.raw,
    monotonic: counts.monotonic,
  };
}
