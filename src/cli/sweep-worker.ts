// A worker thread of `timevisor sweep`: simulates the points it is sent, one at a time, each as its own
// scenario (so a point's result does not depend on which worker ran it), and posts back its result cells.
import { parentPort } from 'node:worker_threads';
import { InputError } from '../core/index.ts';
import { type PointOutcome, pointOutcome, type Scenario, simulate } from '../world/index.ts';

export interface SweepTask {
  pos: number;
  scenario: Scenario;
  resyncWithinNs: bigint;
}

export type SweepMessage =
  | { kind: 'done'; pos: number; outcome: PointOutcome }
  | { kind: 'error'; pos: number; error: { name: string; message: string; where?: string; path?: string; stack?: string } };

const port = parentPort!;
port.on('message', (task: SweepTask) => {
  let m: SweepMessage;
  try {
    const res = simulate(task.scenario, { onRow: () => {} });
    m = { kind: 'done', pos: task.pos, outcome: pointOutcome(res.summary, task.resyncWithinNs) };
  } catch (e) {
    const err = e as Error;
    m = {
      kind: 'error',
      pos: task.pos,
      error: {
        name: err.name,
        message: err.message,
        ...(e instanceof InputError ? { where: e.where, path: e.path } : {}),
        ...(err.stack ? { stack: err.stack } : {}),
      },
    };
  }
  port.postMessage(m);
});
