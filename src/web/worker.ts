// Worker thread body: runs one scenario progressively and posts progress, timeline rows and the result,
// so the server's event loop stays free to stream them.
import { parentPort, workerData } from 'node:worker_threads';
import { InputError } from '../core/index.ts';
import type { Scenario } from '../world/index.ts';
import { timelineCsv } from '../world/index.ts';
import { runProgressively } from './progressive.ts';

export type WorkerMessage =
  | { kind: 'progress'; fraction: number }
  | { kind: 'rows'; rows: [number, string, number, number, number][] }
  | { kind: 'done'; summary: unknown; csv: string }
  | { kind: 'error'; message: string; where?: string; path?: string; input: boolean };

const post = (m: WorkerMessage) => parentPort!.postMessage(m);

try {
  const res = runProgressively(workerData.scenario as Scenario, {
    progress: (fraction) => post({ kind: 'progress', fraction }),
    rows: (rows) =>
      post({
        kind: 'rows',
        rows: rows.map((r) => [Number(r.t) / 1e9, r.vm, Number(r.guestOffsetNs), Number(r.monotonicLagNs), Number(r.hostOffsetNs)]),
      }),
  });
  post({ kind: 'done', summary: res.summary, csv: timelineCsv(res.timeline) });
} catch (e) {
  if (e instanceof InputError)
    post({
      kind: 'error',
      message: e.message,
      input: true,
      ...(e.where !== undefined ? { where: e.where } : {}),
      ...(e.path !== undefined ? { path: e.path } : {}),
    });
  else post({ kind: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e), input: false });
}
