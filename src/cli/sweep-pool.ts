// The worker threads of a sweep: each simulates the points it is handed, one at a time, each as its
// own scenario; outcomes come back in the points' order whatever the number of workers.
import type { Worker } from 'node:worker_threads';
import { InputError } from '../core/index.ts';
import { type PointOutcome, pointLabel, type Scenario, type SweepPoint } from '../world/index.ts';
import type { SweepMessage, SweepTask } from './sweep-worker.ts';
import { moduleWorker, workerBundle } from './worker-bundle.ts';

function workerError(e: Extract<SweepMessage, { kind: 'error' }>['error'], point: SweepPoint, where: string): Error {
  if (e.name === 'InputError')
    return new InputError(`point ${point.index} (${pointLabel(point)}): ${e.path ? `${e.path}: ` : ''}${e.message}`, where);
  return Object.assign(new Error(`point ${point.index}: ${e.message}`), { name: e.name, stack: e.stack });
}

/**
 * Simulate `jobs` on `n` worker threads, each point as its own scenario; outcomes in the jobs' order.
 * SIGINT/SIGTERM stop every worker at once and call `cleanup`.
 */
export async function runPool(
  jobs: { point: SweepPoint; scenario: Scenario }[],
  n: number,
  resyncWithinNs: bigint,
  where: string,
  onDone: (done: number) => void,
  cleanup: () => void,
): Promise<PointOutcome[]> {
  const outcomes: PointOutcome[] = new Array(jobs.length);
  const module = new URL('./sweep-worker.ts', import.meta.url);
  const bundle = jobs.length > 0 ? await workerBundle(module) : null;
  const workers: Worker[] = [];
  const stopAll = () => Promise.allSettled(workers.map((w) => w.terminate()));
  const stop = (signal: NodeJS.Signals) => {
    void stopAll().finally(() => {
      cleanup();
      process.stderr.write(`\ntimevisor: stopped by ${signal}; nothing was written\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const release = () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  };
  return new Promise<PointOutcome[]>((resolvePromise, reject) => {
    let next = 0;
    let done = 0;
    let failed = false;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      release();
      void stopAll().finally(() => reject(e));
    };
    const feed = (w: Worker) => {
      if (next >= jobs.length) return;
      const task: SweepTask = { pos: next, scenario: jobs[next]!.scenario, resyncWithinNs };
      next++;
      w.postMessage(task);
    };
    if (jobs.length === 0) {
      release();
      return resolvePromise(outcomes);
    }
    for (let i = 0; i < n; i++) {
      const w = moduleWorker(module, bundle);
      workers.push(w);
      w.on('message', (m: SweepMessage) => {
        if (m.kind === 'error') return fail(workerError(m.error, jobs[m.pos]!.point, where));
        outcomes[m.pos] = m.outcome;
        done++;
        onDone(done);
        if (done === jobs.length) {
          release();
          void stopAll().then(() => resolvePromise(outcomes));
        } else feed(w);
      });
      w.on('error', (e) => fail(e));
      w.on('exit', (code) => {
        if (code !== 0 && !failed && done < jobs.length) fail(new Error(`sweep worker exited with code ${code}`));
      });
      feed(w);
    }
  });
}
