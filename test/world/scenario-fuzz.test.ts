// Seeded fuzz of scenario files: a valid scenario, mutated at random (wrong types, extreme numbers, unknown
// keys, missing keys, bad durations and references), must either validate or be refused with an
// InputError — never any other exception — and what validates must simulate (when its work is small) or
// be refused by the work estimate. Bounded by a count, not a timer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { InputError } from '../../src/core/errors.ts';
import { Prng } from '../../src/core/prng.ts';
import { estimateWork, parseScenarioText, resolveScenario, simulate } from '../../src/world/index.ts';

const BASE = {
  name: 'fuzz',
  seed: 3,
  duration: '2min',
  sample_interval: '30s',
  hosts: [{ name: 'h', oscillator: { ppm: 5, wander_sigma_ppm: 0.01, wander_interval: '10s' }, tsc: { freq_khz: 2596136 }, ntp: true }],
  vms: [
    {
      name: 'a',
      host: 'h',
      profile: 'qemu-kvm-noinvtsc',
      update_interval: '10s',
      pauses: [{ at: '1min', duration: '10s' }],
      sync: { method: 'agent' },
    },
    { name: 'b', host: 'h', profile: 'firecracker', update_interval: '10s', sync: { method: 'ntp', ntp_poll_exp: 4 } },
  ],
};

const PATHS: (string | number)[][] = [
  ['duration'],
  ['sample_interval'],
  ['seed'],
  ['start'],
  ['hosts', 0, 'oscillator', 'ppm'],
  ['hosts', 0, 'oscillator', 'wander_interval'],
  ['hosts', 0, 'tsc', 'freq_khz'],
  ['hosts', 0, 'tsc', 'invariant'],
  ['hosts', 0, 'tsc', 'constant'],
  ['hosts', 0, 'ntp'],
  ['hosts', 0, 'realtime_error'],
  ['hosts', 0, 'name'],
  ['vms', 0, 'host'],
  ['vms', 0, 'profile'],
  ['vms', 0, 'kernel'],
  ['vms', 0, 'cmdline'],
  ['vms', 0, 'vcpus'],
  ['vms', 0, 'boot_at'],
  ['vms', 0, 'update_interval'],
  ['vms', 0, 'kvmclock_at_init'],
  ['vms', 0, 'pauses', 0, 'at'],
  ['vms', 0, 'pauses', 0, 'duration'],
  ['vms', 0, 'sync', 'method'],
  ['vms', 0, 'sync', 'agent_delay'],
  ['vms', 1, 'sync', 'ntp_poll_exp'],
  ['vms', 1, 'name'],
  ['vms'],
  ['hosts'],
];
const VALUES: unknown[] = [
  -1,
  0,
  1,
  1.5,
  1e308,
  -1e308,
  2 ** 53,
  4294967296,
  '',
  'abc',
  '1e308y',
  '-5s',
  '0s',
  '1ns',
  '5ms',
  '3h',
  '2026-13-01',
  '1969-12-31T23:59:59Z',
  '2026-06-01T00:00:00+02:00',
  true,
  false,
  null,
  [],
  {},
  [1, 2],
  { x: 1 },
  'a'.repeat(300),
  'clocksource=tsc tsc=reliable',
  'no-kvmclock',
  'a="b',
  'kvmtool',
  'qemu-tcg',
  'yocto-qemux86',
  'ntp',
  'agent',
  'none',
  'h',
  'zz',
];

function mutate(rng: Prng): unknown {
  const s = structuredClone(BASE) as Record<string, unknown>;
  const n = 1 + rng.int(3);
  for (let k = 0; k < n; k++) {
    const path = PATHS[rng.int(PATHS.length)]!;
    let parent = s as Record<string | number, unknown>;
    for (const p of path.slice(0, -1)) {
      const next = parent[p];
      if (next === null || typeof next !== 'object') break;
      parent = next as Record<string | number, unknown>;
    }
    const key = path[path.length - 1]!;
    const what = rng.int(10);
    if (what === 0) delete parent[key];
    else if (what === 1) parent[`unknown_${rng.int(5)}`] = 1;
    else parent[key] = VALUES[rng.int(VALUES.length)];
  }
  return s;
}

test('1,300 mutated scenarios: each validates or is an InputError naming a path; what validates runs or is refused', () => {
  const rng = new Prng(20261127);
  let valid = 0;
  let simulated = 0;
  let refused = 0;
  for (let i = 0; i < 1300; i++) {
    const text = stringify(mutate(rng));
    let s: ReturnType<typeof parseScenarioText>;
    try {
      s = parseScenarioText(text, `fuzz-${i}.yaml`);
    } catch (e) {
      assert.ok(e instanceof InputError, `case ${i}: ${(e as Error).stack}\n${text}`);
      assert.match(e.where ?? '', /^fuzz-\d+\.yaml/, `case ${i}`);
      assert.doesNotMatch(e.message, /Invalid input|expected int, received/, `case ${i}: raw zod message: ${e.message}`);
      refused++;
      continue;
    }
    valid++;
    const r = resolveScenario(s);
    const w = estimateWork(r);
    if (w.events > 50_000 || simulated >= 60) continue;
    try {
      const res = simulate(r);
      assert.equal(res.summary.vms.length, r.vms.length);
      simulated++;
    } catch (e) {
      // a pause the guest cannot take (before its kernel entered) is the one refusal left to run time
      assert.ok(e instanceof InputError, `case ${i}: ${(e as Error).stack}\n${text}`);
    }
  }
  // the mutations reach both sides: plenty refused, plenty valid and run
  assert.ok(refused > 300 && valid > 50 && simulated >= 30, `refused ${refused}, valid ${valid}, simulated ${simulated}`);
});

test('the same mutated scenario and seed give byte-identical summaries', () => {
  const rng = new Prng(7);
  for (let i = 0; i < 5; i++) {
    const text = stringify(mutate(rng));
    let s: ReturnType<typeof parseScenarioText>;
    try {
      s = parseScenarioText(text);
    } catch {
      continue;
    }
    if (estimateWork(resolveScenario(s)).events > 50_000) continue;
    let a: string;
    try {
      a = JSON.stringify(simulate(s).summary);
    } catch {
      continue;
    }
    assert.equal(JSON.stringify(simulate(s).summary), a);
  }
});
