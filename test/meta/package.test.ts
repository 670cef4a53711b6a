// package.json's exports and bin point at files that exist, and the library API runs a scenario.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string>;
  bin: Record<string, string>;
};

test('every file package.json exports or names as a bin exists', () => {
  for (const target of [...Object.values(pkg.exports), ...Object.values(pkg.bin)]) assert.ok(existsSync(join(root, target)), target);
});

test('the library API (import "timevisor") parses and simulates a scenario', async () => {
  const api = await import('timevisor');
  const s = api.parseScenarioText('duration: 2s\nhosts: [{ name: h, tsc: { freq_khz: 2596136 } }]\nvms: [{ name: v, host: h }]\n', 'api');
  const { summary } = api.simulate(s);
  assert.equal(summary.vms[0]!.name, 'v');
  assert.equal(summary.vms[0]!.clocksource, 'tsc');
  assert.equal(typeof api.world.World, 'function');
});
