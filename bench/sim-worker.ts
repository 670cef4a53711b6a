// A bench's simulation on a worker thread that runs the esbuild bundle, as `timevisor run` and `sweep`
// workers do (src/cli/worker-bundle.ts): what users run, without tsx's per-import getters.
import { parentPort, workerData } from 'node:worker_threads';
import { parseScenarioText, simulate } from '../src/world/index.ts';

export interface SimJob {
  scenario: string;
  repeats: number;
  quietSpans?: boolean;
}

const job = workerData as SimJob;
const scenario = parseScenarioText(job.scenario, 'bench');
const cpuMs: number[] = [];
const wallMs: number[] = [];
for (let i = 0; i < job.repeats; i++) {
  const t0 = performance.now();
  const c0 = process.cpuUsage(); // the process: the main thread only waits for this worker
  simulate(scenario, { onRow: () => {}, ...(job.quietSpans === undefined ? {} : { quietSpans: job.quietSpans }) });
  const c = process.cpuUsage(c0);
  cpuMs.push((c.user + c.system) / 1000);
  wallMs.push(performance.now() - t0);
}
parentPort!.postMessage({ cpuMs, wallMs });
