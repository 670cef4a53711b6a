import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/core/errors.ts';
import { loadScenario, parseScenarioText, scenarioJsonSchema, formatPath } from '../../src/world/scenario.ts';

const GOOD = `
name: t
duration: 1h
hosts:
  - name: a
    tsc: { freq_khz: 2596136 }
  - name: b
    tsc: { freq_khz: 3000000 }
vms:
  - { name: v, host: a }
`;

function errorOf(text: string): InputError {
  try {
    parseScenarioText(text, 'bad.yaml');
  } catch (e) {
    assert.ok(e instanceof InputError, String(e));
    return e;
  }
  assert.fail('expected an InputError');
}

test('a valid scenario gets its defaults', () => {
  const s = parseScenarioText(GOOD, 'good.yaml');
  assert.equal(s.seed, 1);
  assert.equal(s.hosts[0]!.oscillator.ppm, 0);
  assert.equal(s.hosts[1]!.tsc.invariant, true);
  assert.equal(s.vms[0]!.profile, 'qemu-kvm');
  assert.equal(s.sample_interval, 60_000_000_000n);
});

test('a wrong type names the file, the line and the path inside it', () => {
  const e = errorOf(GOOD.replace('freq_khz: 3000000', 'freq_khz: "fast"'));
  assert.equal(e.path, 'hosts[1].tsc.freq_khz');
  assert.equal(e.where, 'bad.yaml:8');
  assert.equal(e.message, 'expected number, got "fast"');
});

test('a negative frequency, an unknown key, a missing key and a bad reference are each named', () => {
  let e = errorOf(GOOD.replace('freq_khz: 3000000', 'freq_khz: -5'));
  assert.equal(e.path, 'hosts[1].tsc.freq_khz');
  assert.equal(e.message, 'must be ≥ 1000, got -5');
  e = errorOf(GOOD.replace('tsc: { freq_khz: 2596136 }', 'tsc: { freq_khz: 2596136, frequency: 3 }'));
  assert.equal(e.path, 'hosts[0].tsc.frequency');
  assert.match(e.message, /unknown key "frequency"/);
  e = errorOf(GOOD.replace('duration: 1h\n', ''));
  assert.equal(e.path, 'duration');
  assert.match(e.message, /missing/);
  e = errorOf(GOOD.replace('host: a }', 'host: zz }'));
  assert.equal(e.path, 'vms[0].host');
  assert.match(e.message, /no host named "zz"/);
  e = errorOf(GOOD.replace('duration: 1h', 'duration: soon'));
  assert.equal(e.path, 'duration');
  assert.match(e.message, /duration like/);
});

test('non-YAML, a non-mapping and a missing file get one clear error each', () => {
  let e = errorOf('hosts: [\n  - a: 1\n  b: ]]');
  assert.match(e.message, /not valid YAML/);
  assert.match(e.where ?? '', /^bad\.yaml/);
  e = errorOf('- just\n- a list\n');
  assert.match(e.message, /mapping/);
  assert.throws(
    () => loadScenario('/nonexistent/x.yaml'),
    (err: unknown) => err instanceof InputError && err.where === '/nonexistent/x.yaml' && /no such file/.test(err.message),
  );
  const dir = mkdtempSync(join(tmpdir(), 'tv-'));
  mkdirSync(join(dir, 'd.yaml'));
  assert.throws(() => loadScenario(join(dir, 'd.yaml')), /directory/);
  writeFileSync(join(dir, 'ok.yaml'), GOOD);
  assert.equal(loadScenario(join(dir, 'ok.yaml')).name, 't');
});

test('the published JSON Schema describes the same keys and forbids unknown ones', () => {
  const js = scenarioJsonSchema() as { properties: Record<string, unknown>; required: string[]; additionalProperties: boolean };
  assert.ok(['hosts', 'vms', 'duration', 'seed'].every((k) => k in js.properties));
  assert.deepEqual(js.required.sort(), ['duration', 'hosts', 'vms']);
  assert.equal(js.additionalProperties, false);
  assert.equal(formatPath(['hosts', 1, 'tsc', 'freq_khz']), 'hosts[1].tsc.freq_khz');
});

test('schema/scenario.schema.json is regenerated from the zod schema (npm run schema)', async () => {
  const { readFileSync } = await import('node:fs');
  const published = readFileSync(new URL('../../schema/scenario.schema.json', import.meta.url), 'utf8');
  assert.equal(published, JSON.stringify(scenarioJsonSchema(), null, 2) + '\n');
});

test("the README's scenario example is a valid scenario", async () => {
  const { readFileSync } = await import('node:fs');
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /## Scenario files\s+```yaml\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README has a ```yaml block under "## Scenario files"');
  const s = parseScenarioText(block[1]!, 'README.md');
  assert.equal(s.vms[0]!.sync.method, 'agent');
  assert.equal(s.vms[0]!.pauses.length, 1);
});
