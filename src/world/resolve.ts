// The one resolver from a parsed scenario to what the world builds: hosts with their crystal, TSC and
// CPU, and each VM with its machine profile, kernel preset, command line and timings, all in exact ns.
// `run`, `guest --scenario`, `guest --profile` and the doctor's replay all boot from this (src/world/boot.ts).
import { InputError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import type { KernelConfig } from '../guest/index.ts';
import { type HostCpu, kernelPreset, type MachineProfile, machineProfile, resolveHost, vmgenidFlavor } from '../vmm/index.ts';
import { type HostTscSkew, skewCycles } from '../vmm/index.ts';
import type { RdtscExiting } from '../hypervisor/index.ts';
import type { HostConfig } from './host.ts';
import type { Scenario } from './scenario.ts';

export interface ResolvedHost {
  name: string;
  /** Steps of the host's own CLOCK_REALTIME, in time order. */
  realtimeSteps: { atNs: Ns; byNs: Ns }[];
  /** The world's host: crystal, TSC, clocks. */
  config: HostConfig;
  /** What a VM on this host is shown of its CPU (the crystal's ppm is taken when the VM is created). */
  cpu: Omit<HostCpu, 'ppm'>;
  /** hosts[].cpus and hosts[].load: the CPUs the vCPU threads share (absent: no thread ever waits). */
  cpuShare?: { cpus: number; busyThreads: number };
  /** hosts[].tsc_skew: per-CPU TSC skew in cycles, and whether the host trusts its TSC anyway. */
  tscSkew?: HostTscSkew;
  /** hosts[].tsc_skew.per_cpu_ns as written (the kvmclock check builds its host from it). */
  tscSkewNs?: number[];
}

export interface ResolvedPause {
  atNs: Ns;
  durationNs: Ns;
}

export interface ResolvedSnapshot {
  atNs: Ns;
  restoreAfterNs: Ns;
  /** Host it is restored on (default: the one it ran on). */
  restoreOn?: string;
  clockRealtime?: boolean;
}

export interface ResolvedMigration {
  atNs: Ns;
  to: string;
  downtimeNs: Ns;
  tscScaling: boolean;
}

export interface ResolvedVm {
  index: number;
  name: string;
  host: string;
  profile: MachineProfile;
  kernel: KernelConfig;
  cmdline: string;
  vcpus?: number;
  bootAtNs: Ns;
  updateIntervalNs: Ns;
  kvmclockAtInitNs?: Ns;
  pauses: ResolvedPause[];
  snapshots: ResolvedSnapshot[];
  migrations: ResolvedMigration[];
  tscFrequencyKhz?: number;
  vmclock?: { precise: boolean; esterrorNs: Ns; maxerrorNs: Ns };
  /** vms[].clock_guest: the VMM moves kvmclock with KVM_GET_CLOCK_GUEST / KVM_SET_CLOCK_GUEST. */
  clockGuest: boolean;
  /** The VMGenID device's guid property ('auto' or a UUID), when the VM has one (Firecracker always: 'auto'). */
  vmgenid?: string;
  sync: Scenario['vms'][number]['sync'];
  /** vms[].initial_offset: the guest's REALTIME error set when userspace starts. */
  initialOffsetNs?: Ns;
  /** vms[].pit_lost_tick_policy (KVM's in-kernel PIT). */
  pitLostTickPolicy?: 'reinject' | 'discard';
  /** vms[].timer_interrupts resolved: whether the one-shot tick runs through the wired LAPIC interrupt. */
  directOneshotTick: boolean;
  /** vms[].deschedule: the vCPU threads run runNs of every periodNs. */
  deschedule?: { periodNs: Ns; runNs: Ns };
  /** vms[].ptp_kvm (default: on with sync.refclock): the guest loads ptp_kvm (/dev/ptp0). */
  ptpKvm: boolean;
  /** vms[].rdtsc_exiting. */
  rdtscExiting?: RdtscExiting;
  /** vms[].kvmclock_test. */
  kvmclockTest?: { reads: number; readIntervalNs: Ns; wakeIntervalNs: Ns };
}

export interface ResolvedNtpServer {
  name: string;
  stratum: number;
  /** Serves this host's REALTIME; absent: true UTC. */
  host?: string;
  path: { delayNs: Ns; jitterNs: Ns; asymmetryNs: Ns; loss: number };
}

export interface ResolvedScenario {
  name: string;
  seed: number;
  start: string;
  /** True UTC at scenario time 0, ns since the Unix epoch. */
  epochNs: Ns;
  durationNs: Ns;
  sampleIntervalNs: Ns;
  hosts: ResolvedHost[];
  vms: ResolvedVm[];
  ntpServers: ResolvedNtpServer[];
}

export function resolveHostEntry(h: Scenario['hosts'][number], index: number): ResolvedHost {
  const where = `hosts[${index}]`;
  // resolveHost applies the VMM layer's own limits; the schema already holds the scenario to them
  const cpu = resolveHost(
    {
      vendor: h.cpu.vendor,
      tscKhz: h.tsc.freq_khz,
      ppm: h.oscillator.ppm,
      invariantTsc: h.tsc.invariant,
      tscAdjust: h.cpu.tsc_adjust,
      tscDeadline: h.cpu.tsc_deadline,
      kvm: { hzTscScale: h.kvm.hz_tsc_scale, scaledGetClock: h.kvm.scaled_get_clock, clockGuestIoctls: h.kvm.clock_guest_ioctls },
    },
    `${where}.tsc.freq_khz`,
  );
  const { ppm: _ppm, ...shown } = cpu;
  return {
    name: h.name,
    realtimeSteps: h.realtime_steps
      .map((st) => ({ atNs: st.at, byNs: st.by }))
      .sort((a, b) => (a.atNs < b.atNs ? -1 : a.atNs > b.atNs ? 1 : 0)),
    config: {
      name: h.name,
      oscillator: { ppm: h.oscillator.ppm, wanderSigmaPpm: h.oscillator.wander_sigma_ppm, wanderIntervalNs: h.oscillator.wander_interval },
      tsc: { freqKhz: h.tsc.freq_khz, constant: h.tsc.constant, nonstop: h.tsc.nonstop, invariant: h.tsc.invariant },
      ntp: h.ntp,
      initialRealtimeErrorNs: BigInt(Math.round(h.realtime_error * 1e9)),
    },
    cpu: shown,
    ...(h.cpus !== undefined ? { cpuShare: { cpus: h.cpus, busyThreads: h.load.busy_threads } } : {}),
    ...(h.tsc_skew
      ? {
          tscSkew: { cycles: skewCycles(h.tsc_skew.per_cpu_ns, h.tsc.freq_khz), tscReliable: h.tsc_skew.tsc_reliable },
          tscSkewNs: [...h.tsc_skew.per_cpu_ns],
        }
      : {}),
  };
}

/**
 * `index`; `wiredHosts`: hosts on which auto timer interrupts are wired (some host shares its CPUs — a VM may move
 * there — or this host's TSCs are skewed).
 */
export function resolveVmEntry(vm: Scenario['vms'][number], index: number, wiredHosts: ReadonlySet<string> = new Set()): ResolvedVm {
  const where = (key: string) => `vms[${index}].${key}`;
  return {
    index,
    name: vm.name,
    host: vm.host,
    profile: machineProfile(vm.profile, where('profile')),
    kernel: kernelPreset(vm.kernel, where('kernel')),
    cmdline: vm.cmdline,
    ...(vm.vcpus !== undefined ? { vcpus: vm.vcpus } : {}),
    bootAtNs: vm.boot_at,
    updateIntervalNs: vm.update_interval,
    ...(vm.kvmclock_at_init !== undefined ? { kvmclockAtInitNs: vm.kvmclock_at_init } : {}),
    pauses: vm.pauses.map((p) => ({ atNs: p.at, durationNs: p.duration })),
    snapshots: vm.snapshots.map((sn) => ({
      atNs: sn.at,
      restoreAfterNs: sn.restore_after,
      ...(sn.restore_on !== undefined ? { restoreOn: sn.restore_on } : {}),
      ...(sn.clock_realtime !== undefined ? { clockRealtime: sn.clock_realtime } : {}),
    })),
    migrations: vm.migrations.map((m) => ({ atNs: m.at, to: m.to, downtimeNs: m.downtime, tscScaling: m.tsc_scaling })),
    ...(vm.tsc_frequency_khz !== undefined ? { tscFrequencyKhz: vm.tsc_frequency_khz } : {}),
    ...(vm.vmclock !== undefined
      ? { vmclock: { precise: vm.vmclock.precise, esterrorNs: vm.vmclock.esterror, maxerrorNs: vm.vmclock.maxerror } }
      : {}),
    clockGuest: vm.clock_guest,
    ...vmgenidOf(vm),
    sync: vm.sync,
    ...(vm.initial_offset !== undefined ? { initialOffsetNs: vm.initial_offset } : {}),
    ...(vm.pit_lost_tick_policy !== undefined ? { pitLostTickPolicy: vm.pit_lost_tick_policy } : {}),
    ...(vm.deschedule !== undefined ? { deschedule: { periodNs: vm.deschedule.period, runNs: vm.deschedule.run } } : {}),
    // auto: wired wherever the LAPIC interrupt can differ from its programmed expiry: a vCPU that can wait for a
    // host CPU (late or lost interrupts), a TSC-deadline on a skewed or RDTSC-compensated TSC
    directOneshotTick:
      vm.timer_interrupts === 'direct' ||
      (vm.timer_interrupts === 'auto' && vm.deschedule === undefined && vm.rdtsc_exiting === undefined && !wiredHosts.has(vm.host)),
    ptpKvm: vm.ptp_kvm ?? vm.sync.refclock !== undefined,
    ...(vm.rdtsc_exiting
      ? {
          rdtscExiting: {
            exitCostNs: vm.rdtsc_exiting.exit_cost,
            offsetCompensation: vm.rdtsc_exiting.offset_compensation,
            ratePerSec: vm.rdtsc_exiting.rate,
          },
        }
      : {}),
    ...(vm.kvmclock_test
      ? {
          kvmclockTest: {
            reads: vm.kvmclock_test.reads,
            readIntervalNs: vm.kvmclock_test.read_interval,
            wakeIntervalNs: vm.kvmclock_test.wake_interval,
          },
        }
      : {}),
  };
}

/** vms[].vmgenid → the device's guid property: QEMU only when asked, Firecracker always (random each time). */
function vmgenidOf(vm: Scenario['vms'][number]): { vmgenid?: string } {
  const flavor = vmgenidFlavor(vm.profile);
  if (flavor === 'firecracker') return { vmgenid: 'auto' };
  if (flavor === null || vm.vmgenid === undefined || vm.vmgenid === false) return {};
  return { vmgenid: vm.vmgenid === true ? 'auto' : vm.vmgenid };
}

export function resolveNtpServer(n: Scenario['ntp_servers'][number]): ResolvedNtpServer {
  return {
    name: n.name,
    stratum: n.stratum ?? (n.host === undefined ? 1 : 2),
    ...(n.host !== undefined ? { host: n.host } : {}),
    path: { delayNs: n.path.delay, jitterNs: n.path.jitter, asymmetryNs: n.path.asymmetry, loss: n.path.loss },
  };
}

/** A validated scenario, resolved: the only place scenario fields turn into model options. */
export function resolveScenario(s: Scenario): ResolvedScenario {
  // hosts where auto timer interrupts are wired: all when some host shares its CPUs (a VM may move there)
  const shared = s.hosts.some((h) => h.cpus !== undefined);
  const wiredHosts = new Set(s.hosts.filter((h) => shared || h.tsc_skew !== undefined).map((h) => h.name));
  return {
    name: s.name,
    seed: s.seed,
    start: s.start,
    epochNs: BigInt(Date.parse(s.start)) * 1_000_000n,
    durationNs: s.duration,
    sampleIntervalNs: s.sample_interval,
    hosts: s.hosts.map(resolveHostEntry),
    vms: s.vms.map((vm, i) => resolveVmEntry(vm, i, wiredHosts)),
    ntpServers: (s.ntp_servers ?? []).map(resolveNtpServer),
  };
}

/** The VM named `name` (default: the first). */
export function findVm(r: ResolvedScenario, name?: string): ResolvedVm {
  const vm = name === undefined ? r.vms[0] : r.vms.find((v) => v.name === name);
  if (!vm) throw new InputError(`no VM named "${name}" (VMs: ${r.vms.map((v) => v.name).join(', ')})`, '--vm');
  return vm;
}
