import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const BIN = resolve(import.meta.dirname, '../../bin/timevisor.js');
const tv = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

test('`timevisor run` with no file runs the demo and explains its output', () => {
  const r = tv('run');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /scenario "demo"/);
  assert.match(r.stdout, /guest CLOCK_REALTIME minus true time/);
  // QEMU restores kvmclock after the 15-minute pause: the kvm-clock guest is 900 s behind at the end
  assert.match(r.stdout, /vm-kvmclock\s+qemu-kvm-noinvtsc\s+kvm-clock\s+kvmclock\s+none\s+.+?\s+-899\.\d+ s/);
  // the tsc guest never saw a lag; the agent and NTP guests were put right
  assert.match(r.stdout, /vm-tsc\s+qemu-kvm\s+tsc\s+kvmclock\s+none\s+.+?\s+\+\d+\.\d+ ms/);
  assert.match(r.stdout, /vm-agent .*-900\.\d+ s\s+\+0 ns/);
  assert.match(r.stdout, /pauses \(what the guest saw across each one\)/);
});

test('--out writes summary.json and timeline.csv, byte-identical across runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-run-'));
  const a = tv('run', '--out', join(dir, 'a'));
  const b = tv('run', '--out', join(dir, 'b'));
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  for (const f of ['summary.json', 'timeline.csv']) {
    assert.equal(readFileSync(join(dir, 'a', f), 'utf8'), readFileSync(join(dir, 'b', f), 'utf8'));
  }
  const summary = JSON.parse(readFileSync(join(dir, 'a', 'summary.json'), 'utf8'));
  assert.equal(summary.vms.length, 4);
  const csv = readFileSync(join(dir, 'a', 'timeline.csv'), 'utf8')
    .trim()
    .split('\n');
  assert.equal(csv[0], 't_s,vm,guest_offset_ns,monotonic_lag_ns,host_offset_ns');
  assert.ok(csv.length > 4 * 140, String(csv.length));
  assert.deepEqual(readdirSync(join(dir, 'a')).sort(), ['summary.json', 'timeline.csv']); // no temp files left
});

test('invalid scenarios give one line naming the file and path, exit 2, no stack trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-bad-'));
  const cases: [string, string, RegExp][] = [
    [
      'type.yaml',
      'duration: 1h\nhosts: [{ name: a, tsc: { freq_khz: "x" } }]\nvms: [{ name: v, host: a }]\n',
      /type\.yaml:2: hosts\[0\]\.tsc\.freq_khz: expected number/,
    ],
    [
      'neg.yaml',
      'duration: 1h\nhosts: [{ name: a, tsc: { freq_khz: -1 } }]\nvms: [{ name: v, host: a }]\n',
      /neg\.yaml:2: hosts\[0\]\.tsc\.freq_khz: must be ≥ 1000, got -1/,
    ],
    [
      'unknown.yaml',
      'duration: 1h\nspeed: 3\nhosts: [{ name: a, tsc: { freq_khz: 1000000 } }]\nvms: [{ name: v, host: a }]\n',
      /unknown\.yaml:2: speed: unknown key "speed"/,
    ],
    ['notyaml.yaml', 'hosts: [ { a: 1 \n  ]]] :\n', /notyaml\.yaml(:\d+)?: not valid YAML/],
  ];
  for (const [name, body, re] of cases) {
    writeFileSync(join(dir, name), body);
    const r = tv('run', join(dir, name));
    assert.equal(r.status, 2, `${name}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, re);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
    assert.equal(r.stdout, '');
  }
  writeFileSync(
    join(dir, 'profile.yaml'),
    'duration: 1h\nhosts: [{ name: a, tsc: { freq_khz: 1000000 } }]\nvms:\n  - { name: v, host: a, profile: vmware }\n',
  );
  const prof = tv('run', join(dir, 'profile.yaml'));
  assert.equal(prof.status, 2);
  assert.match(prof.stderr.trim(), /profile\.yaml:4: vms\[0\]\.profile: unknown machine profile "vmware"/);
  const missing = tv('run', join(dir, 'nope.yaml'));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr.trim(), /nope\.yaml: cannot read scenario: no such file$/);
  const badSeed = tv('run', '--seed', 'abc');
  assert.equal(badSeed.status, 2);
  assert.match(badSeed.stderr, /--seed: expected an integer/);
  assert.equal(existsSync(join(dir, 'out')), false);
});

test('`timevisor schema` prints the JSON Schema', () => {
  const r = tv('schema');
  assert.equal(r.status, 0, r.stderr);
  const js = JSON.parse(r.stdout);
  assert.equal(js.title, 'timevisor scenario');
  assert.ok(js.properties.hosts);
});
