// Boot the twin in the guest model, in process: the scenario's first VM on its host, as
// `timevisor guest --scenario` does (test/doctor/twin.test.ts checks the two agree line for line).
import { Engine } from '../core/engine.ts';
import { NSEC_PER_SEC } from '../core/time.ts';
import { parseDuration } from '../core/units.ts';
import { bootVm, guestReport, kernelPreset, machineProfile, type GuestReport } from '../vmm/index.ts';
import { parseScenario } from '../world/scenario.ts';
import { got, missing, type Reading } from './source.ts';

/** How long the twin runs after its kernel starts: long enough for the TSC's delayed refinement (~1 s). */
export const TWIN_SETTLE_NS = 3n * NSEC_PER_SEC;

export function replayScenario(scenario: unknown, settleNs = TWIN_SETTLE_NS): Reading<GuestReport> {
  try {
    const s = parseScenario(scenario, 'twin scenario');
    const vm = s.vms[0]!;
    const h = s.hosts.find((x) => x.name === vm.host)!;
    const engine = new Engine();
    const b = bootVm({
      profile: machineProfile(vm.profile),
      kernel: kernelPreset(vm.kernel),
      cmdline: vm.cmdline,
      host: { tscKhz: h.tsc.freq_khz, ppm: h.oscillator.ppm, invariantTsc: h.tsc.invariant && h.tsc.constant && h.tsc.nonstop },
      scheduler: engine,
      ...(vm.vcpus !== undefined ? { vcpus: vm.vcpus } : {}),
      ...(vm.kvmclock_at_init !== undefined ? { kvmclockAtInitNs: parseDuration(vm.kvmclock_at_init, 'vms[0].kvmclock_at_init') } : {}),
    });
    engine.run(b.kernelEntryAt + settleNs);
    const r = guestReport(b);
    b.vm.destroy();
    return got(r);
  } catch (e) {
    return missing(`the guest model could not boot the twin: ${(e as Error).message}`);
  }
}
