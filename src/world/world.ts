// The world a resolved scenario describes: one event engine, the hosts (crystal with its wander, TSC,
// clocks) and the VMs booted on them. Every command that boots a scenario VM goes through bootVm here.
import { Engine } from '../core/index.ts';
import { Prng } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { TraceRecorder } from '../core/index.ts';
import { type BootedVm, bootVm, type RestoreTarget } from '../vmm/index.ts';
import { Host } from './host.ts';
import { HostCpus } from './host-cpus.ts';
import { NtpServers } from './ntp-servers.ts';
import type { ResolvedHost, ResolvedScenario, ResolvedVm } from './resolve.ts';

export class World {
  // a fleet VM keeps ≈ 30 events pending: a small heap to start (it doubles as needed) spares each world 24 KiB of zeroed arrays
  readonly engine = new Engine(64);
  readonly hosts = new Map<string, Host>();
  /** Each host's crystal error at the start, ppm. */
  readonly ppmStart = new Map<string, number>();
  readonly trace: TraceRecorder;
  /** The scenario's NTP servers and the paths to them. */
  readonly ntp: NtpServers;
  /** Each host's CPUs shared by its threads, where hosts[].cpus limits them. */
  readonly hostCpus = new Map<string, HostCpus>();

  constructor(
    readonly scenario: ResolvedScenario,
    trace: TraceRecorder = TraceRecorder.off,
  ) {
    this.trace = trace;
    const prng = new Prng(scenario.seed);
    for (const h of scenario.hosts) {
      const host = new Host(h.config, prng, scenario.epochNs);
      this.hosts.set(h.name, host);
      this.ppmStart.set(h.name, host.oscillator.ppm);
      if (host.oscillator.wanderSigmaPpm > 0) this.wander(host);
      if (h.cpuShare) this.hostCpus.set(h.name, new HostCpus(h.cpuShare, () => this.engine.now));
    }
    // a stream of its own, so adding servers leaves the hosts' random walks as they were
    this.ntp = new NtpServers(
      this.engine,
      new Prng(scenario.seed).fork('ntp'),
      (scenario.ntpServers ?? []).map((n) => {
        const host = n.host !== undefined ? this.host(n.host) : null;
        return { name: n.name, stratum: n.stratum, path: n.path, clock: host ? (t: Ns) => host.realtime(t) : (t: Ns) => this.truth(t) };
      }),
    );
  }

  /** True UTC at scenario time t. */
  truth(t: Ns): Ns {
    return this.scenario.epochNs + t;
  }

  host(name: string): Host {
    return this.hosts.get(name)!;
  }

  /** The crystal's random walk, one step per wander interval. */
  private wander(host: Host): void {
    const { engine, trace } = this;
    const step = host.oscillator.wanderIntervalNs;
    const timer = engine.timer(() => {
      host.oscillator.wanderStep(engine.now);
      if (trace.on) trace.instant(engine.now, host.name, 'oscillator_wander', ['host'], { ppm: host.oscillator.ppm });
      timer.armIn(step);
    });
    timer.armIn(step);
  }

  /** The resolved scenario entry of host `name`. */
  resolvedHost(name: string): ResolvedHost {
    return this.scenario.hosts.find((h) => h.name === name)!;
  }

  /** Where a VM stopped now is restored on `hostName`: that host's CPU, TSC and clocks. */
  restoreTarget(hostName: string, opts: { tscScaling: boolean; clockRealtime: boolean }, vmName = 'vm'): RestoreTarget {
    const { engine } = this;
    const host = this.host(hostName);
    const cpu = this.scenario.hosts.find((h) => h.name === hostName)!.cpu;
    return {
      host: { ...cpu, ppm: host.oscillator.ppm },
      hostTscAt: (t) => host.rdtsc(t),
      hostTscPlan: () => host.tscPlan(),
      hostRealtime: () => host.realtime(engine.now),
      hostRealtimeSteps: () => host.realtimeStepsNs,
      tscScaling: opts.tscScaling,
      clockRealtime: opts.clockRealtime,
      ...this.vcpuSchedule(hostName, vmName),
      ...(this.resolvedHost(hostName).tscSkew ? { hostTscSkew: this.resolvedHost(hostName).tscSkew! } : {}),
    };
  }

  /** The vCPU threads a VM's VMM process creates on `hostName`, when its CPUs are shared. */
  private vcpuSchedule(hostName: string, vmName: string): Pick<RestoreTarget, 'vcpuSchedule'> {
    const cpus = this.hostCpus.get(hostName);
    return cpus ? { vcpuSchedule: (n) => cpus.vcpuThreads(n, vmName) } : {};
  }

  /** A VM's VMGenID guid property and the VMM's random source for it: a PRNG stream forked from the seed per VM. */
  private vmgenidOptions(vmName: string, guid: string): { guid: string; random: () => number } {
    const rng = new Prng(this.scenario.seed).fork(`vmgenid:${vmName}`);
    return { guid, random: () => rng.nextU32() };
  }

  /** Create the VM now on its host: the VMM starts it, the guest kernel enters later (BootedVm.kernelEntryAt). */
  bootVm(vm: ResolvedVm): BootedVm {
    const { engine } = this;
    const host = this.host(vm.host);
    const cpu = this.scenario.hosts.find((h) => h.name === vm.host)!.cpu;
    const b = bootVm({
      profile: vm.profile,
      kernel: vm.kernel,
      cmdline: vm.cmdline,
      host: { ...cpu, ppm: host.oscillator.ppm },
      hostTscAt: (t) => host.rdtsc(t),
      hostTscPlan: () => host.tscPlan(),
      hostUptimeNs: 0n, // the world's host TSC counts from 0 at the scenario's start
      hostRealtime: () => host.realtime(engine.now), // what the VMM's RTC (and kvmtool's time()) read
      hostRealtimeSteps: () => host.realtimeStepsNs,
      ...(vm.tscFrequencyKhz !== undefined ? { tscFrequencyKhz: vm.tscFrequencyKhz } : {}),
      ...(vm.vmclock ? { vmclock: vm.vmclock } : {}),
      ...(vm.vmgenid !== undefined ? { vmgenid: this.vmgenidOptions(vm.name, vm.vmgenid) } : {}),
      ...(this.resolvedHost(vm.host).tscSkew ? { hostTscSkew: this.resolvedHost(vm.host).tscSkew! } : {}),
      ...(vm.rdtscExiting ? { rdtscExiting: vm.rdtscExiting } : {}),
      scheduler: engine,
      epochNs: this.scenario.epochNs,
      ...(vm.vcpus !== undefined ? { vcpus: vm.vcpus } : {}),
      ...(vm.kvmclockAtInitNs !== undefined ? { kvmclockAtInitNs: vm.kvmclockAtInitNs } : {}),
      updateIntervalNs: vm.updateIntervalNs,
      vcpuEntryIntervalNs: vm.updateIntervalNs,
      ...(vm.pitLostTickPolicy ? { pitLostTickPolicy: vm.pitLostTickPolicy } : {}),
      ...(vm.deschedule ? { deschedule: vm.deschedule } : {}),
      directOneshotTick: vm.directOneshotTick,
      trace: this.trace,
      name: vm.name,
      ...this.vcpuSchedule(vm.host, vm.name),
    });
    this.booted.push(b);
    return b;
  }

  private readonly booted: BootedVm[] = [];

  /** The run is over and its results are taken: the VMs' RAM goes to the next world's VMs in this thread. */
  release(): void {
    for (const b of this.booted) b.vm.releaseRam();
    this.booted.length = 0;
  }
}
