// Worker threads run an esbuild bundle of their module: the same results as the sources through tsx, built
// once, rebuilt when a source it came from changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { workerBundle } from '../../src/cli/worker-bundle.ts';

const BIN = resolve(import.meta.dirname, '../../bin/timevisor.js');
// a bundle imports its packages from where it lies: its directory must be inside the project
const CACHE = resolve(import.meta.dirname, '../../node_modules/.cache');
const cacheDir = (prefix: string) => {
  mkdirSync(CACHE, { recursive: true });
  return mkdtempSync(join(CACHE, prefix));
};
const SWEEP_WORKER = new URL('../../src/cli/sweep-worker.ts', import.meta.url);

test('a bundle is built once and rebuilt when one of its sources is not what it was built from', async () => {
  const dir = cacheDir('tv-bundle-test-');
  process.env.TIMEVISOR_BUNDLE_DIR = dir;
  try {
    const url = await workerBundle(SWEEP_WORKER);
    assert.ok(url, 'bundle built');
    const file = fileURLToPath(url);
    const meta = `${file}.inputs.json`;
    const inputs = JSON.parse(readFileSync(meta, 'utf8')) as { files: [string, number, number][] };
    const rels = inputs.files.map((f) => f[0]);
    assert.ok(rels.includes('src/cli/sweep-worker.ts') && rels.includes('src/guest/timekeeper.ts'), 'its sources are listed');
    assert.ok(!rels.some((r) => r.includes('node_modules')), 'packages stay outside the bundle');

    // unchanged sources: the same file, not written again
    writeFileSync(file, '// marker\n');
    assert.equal(await workerBundle(SWEEP_WORKER), url);
    assert.equal(readFileSync(file, 'utf8'), '// marker\n');

    // a source whose mtime differs from the recorded one: rebuilt
    inputs.files[0]![2] -= 1000;
    writeFileSync(meta, JSON.stringify(inputs));
    assert.equal(await workerBundle(SWEEP_WORKER), url);
    assert.notEqual(readFileSync(file, 'utf8'), '// marker\n');
    assert.ok(statSync(file).size > 100_000);

    process.env.TIMEVISOR_NO_BUNDLE = '1';
    assert.equal(await workerBundle(SWEEP_WORKER), null, 'TIMEVISOR_NO_BUNDLE keeps workers on tsx');
  } finally {
    delete process.env.TIMEVISOR_BUNDLE_DIR;
    delete process.env.TIMEVISOR_NO_BUNDLE;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a sweep on bundled workers writes the same files as on tsx workers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-bundle-sweep-'));
  writeFileSync(
    join(dir, 'base.yaml'),
    'name: base\nseed: 5\nduration: 1h\nhosts: [{ name: h, tsc: { freq_khz: 2596136 } }]\nvms: [{ name: v, host: h, pauses: [{ at: 20min, duration: 1min }], sync: { method: ntp } }]\n',
  );
  writeFileSync(join(dir, 'grid.yaml'), 'name: g\nscenario: base.yaml\ngrid:\n  profile: [qemu-kvm, firecracker]\n  sync: [none, ntp]\n');
  const run = (out: string, env: NodeJS.ProcessEnv) => {
    const r = spawnSync(process.execPath, [BIN, 'sweep', join(dir, 'grid.yaml'), '--out', join(dir, out), '--workers', '2'], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    assert.equal(r.status, 0, r.stderr);
  };
  const cache = cacheDir('tv-bundle-sweep-');
  try {
    run('bundled', { TIMEVISOR_BUNDLE_DIR: cache });
    assert.ok(
      readdirSync(cache).some((f) => f.startsWith('sweep-worker-')),
      'the bundled run built its bundle',
    );
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
  run('tsx', { TIMEVISOR_NO_BUNDLE: '1' });
  for (const f of ['results.csv', 'results.parquet', 'summary.json'])
    assert.ok(readFileSync(join(dir, 'bundled', f)).equals(readFileSync(join(dir, 'tsx', f))), `${f} differs`);
});
