// `timevisor merge DIR...`: join the outputs of `timevisor sweep --shard i/n` into exactly the files a
// single run of the whole sweep writes. Every shard of one sweep must be given, once each.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import { columnsOf, parseCsv, type Row, type SweepMeta, type SweepSummary, sweepFiles } from '../../world/index.ts';
import { ensureDir, fsReason, removeDirs } from '../output.ts';
import { discardSweepFiles, writeSweepFiles } from '../sweep-files.ts';

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read: ${fsReason(e)} (expected the output directory of timevisor sweep --shard)`, path);
  }
}

interface ShardOutput {
  dir: string;
  summary: SweepSummary & { shard: NonNullable<SweepSummary['shard']> };
  header: string[];
  rows: Row[];
}

function readShard(dir: string): ShardOutput {
  const summaryPath = join(dir, 'summary.json');
  let summary: SweepSummary;
  try {
    summary = JSON.parse(readText(summaryPath)) as SweepSummary;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`not valid JSON: ${(e as Error).message}`, summaryPath);
  }
  if (typeof summary !== 'object' || summary === null || typeof summary.sweep_id !== 'string')
    throw new InputError('not the summary.json of a timevisor sweep (no sweep_id)', summaryPath);
  if (!summary.shard) throw new InputError('is the output of a whole sweep, not of a shard (--shard i/n)', summaryPath);
  const csvPath = join(dir, 'results.csv');
  const { header, rows } = parseCsv(readText(csvPath), csvPath);
  return { dir, summary: summary as ShardOutput['summary'], header, rows };
}

export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('join the outputs of `timevisor sweep --shard i/n` (every shard, once) into the files a single run writes')
    .argument('<dirs...>', "the shards' output directories")
    .option('--out <dir>', 'directory for the merged files', 'sweep-results')
    .action((dirs: string[], opts: { out: string }) => {
      const shards = dirs.map(readShard).sort((a, b) => a.summary.shard.index - b.summary.shard.index);
      const first = shards[0]!;
      const count = first.summary.shard.count;
      for (const s of shards) {
        if (s.summary.sweep_id !== first.summary.sweep_id)
          throw new InputError(
            `is shard output of another sweep (sweep_id ${s.summary.sweep_id}, not ${first.summary.sweep_id} as in ${first.dir})`,
            join(s.dir, 'summary.json'),
          );
        if (s.summary.shard.count !== count)
          throw new InputError(
            `is shard ${s.summary.shard.index}/${s.summary.shard.count}, the others are of ${count}`,
            join(s.dir, 'summary.json'),
          );
        if (s.header.join(',') !== first.header.join(','))
          throw new InputError(`has other columns than ${join(first.dir, 'results.csv')}`, join(s.dir, 'results.csv'));
      }
      const seen = shards.map((s) => s.summary.shard.index);
      const dup = seen.find((x, i) => seen.indexOf(x) !== i);
      if (dup !== undefined) throw new InputError(`shard ${dup}/${count} is given twice`, 'merge');
      const missing = [...Array(count).keys()].filter((i) => !seen.includes(i));
      if (missing.length > 0)
        throw new InputError(
          `shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${count} missing (given: ${seen.join(', ')})`,
          'merge',
        );
      const { sweep, sweep_id, mode, seed, points, resync_within_ns } = first.summary;
      const meta: SweepMeta = { sweep, sweep_id, mode, seed, points, resync_within_ns };
      const rows = shards.flatMap((s) => s.rows);
      const files = sweepFiles(meta, columnsOf(first.header, join(first.dir, 'results.csv')), rows);
      const created = ensureDir(opts.out, '--out');
      try {
        const paths = writeSweepFiles(opts.out, files, '--out');
        process.stderr.write(`wrote ${paths.join(', ')}\n`);
      } catch (e) {
        discardSweepFiles(opts.out);
        removeDirs(created);
        throw e;
      }
    });
}
