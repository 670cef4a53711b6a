// `timevisor sweep` and `timevisor merge` as users run them: separate processes, files compared byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const BIN = resolve(import.meta.dirname, '../../bin/timevisor.js');
const tv = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
const FILES = ['results.csv', 'results.parquet', 'summary.json'];

const BASE = `name: base
seed: 3
duration: 2h
sample_interval: 10min
hosts: [{ name: h, oscillator: { ppm: 12 }, tsc: { freq_khz: 2596136 } }]
vms: [{ name: v, host: h, profile: qemu-kvm-noinvtsc, pauses: [{ at: 1h, duration: 15min }], sync: { method: ntp } }]
`;

function fixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tv-sweep-'));
  writeFileSync(join(dir, 'base.yaml'), BASE);
  writeFileSync(
    join(dir, 'grid.yaml'),
    'name: g\nscenario: base.yaml\ngrid:\n  profile: [qemu-kvm-noinvtsc, qemu-kvm]\n  sync: [none, agent, ntp]\n',
  );
  writeFileSync(
    join(dir, 'draw.yaml'),
    'name: d\nseed: 11\nscenario: base.yaml\ndraw:\n  count: 7\n  pause: { log_uniform: [1s, 20min] }\n  ppm: { normal: { mean: 0, sigma: 20 } }\n  sync: [agent, ntp]\n',
  );
  return dir;
}

const same = (a: string, b: string) => {
  for (const f of FILES) assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} differs between ${a} and ${b}`);
};

test('results do not depend on the number of worker threads', () => {
  const dir = fixture();
  const one = tv('sweep', join(dir, 'grid.yaml'), '--out', join(dir, 'w1'), '--workers', '1');
  assert.equal(one.status, 0, one.stderr);
  const three = tv('sweep', join(dir, 'grid.yaml'), '--out', join(dir, 'w3'), '--workers', '3');
  assert.equal(three.status, 0, three.stderr);
  same(join(dir, 'w1'), join(dir, 'w3'));
  // piped: no progress bar, one line naming what was written
  assert.equal(one.stderr, `wrote ${['results.csv', 'results.parquet', 'summary.json'].map((f) => join(dir, 'w1', f)).join(', ')}\n`);
  assert.equal(one.stdout, '');
  assert.deepEqual(readdirSync(join(dir, 'w1')).sort(), FILES); // no temporary files left
  const csv = readFileSync(join(dir, 'w1', 'results.csv'), 'utf8')
    .trim()
    .split('\n');
  assert.equal(csv.length, 1 + 6);
  // the kvm-clock guest without sync is 900 s behind after the 15-minute pause (QEMU restores kvmclock)
  assert.match(csv[1]!, /^0,3,qemu-kvm-noinvtsc,none,kvm-clock,-9\d{11},/);
  const summary = JSON.parse(readFileSync(join(dir, 'w1', 'summary.json'), 'utf8'));
  assert.equal(summary.points, 6);
  assert.equal(summary.events.pause.count, 6);
  assert.equal(summary.shard, undefined);
});

test('n shards run as separate processes, merged, equal the single-process run byte for byte', async () => {
  const dir = fixture();
  const whole = tv('sweep', join(dir, 'draw.yaml'), '--out', join(dir, 'whole'), '--workers', '2');
  assert.equal(whole.status, 0, whole.stderr);
  // three shards of seven points (2, 2, 3), at the same time, each in its own process
  const shards = [0, 1, 2].map(
    (i) =>
      new Promise<number | null>((res) => {
        const p = spawn(
          process.execPath,
          [BIN, 'sweep', join(dir, 'draw.yaml'), '--out', join(dir, `s${i}`), '--shard', `${i}/3`, '--workers', '1'],
          {
            stdio: 'ignore',
          },
        );
        p.on('exit', (code) => res(code));
      }),
  );
  assert.deepEqual(await Promise.all(shards), [0, 0, 0]);
  const s1 = JSON.parse(readFileSync(join(dir, 's1', 'summary.json'), 'utf8'));
  assert.deepEqual(s1.shard, { index: 1, count: 3, first_point: 2, end_point: 4 });
  // given in any order
  const m = tv('merge', join(dir, 's2'), join(dir, 's0'), join(dir, 's1'), '--out', join(dir, 'merged'));
  assert.equal(m.status, 0, m.stderr);
  same(join(dir, 'whole'), join(dir, 'merged'));

  const missing = tv('merge', join(dir, 's0'), join(dir, 's2'), '--out', join(dir, 'm2'));
  assert.equal(missing.status, 2);
  assert.equal(missing.stderr, 'timevisor: merge: shard 1 of 3 missing (given: 0, 2)\n');
  assert.equal(existsSync(join(dir, 'm2')), false);
  const twice = tv('merge', join(dir, 's0'), join(dir, 's0'), join(dir, 's1'), '--out', join(dir, 'm3'));
  assert.equal(twice.stderr, 'timevisor: merge: shard 0/3 is given twice\n');
  const notShard = tv('merge', join(dir, 'whole'), '--out', join(dir, 'm4'));
  assert.equal(notShard.status, 2);
  assert.match(notShard.stderr, /whole\/summary\.json: is the output of a whole sweep, not of a shard/);
});

test('a bad sweep file: one line with file:line, exit 2, nothing written', () => {
  const dir = fixture();
  writeFileSync(join(dir, 'bad.yaml'), 'name: b\nscenario: base.yaml\ngrid:\n  profile: [qemu-kvm]\n  pause: [1s, later]\n');
  const r = tv('sweep', join(dir, 'bad.yaml'), '--out', join(dir, 'out'));
  assert.equal(r.status, 2);
  assert.equal(
    r.stderr,
    `timevisor: ${join(dir, 'bad.yaml')}:5: grid.pause[1]: expected a duration like "500ms", "15s", "1d" or a number of seconds, got "later"\n`,
  );
  assert.equal(existsSync(join(dir, 'out')), false);
  const shard = tv('sweep', join(dir, 'grid.yaml'), '--shard', '3/3');
  assert.equal(shard.status, 2);
  assert.equal(shard.stderr, 'timevisor: --shard: expected i/n with 0 ≤ i < n (e.g. 0/4), got "3/3"\n');
});

test('an interrupted sweep leaves no result file and no temporary file', async () => {
  const dir = fixture();
  writeFileSync(join(dir, 'long.yaml'), 'name: l\nscenario: base.yaml\ndraw:\n  count: 400\n  sync: [ntp]\n');
  const out = join(dir, 'out');
  const p = spawn(process.execPath, [BIN, 'sweep', join(dir, 'long.yaml'), '--out', out, '--workers', '1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  // stop it once its worker runs (the directory exists once every point's scenario has been checked)
  while (!existsSync(out)) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  p.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  assert.equal(code, 143, err);
  assert.match(err, /stopped by SIGTERM; nothing was written/);
  assert.equal(existsSync(out), false); // the directory it created is gone, with nothing in it
});
