// Boot one VM of a scenario in its world and report what its guest shows: the path behind
// `timevisor guest` (with --scenario or --profile) and the doctor's replay, the same VM `run` boots.
import { NSEC_PER_SEC, type Ns } from '../core/index.ts';
import { type GuestReport, guestReport } from '../vmm/index.ts';
import { findVm, type ResolvedScenario } from './resolve.ts';
import { World } from './world.ts';

/** How long a booted guest runs after its kernel starts: long enough for the TSC's delayed refinement (~1 s). */
export const GUEST_SETTLE_NS = 3n * NSEC_PER_SEC;

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
