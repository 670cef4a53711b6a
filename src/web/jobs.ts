// Runs started from the web UI: each in its own worker thread, its messages kept so that a page that
// subscribes late (or reconnects) still gets the whole stream, and its results kept for download.
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Scenario } from '../world/index.ts';
import { parseTimelineCsv, type RunData } from '../report/index.ts';
import type { WorkerMessage } from './worker.ts';

const TSX_API = import.meta.resolve('tsx/esm/api');
const WORKER = new URL('./worker.ts', import.meta.url).href;
// the worker loads TypeScript the way bin/timevisor.js does
const BOOT = `import(${JSON.stringify(TSX_API)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER)}); });`;

const KEEP_JOBS = 32;

export interface Job {
  id: string;
  scenario: Scenario;
  messages: WorkerMessage[];
  listeners: Set<(m: WorkerMessage) => void>;
  result: RunData | null;
  finished: boolean;
}

export class JobRunner {
  private readonly jobs = new Map<string, Job>();
  private readonly workers = new Set<Worker>();

  start(scenario: Scenario): Job {
    const job: Job = { id: randomUUID(), scenario, messages: [], listeners: new Set(), result: null, finished: false };
    this.jobs.set(job.id, job);
    // keep the most recent runs' results for download, not every run since the server started
    for (const [id, j] of this.jobs) {
      if (this.jobs.size <= KEEP_JOBS) break;
      if (j.finished) this.jobs.delete(id);
    }
    const w = new Worker(BOOT, { eval: true, workerData: { scenario } });
    this.workers.add(w);
    const emit = (m: WorkerMessage) => {
      if (job.finished) return;
      if (m.kind === 'done') job.result = { summary: m.summary as RunData['summary'], timeline: parseTimelineCsv(m.csv) };
      if (m.kind === 'done' || m.kind === 'error') job.finished = true;
      job.messages.push(m);
      for (const l of job.listeners) l(m);
    };
    w.on('message', emit);
    w.on('error', (e) => emit({ kind: 'error', message: e.stack ?? e.message, input: false }));
    w.on('exit', (code) => {
      this.workers.delete(w);
      if (!job.finished) emit({ kind: 'error', message: `the simulation worker exited with code ${code}`, input: false });
    });
    return job;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  /** Stop every running worker (server shutdown). */
  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.terminate()));
  }
}
