// Boot one VM of a scenario in its world and report what its guest shows: the path behind
// `timevisor guest` (with --scenario or --profile) and the doctor's replay, the same VM `run` boots.
import { NSEC_PER_SEC, type Ns } from '../core/index.ts';
import { type GuestReport, guestReport } from '../vmm/index.ts';
import { DEFAULT_HOST, type HostCpu } from '../vmm/index.ts';
import { findVm, type ResolvedScenario, resolveScenario } from './resolve.ts';
import { parseScenario } from './scenario.ts';
import { World } from './world.ts';

/** How long a booted guest runs after its kernel starts: long enough for the TSC's delayed refinement (~1 s). */
export const GUEST_SETTLE_NS = 3n * NSEC_PER_SEC;

/** A guest on a machine profile, as `timevisor guest --profile` and the lab's twins describe it. */
export interface GuestRun {
  profile: string;
  kernel: string;
  cmdline: string;
  host: Partial<HostCpu>;
  vcpus?: number;
  /** kvm-clock's reading at kvmclock_init (scenario vms[].kvmclock_at_init); default: the profile's. */
  kvmclockAtInitNs?: Ns;
}

/** A guest run as a one-host, one-VM scenario through the schema and the resolver: the same path as a scenario file. */
export function scenarioForGuest(run: GuestRun, start?: string): ResolvedScenario {
  const h = { ...DEFAULT_HOST, ...run.host };
  const data = {
    name: 'guest',
    ...(start !== undefined ? { start } : {}),
    duration: 0,
    hosts: [
      {
        name: 'host',
        tsc: { freq_khz: h.tscKhz, constant: h.invariantTsc, nonstop: h.invariantTsc, invariant: h.invariantTsc },
        oscillator: { ppm: h.ppm },
        cpu: { vendor: h.vendor, tsc_deadline: h.tscDeadline, tsc_adjust: h.tscAdjust },
      },
    ],
    vms: [
      {
        name: 'guest',
        host: 'host',
        profile: run.profile,
        kernel: run.kernel,
        cmdline: run.cmdline,
        ...(run.vcpus !== undefined ? { vcpus: run.vcpus } : {}),
        ...(run.kvmclockAtInitNs !== undefined ? { kvmclock_at_init: `${run.kvmclockAtInitNs}ns` } : {}),
      },
    ],
  };
  return resolveScenario(parseScenario(data, 'command line'));
}

/** Boot the VM named `vmName` (default: the first) at its boot_at and run it `settleNs` past kernel entry. */
export function bootScenarioGuest(r: ResolvedScenario, vmName?: string, settleNs: Ns = GUEST_SETTLE_NS): GuestReport {
  const vm = findVm(r, vmName);
  const world = new World(r);
  world.engine.run(vm.bootAtNs);
  const b = world.bootVm(vm);
  world.engine.run(b.kernelEntryAt + settleNs);
  const report = guestReport(b);
  b.vm.destroy();
  return report;
}
