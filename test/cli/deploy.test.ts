// The batch-scheduler examples in deploy/: the number of shards each names stays consistent, and the
// Kubernetes Job is an Indexed Job whose shard is JOB_COMPLETION_INDEX.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const DEPLOY = new URL('../../deploy/', import.meta.url);

test('the Kubernetes Indexed Job runs shard JOB_COMPLETION_INDEX of `completions`', () => {
  const job = parse(readFileSync(new URL('kubernetes/sweep-job.yaml', DEPLOY), 'utf8'));
  assert.equal(job.kind, 'Job');
  assert.equal(job.spec.completionMode, 'Indexed');
  const script: string = job.spec.template.spec.containers[0].command.join(' ');
  const m = /--shard \$JOB_COMPLETION_INDEX\/(\d+)/.exec(script);
  assert.ok(m, script);
  assert.equal(Number(m[1]), job.spec.completions);
  assert.match(script, /--out \/results\/shard-\$JOB_COMPLETION_INDEX/);
  const merge = parse(readFileSync(new URL('kubernetes/merge-job.yaml', DEPLOY), 'utf8'));
  assert.match(merge.spec.template.spec.containers[0].command.join(' '), /timevisor\.js merge \/results\/shard-\* --out/);
});

test('the Slurm array has one task per shard', () => {
  const sh = readFileSync(new URL('slurm/sweep-array.sh', DEPLOY), 'utf8');
  const array = /#SBATCH --array=0-(\d+)/.exec(sh);
  const n = /^N=(\d+)$/m.exec(sh);
  assert.ok(array && n, sh);
  assert.equal(Number(array[1]) + 1, Number(n[1]));
  assert.match(sh, /--shard "\$\{SLURM_ARRAY_TASK_ID\}\/\$\{N\}"/);
});
