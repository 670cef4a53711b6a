// Boot the twin in the guest model, in process: the scenario's first VM on its host, through the same
// resolver and world as `timevisor run` and `timevisor guest --scenario` (src/world/boot.ts).
import type { GuestReport } from '../vmm/index.ts';
import { bootScenarioGuest, GUEST_SETTLE_NS, parseScenario, resolveScenario } from '../world/index.ts';
import { got, missing, type Reading } from './source.ts';

/** How long the twin runs after its kernel starts: long enough for the TSC's delayed refinement (~1 s). */
export const TWIN_SETTLE_NS = GUEST_SETTLE_NS;

/** The twin's guest report. A scenario the planner wrote that does not validate is a missing reading,
 * with the reason; any other error is a bug and propagates. */
export function replayScenario(scenario: unknown, settleNs = TWIN_SETTLE_NS): Reading<GuestReport> {
  let resolved: ReturnType<typeof resolveScenario>;
  try {
    resolved = resolveScenario(parseScenario(scenario, 'twin scenario'));
  } catch (e) {
    return missing(`the twin scenario does not validate: ${(e as Error).message}`);
  }
  return got(bootScenarioGuest(resolved, undefined, settleNs));
}
