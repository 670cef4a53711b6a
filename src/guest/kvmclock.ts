// The guest's kvm-clock driver (arch/x86/kernel/kvmclock.c): when it registers, which MSRs it uses,
// its rating (400, or 299 when the TSC is constant and nonstop), the TSC frequency it hands to
// tsc.c (pvclock_tsc_khz), its vDSO mode, and the boot wall clock from the wall-clock MSR.
// Reads go through Linux's pvclock.c (src/guest/pvclock.ts) on the record in guest memory.
import type { Ns } from '../core/index.ts';
import { U64_MAX } from '../core/index.ts';
import {
  decodePvclock,
  KVM_FEATURE_CLOCKSOURCE,
  KVM_FEATURE_CLOCKSOURCE2,
  KVM_FEATURE_CLOCKSOURCE_STABLE_BIT,
  MSR_KVM_SYSTEM_TIME,
  MSR_KVM_SYSTEM_TIME_NEW,
  MSR_KVM_WALL_CLOCK,
  MSR_KVM_WALL_CLOCK_NEW,
  PVCLOCK_TSC_STABLE_BIT,
  PVCLOCK_VCPU_TIME_INFO_SIZE,
  type PvclockVcpuTimeInfo,
} from '../core/index.ts';
import { CLOCK_SOURCE_IS_CONTINUOUS, Clocksource } from './clocksource.ts';
import type { KernelConfig } from './kernel.ts';
import type { GuestPlatform } from './platform.ts';
import type { TimeParams } from './cmdline.ts';
import { PvclockGuest } from './pvclock.ts';

/** Where this model's guest kernel places hv_clock (per-vCPU, 64 bytes apart) and wall_clock. */
export const HV_CLOCK_GPA = 0x10_0000n;
/** sizeof(struct pvclock_vsyscall_time_info): one cache line per CPU in hv_clock_boot (kvmclock.c). */
export const HV_CLOCK_STRIDE = 64n;

/** The GPA of CPU `cpu`'s pvclock record (hv_clock_boot[cpu]; the model places all 64 in the boot page). */
export function hvClockGpa(cpu: number): bigint {
  return HV_CLOCK_GPA + BigInt(cpu) * HV_CLOCK_STRIDE;
}
export const WALL_CLOCK_GPA = 0x10_1000n;

export interface KvmclockSetup {
  clocksource: Clocksource;
  msrSystemTime: number;
  msrWallClock: number;
  stable: boolean;
  lines: string[];
  pvclock: PvclockGuest;
  tscKhz: () => number;
  read: () => Ns;
  /** kvm_clock_read() on CPU `cpu`: its own per-CPU record and its own TSC (this_cpu_pvti()). */
  readOn: (cpu: number) => Ns;
  /** kvm_get_wallclock(): writes the wall-clock MSR and reads the boot wall time, ns since the epoch. */
  wallclock: () => Ns;
  /** kvm_sched_clock_offset: kvm-clock's reading at kvmclock_init. */
  schedClockOffset: Ns;
  /** kvm_sched_clock_read(): the paravirt sched_clock. */
  schedClock: () => Ns;
}

const hasBit = (features: number, bit: number): boolean => ((features >>> bit) & 1) === 1;

/**
 * pvclock_tsc_khz() from arch/x86/kernel/pvclock.c: (10^6 << 32) / tsc_to_system_mul, then undo
 * tsc_shift. Integer division throughout, so an odd host kHz comes back one lower.
 */
export function pvclockTscKhz(src: Pick<PvclockVcpuTimeInfo, 'tscToSystemMul' | 'tscShift'>): number {
  let khz = (1_000_000n << 32n) / BigInt(src.tscToSystemMul >>> 0);
  if (src.tscShift < 0) khz <<= BigInt(-src.tscShift);
  else khz >>= BigInt(src.tscShift);
  return Number(khz);
}

/** Whether kvmclock_init() gets as far as registering (kvm_para_available + feature bits + config). */
export function kvmclockAvailable(p: GuestPlatform, k: KernelConfig, t: TimeParams): boolean {
  const kvm = p.cpuid.kvm;
  if (!k.kvmGuest || !k.paravirtClock || !kvm || t.noKvmclock || !p.memory || !p.wrmsr) return false;
  return hasBit(kvm.features, KVM_FEATURE_CLOCKSOURCE2) || hasBit(kvm.features, KVM_FEATURE_CLOCKSOURCE);
}

/** kvmclock_init(). Call only when kvmclockAvailable(). */
export function kvmclockInit(p: GuestPlatform): KvmclockSetup {
  const features = p.cpuid.kvm!.features;
  const mem = p.memory!;
  const v2 = hasBit(features, KVM_FEATURE_CLOCKSOURCE2);
  const msrSystemTime = v2 ? MSR_KVM_SYSTEM_TIME_NEW : MSR_KVM_SYSTEM_TIME;
  const msrWallClock = v2 ? MSR_KVM_WALL_CLOCK_NEW : MSR_KVM_WALL_CLOCK;
  const lines = [`kvm-clock: Using msrs ${msrSystemTime.toString(16)} and ${msrWallClock.toString(16)}`];
  // kvm_register_clock(): hv_clock GPA | 1 into MSR_KVM_SYSTEM_TIME(_NEW) on the boot CPU, then on each
  // AP as it comes up (kvm_setup_secondary_clock, x86_cpuinit.early_percpu_clock_init), each its own record
  p.wrmsr!(0, msrSystemTime, HV_CLOCK_GPA | 1n);
  for (let cpu = 1; cpu < p.vcpus; cpu++) p.wrmsr!(cpu, msrSystemTime, hvClockGpa(cpu) | 1n);
  const pvclock = new PvclockGuest();
  const stableFeature = hasBit(features, KVM_FEATURE_CLOCKSOURCE_STABLE_BIT);
  if (stableFeature) pvclock.setFlags(PVCLOCK_TSC_STABLE_BIT);
  const record = (): PvclockVcpuTimeInfo => decodePvclock(mem.read(HV_CLOCK_GPA, PVCLOCK_VCPU_TIME_INFO_SIZE));
  const rdtsc = (): bigint => p.rdtsc();
  const read = (): Ns => pvclock.readNs(mem, HV_CLOCK_GPA, rdtsc);
  const readOn = (cpu: number): Ns => (cpu === 0 ? read() : pvclock.readNs(mem, hvClockGpa(cpu), () => p.rdtsc(cpu)));
  const stable = stableFeature && (record().flags & PVCLOCK_TSC_STABLE_BIT) !== 0;
  // kvm_sched_clock_init(): clear_sched_clock_stable() unless stable, then sched_clock becomes
  // kvm_clock_read() - kvm_sched_clock_offset, the offset being kvm-clock's reading now; current
  // kernels print it whether or not the clock is stable (4.x returned early when unstable)
  const schedClockOffset = read();
  lines.push(`kvm-clock: using sched offset of ${schedClockOffset} cycles`);
  // Rating drop on X86_FEATURE_CONSTANT_TSC && X86_FEATURE_NONSTOP_TSC. Its !check_tsc_unstable()
  // test cannot see tsc=unstable: __setup parameters are parsed after setup_arch().
  const rating = p.cpuid.invariantTsc ? 299 : 400;
  const cs = new Clocksource({ name: 'kvm-clock', rating, mask: U64_MAX, flags: CLOCK_SOURCE_IS_CONTINUOUS, read, readOn });
  const wallclock = (): Ns => {
    p.wrmsr!(0, msrWallClock, WALL_CLOCK_GPA);
    const w = pvclock.readWallclock(mem, WALL_CLOCK_GPA, HV_CLOCK_GPA, () => p.rdtsc());
    return w.sec * 1_000_000_000n + BigInt(w.nsec);
  };
  const schedClock = (): Ns => read() - schedClockOffset;
  return {
    clocksource: cs,
    msrSystemTime,
    msrWallClock,
    stable,
    lines,
    pvclock,
    tscKhz: () => pvclockTscKhz(record()),
    read,
    readOn,
    wallclock,
    schedClockOffset,
    schedClock,
  };
}

/**
 * kvm_setup_vsyscall_timeinfo() (early_initcall): vDSO pvclock only on 64-bit, with the stable
 * bit set in the record, and without no-kvmclock-vsyscall.
 */
export function kvmclockVdsoMode(setup: KvmclockSetup, k: KernelConfig, t: TimeParams): 'pvclock' | 'none' {
  if (k.bits !== 64 || t.noKvmclockVsyscall || !setup.stable) return 'none';
  return 'pvclock';
}
