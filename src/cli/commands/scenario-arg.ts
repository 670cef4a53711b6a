// The scenario a command runs: a file, or the built-in demo when none is given; --seed overrides its seed.
import { InputError } from '../../core/index.ts';
import { DEMO_SCENARIO_YAML } from '../../world/index.ts';
import { loadScenario, parseScenarioText, type Scenario } from '../../world/index.ts';

export function scenarioFromArgs(file: string | undefined, seed: string | undefined): Scenario {
  const scenario = file === undefined ? parseScenarioText(DEMO_SCENARIO_YAML, 'built-in demo') : loadScenario(file);
  if (seed === undefined) return scenario;
  if (!/^\d+$/.test(seed) || Number(seed) > 0xffff_ffff) throw new InputError(`expected an integer 0…4294967295, got "${seed}"`, '--seed');
  return { ...scenario, seed: Number(seed) };
}
