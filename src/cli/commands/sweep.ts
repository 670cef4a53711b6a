// `timevisor sweep FILE`: run a sweep's points (a grid, or drawn VMs) in parallel on worker threads and
// write one results table (CSV and Parquet) plus summary.json; `--shard i/n` runs one deterministic slice.
import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import {
  loadSweep,
  type PointOutcome,
  parseShard,
  pointRows,
  type Row,
  shardRange,
  sweepColumns,
  sweepFiles,
  sweepMeta,
} from '../../world/index.ts';
import { ensureDir, removeDirs } from '../output.ts';
import { progressBar } from '../progress.ts';
import { discardSweepFiles, writeSweepFiles } from '../sweep-files.ts';
import { runPool } from '../sweep-pool.ts';

function clock(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
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
          (done) => progress.update(done / total, `${done}/${total} VMs`),
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
