import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
// @ts-expect-error plain ESM script without type declarations
import { violations } from '../../scripts/check-layers.mjs';

test('imports between layers only point downward (docs/architecture.md layer table)', () => {
  const v = (violations as (root: string) => string[])(resolve(import.meta.dirname, '../..'));
  assert.deepEqual(v, []);
});

test('the layer check notices a violation', async () => {
  const { mkdtempSync, mkdirSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const root = mkdtempSync(resolve(tmpdir(), 'tv-layers-'));
  mkdirSync(resolve(root, 'src/devices'), { recursive: true });
  mkdirSync(resolve(root, 'src/world'), { recursive: true });
  writeFileSync(resolve(root, 'src/world/x.ts'), 'export const x = 1;\n');
  writeFileSync(resolve(root, 'src/devices/rtc.ts'), "import { x } from '../world/x.ts';\n");
  assert.deepEqual((violations as (root: string) => string[])(root), ['src/devices/rtc.ts: devices imports world (../world/x.ts)']);
});

test('an import past another layer’s index.ts is a violation, and --fix routes it through the index', async () => {
  const { mkdtempSync, mkdirSync, readFileSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  // @ts-expect-error plain ESM script without type declarations
  const { fixIndexImports } = await import('../../scripts/check-layers.mjs');
  const root = mkdtempSync(resolve(tmpdir(), 'tv-index-'));
  mkdirSync(resolve(root, 'src/core'), { recursive: true });
  mkdirSync(resolve(root, 'src/devices'), { recursive: true });
  writeFileSync(resolve(root, 'src/core/time.ts'), 'export type Ns = bigint;\n');
  writeFileSync(resolve(root, 'src/core/index.ts'), "export * from './time.ts';\n");
  writeFileSync(resolve(root, 'src/devices/rtc.ts'), "import type { Ns } from '../core/time.ts';\n");
  assert.deepEqual((violations as (root: string) => string[])(root), ['src/devices/rtc.ts: imports core/time.ts past core/index.ts']);
  assert.equal((fixIndexImports as (root: string) => number)(root), 1);
  assert.equal(readFileSync(resolve(root, 'src/devices/rtc.ts'), 'utf8'), "import type { Ns } from '../core/index.ts';\n");
  assert.deepEqual((violations as (root: string) => string[])(root), []);
});
