// The simulation of `timevisor run`, on a worker thread: the main thread stays free to draw progress
// and to stop the run at once on SIGINT/SIGTERM (a synchronous simulation would hold signals until it
// ended). Streams the timeline into its file and posts the summary back.
import { parentPort, workerData } from 'node:worker_threads';
import { InputError } from '../core/index.ts';
import { type Scenario, simulate, TIMELINE_CSV_HEADER, timelineCsvRow } from '../world/index.ts';
import { AtomicFile } from './output.ts';

export interface RunJob {
  scenario: Scenario;
  /** Write the timeline here (CSV), or drop it. */
  timelinePath: string | null;
}

export type RunMessage =
  | { kind: 'progress'; fraction: number }
  | { kind: 'done'; result: Omit<ReturnType<typeof simulate>, 'timeline'> }
  | { kind: 'error'; error: { name: string; message: string; where?: string; path?: string; stack?: string } };

const job = workerData as RunJob;
const post = (m: RunMessage) => parentPort!.postMessage(m);
let csv: AtomicFile | null = null;
try {
  csv = job.timelinePath ? new AtomicFile(job.timelinePath, '--out') : null;
  csv?.write(`${TIMELINE_CSV_HEADER}\n`);
  let last = 0;
  const { timeline: _none, ...result } = simulate(job.scenario, {
    onRow: csv ? (row) => csv!.write(`${timelineCsvRow(row)}\n`) : () => {},
    onProgress: (fraction) => {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      post({ kind: 'progress', fraction });
    },
  });
  csv?.commit();
  post({ kind: 'done', result });
} catch (e) {
  csv?.abort();
  const err = e as Error;
  post({
    kind: 'error',
    error: {
      name: err.name,
      message: err.message,
      ...(e instanceof InputError ? { where: e.where, path: e.path } : {}),
      ...(err.stack ? { stack: err.stack } : {}),
    },
  });
}
