// timevisor's typed library API. Each layer is a namespace (core, devices, hypervisor, guest, vmm,
// world, doctor, lab, live); the everyday entry points are also exported by name.
//
//   import { loadScenario, simulate } from 'timevisor';
//   const { summary, timeline } = simulate(loadScenario('drift.yaml'));
export * as core from './core/index.ts';
export * as devices from './devices/index.ts';
export * as doctor from './doctor/index.ts';
export * as guest from './guest/index.ts';
export * as hypervisor from './hypervisor/index.ts';
export * as lab from './lab/index.ts';
export * as live from './live/index.ts';
export * as vmm from './vmm/index.ts';
export * as world from './world/index.ts';
export { InputError, UnavailableError } from './core/errors.ts';
export {
  bootScenarioGuest,
  loadScenario,
  parseScenario,
  parseScenarioText,
  resolveScenario,
  simulate,
  timelineCsv,
} from './world/index.ts';
export type { ResolvedScenario, Scenario, ScenarioInput, SimulationResult, SimulationSummary } from './world/index.ts';
