import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../bin/timevisor.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

test('pvclock scale --json prints exactly the recorded KVM values for 2,596,136 kHz', () => {
  const r = run('pvclock', 'scale', '--tsc-khz', '2596136', '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { tsc_khz: 2596136, tsc_shift: -1, tsc_to_system_mul: 3308738291 });
});

test('pvclock scale rejects a non-numeric rate with exit 2 and a one-line message', () => {
  const r = run('pvclock', 'scale', '--tsc-khz', '2.5GHz', '--json');
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^timevisor: --tsc-khz: expected a whole number of kHz/);
});
