// `timevisor sweep FILE`: run a sweep's points (a grid, or drawn VMs) in parallel on worker threads and
// write one results table (CSV and Parquet) plus summary.json; `--shard i/n` runs one deterministic slice.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Command } from 'commander';
import { InputError } from '../../core/errors.ts';
import {
  loadSweep,
  type PointOutcome,
  parseShard,
  pointLabel,
  pointRows,
  type Row,
  type Scenario,
  type SweepPoint,
  shardRange,
  sweepColumns,
  sweepFiles,
  sweepMeta,
} from '../../world/index.ts';
import { ensureDir, removeDirs } from '../output.ts';
import { progressBar } from '../progress.ts';
import { discardSweepFiles, writeSweepFiles } from '../sweep-files.ts';
import type { SweepMessage, SweepTask } from '../sweep-worker.ts';

function clock(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}

function workerError(e: Extract<SweepMessage, { kind: 'error' }>['error'], point: SweepPoint, where: string): Error {
  if (e.name === 'InputError')
    return new InputError(`point ${point.index} (${pointLabel(point)}): ${e.path ? `${e.path}: ` : ''}${e.message}`, where);
  return Object.assign(new Error(`point ${point.index}: ${e.message}`), { name: e.name, stack: e.stack });
}

/**
 * Simulate `jobs` on `n` worker threads, each point as its own scenario; outcomes in the jobs' order.
 * SIGINT/SIGTERM stop every worker at once and call `cleanup`.
 */
function runPool(
  jobs: { point: SweepPoint; scenario: Scenario }[],
  n: number,
  resyncWithinNs: bigint,
  where: string,
  onDone: (done: number) => void,
  cleanup: () => void,
): Promise<PointOutcome[]> {
  const outcomes: PointOutcome[] = new Array(jobs.length);
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
      const w = new Worker(new URL('../worker-entry.mjs', import.meta.url), {
        workerData: { module: new URL('../sweep-worker.ts', import.meta.url).href },
      });
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

export function registerSweep(program: Command): void {
  program
    .command('sweep')
    .description(
      'run a sweep file (a parameter grid or drawn VMs over a base scenario) on worker threads; write results.csv, results.parquet and summary.json',
    )
    .argument('<file>', 'sweep file (see schema/sweep.schema.json)')
    .option('--out <dir>', 'directory for the result files', 'sweep-results')
    .option('--workers <n>', 'worker threads (default: the CPUs available)')
    .option('--shard <i/n>', 'run only slice i of n (0-based, e.g. $JOB_COMPLETION_INDEX/4); join the slices with `timevisor merge`')
    .action(async (file: string, opts: { out: string; workers?: string; shard?: string }) => {
      const sweep = loadSweep(file);
      const shard = opts.shard === undefined ? null : parseShard(opts.shard);
      let workers = availableParallelism();
      if (opts.workers !== undefined) {
        if (!/^\d+$/.test(opts.workers) || Number(opts.workers) < 1 || Number(opts.workers) > 256)
          throw new InputError(`expected a whole number 1…256, got "${opts.workers}"`, '--workers');
        workers = Number(opts.workers);
      }
      const range = shard ? shardRange(sweep.points.length, shard.index, shard.count) : { first: 0, end: sweep.points.length };
      const slice = sweep.points.slice(range.first, range.end);
      // every point's scenario is checked before anything runs
      const jobs = slice.map((point) => ({ point, scenario: sweep.scenarioOf(point) }));
      const created = ensureDir(opts.out, '--out');
      const cleanup = () => {
        discardSweepFiles(opts.out);
        removeDirs(created);
      };
      const progress = progressBar(`sweep ${sweep.name}`);
      const started = Date.now();
      const total = jobs.length;
      let outcomes: PointOutcome[];
      try {
        outcomes = await runPool(
          jobs,
          Math.max(1, Math.min(workers, total)),
          sweep.resyncWithinNs,
          file,
          (done) => {
            const elapsed = Date.now() - started;
            progress.update(done / total, `${done}/${total} VMs, ETA ${clock((elapsed / done) * (total - done))}`);
          },
          cleanup,
        );
      } catch (e) {
        progress.done();
        cleanup();
        throw e;
      }
      progress.done(`${total}/${total} VMs in ${clock(Date.now() - started)}`);
      const rows: Row[] = jobs.flatMap((j, k) => pointRows(sweep, j.point, outcomes[k]!));
      const files = sweepFiles(
        sweepMeta(sweep),
        sweepColumns(sweep.params),
        rows,
        shard ? { index: shard.index, count: shard.count, first_point: range.first, end_point: range.end } : undefined,
      );
      let paths: string[];
      try {
        paths = writeSweepFiles(opts.out, files, '--out');
      } catch (e) {
        cleanup();
        throw e;
      }
      process.stderr.write(`wrote ${paths.join(', ')}\n`);
    });
}
