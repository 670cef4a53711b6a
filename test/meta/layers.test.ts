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
