// Every bad input gets one clean line (file or option, path, what was expected), exit 2, and nothing
// written; work that cannot finish or fit is refused before it starts; signals stop a run at once.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { InputError } from '../../src/core/errors.ts';
import { checkWork, parseScenarioText, resolveScenario, simulate } from '../../src/world/index.ts';

const BIN = resolve(import.meta.dirname, '../../bin/timevisor.js');
const tv = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
const dir = mkdtempSync(join(tmpdir(), 'tv-bad-input-'));
const file = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const HOSTS = 'hosts: [{ name: h, tsc: { freq_khz: 2596136 } }]\n';
const ONE_VM = 'vms: [{ name: v, host: h }]\n';

/** One line on stderr, exit 2, matching `re`. */
function refused(r: ReturnType<typeof tv>, re: RegExp): void {
  assert.equal(r.status, 2, `exit ${r.status}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, re);
  assert.doesNotMatch(r.stderr, /internal error| {4}at |Invalid input/);
}

function inputError(yaml: string): InputError {
  try {
    parseScenarioText(yaml, 'bad.yaml');
  } catch (e) {
    assert.ok(e instanceof InputError, String(e));
    return e;
  }
  assert.fail('expected an InputError');
}

test('results that cannot be written: one line naming --out or --write and why; nothing left behind', () => {
  refused(tv('run', '--out', '/proc/self'), /^timevisor: --out: cannot write \/proc\/self\/timeline\.csv/);
  refused(tv('run', '--out', '/proc/foo'), /^timevisor: --out: cannot create directory \/proc\/foo/); // used to spin for ever
  refused(tv('run', '--out', ''), /^timevisor: --out: expected a directory, got an empty path/);
  const f = file('plain-file', 'x');
  refused(tv('run', '--out', join(f, 'sub')), /--out: cannot use .*plain-file\/sub: a part of the path is a file/);
  refused(tv('schema', '--write', '/nonexistent/x.json'), /^timevisor: --write: cannot write \/nonexistent\/x\.json: no such file/);
  assert.equal(existsSync('/nonexistent'), false);
});

test('YAML that cannot be read: undefined alias and alias bomb named with their line, syntax errors keep theirs', () => {
  let e = inputError(`duration: *s\n${HOSTS}${ONE_VM}`);
  assert.equal(e.where, 'bad.yaml:1');
  assert.match(e.message, /not valid YAML: Unresolved alias/);
  let bomb = 'a: &a [x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i < 12; i++)
    bomb += `${'abcdefghijklm'[i]}: &${'abcdefghijklm'[i]} [${Array(9)
      .fill(`*${'abcdefghijklm'[i - 1]}`)
      .join(', ')}]\n`;
  e = inputError(`${bomb}duration: 1s\n${HOSTS}${ONE_VM}`);
  assert.match(e.message, /at most 100 alias expansions/);
  e = inputError(`duration: 1s\nhosts: [\n  - a: 1\n  b: ]]\n`);
  assert.equal(e.where, 'bad.yaml:3');
  // a collection used as a key: named as an unknown key, and no Node warning on stderr
  refused(tv('run', file('complex-key.yaml', `duration: 1s\n? [a, b]\n: c\n${HOSTS}${ONE_VM}`)), /unknown key "\[ a, b \]"/);
});

test('numbers out of range are refused in the schema with file:line, in plain words', () => {
  let e = inputError(`duration: 1h\nhosts: [{ name: h, ntp: false, realtime_error: 1e308, tsc: { freq_khz: 2596136 } }]\n${ONE_VM}`);
  assert.equal(e.path, 'hosts[0].realtime_error');
  assert.equal(e.message, 'must be ≤ 1000000000, got 1e+308');
  e = inputError(`duration: 1h\nhosts: [{ name: h, tsc: { freq_khz: 1 } }]\n${ONE_VM}`);
  assert.equal(e.path, 'hosts[0].tsc.freq_khz');
  assert.equal(e.where, 'bad.yaml:2');
  assert.equal(e.message, 'must be ≥ 1000, got 1');
  e = inputError(`duration: 1h\n${HOSTS}vms: [{ name: v, host: h, kvmclock_at_init: 1000y }]\n`);
  assert.equal(e.path, 'vms[0].kvmclock_at_init');
  assert.match(e.message, /at most 1h/);
  e = inputError(`duration: 1e308\n${HOSTS}${ONE_VM}`);
  assert.equal(e.message, 'must be at most 1000y, got 1e+308');
  e = inputError(`duration: 1h\nstart: "1900-01-01T00:00:00Z"\n${HOSTS}${ONE_VM}`);
  assert.equal(e.path, 'start');
  assert.match(e.message, /between 1970 and 2105/);
  e = inputError(`duration: 1h\n${HOSTS}vms: [{ name: v, host: h, vcpus: 1.5 }]\n`);
  assert.equal(e.message, 'expected a whole number, got 1.5');
});

test('settings that would be silently ignored are refused: realtime_error under NTP, a pause or boot after the end', () => {
  let e = inputError(`duration: 1h\nhosts: [{ name: h, realtime_error: 3, tsc: { freq_khz: 2596136 } }]\n${ONE_VM}`);
  assert.equal(e.path, 'hosts[0].realtime_error');
  assert.match(e.message, /no effect while the host runs NTP/);
  e = inputError(`duration: 1h\n${HOSTS}vms: [{ name: v, host: h, pauses: [{ at: 2h, duration: 1s }] }]\n`);
  assert.equal(e.path, 'vms[0].pauses[0].at');
  assert.match(e.message, /after the end of the run/);
  e = inputError(`duration: 1h\n${HOSTS}vms: [{ name: v, host: h, boot_at: 2h }]\n`);
  assert.equal(e.path, 'vms[0].boot_at');
});

test('a pause still running at the end reports no resume, not "+0 ns after resume"', () => {
  const s = parseScenarioText(`duration: 1h\n${HOSTS}vms: [{ name: v, host: h, pauses: [{ at: 50min, duration: 1h }] }]\n`);
  const p = simulate(s).summary.vms[0]!.pauses[0]!;
  assert.equal(p.offset_after_resume_ns, null);
  assert.equal(p.monotonic_advance_ns, null);
  const r = tv(
    'run',
    file('still-paused.yaml', `duration: 1h\n${HOSTS}vms: [{ name: v, host: h, pauses: [{ at: 50min, duration: 1h }] }]\n`),
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /still paused at the end/);
});

test('work that cannot finish or fit is refused before it starts, naming the field and the estimate', () => {
  const check = (yaml: string) => () => checkWork(resolveScenario(parseScenarioText(yaml, 'w.yaml')), 'w.yaml', { rowsInMemory: false });
  const refusedFor = (path: string, re: RegExp) => (e: unknown) => e instanceof InputError && e.path === path && re.test(e.message);
  // 100 y = 3.1536·10^9 s: 5 events per 1-s update (a vCPU entry, the LAPIC timer's tick_sched_timer: 15.768·10^9)
  // + one sampler event per minute (0.0526·10^9)
  assert.throws(check(`duration: 100y\n${HOSTS}${ONE_VM}`), refusedFor('vms[0].update_interval', /about 15\.8·10\^9 engine events/));
  assert.throws(
    check(`duration: 1h\n${HOSTS}vms: [{ name: v, host: h, update_interval: 1ns }]\n`),
    refusedFor('vms[0].update_interval', /engine events/),
  );
  assert.throws(
    check(
      `duration: 1h\nhosts: [{ name: h, tsc: { freq_khz: 2596136 }, oscillator: { wander_sigma_ppm: 0.1, wander_interval: 1ns } }]\n${ONE_VM}`,
    ),
    refusedFor('hosts[0].oscillator.wander_interval', /engine events/),
  );
  // one sampler event per sample: 3600 s / 1 ns
  assert.throws(
    check(`duration: 1h\nsample_interval: 1ns\n${HOSTS}${ONE_VM}`),
    refusedFor('sample_interval', /about 3600\.0·10\^9 engine events/),
  );
  // a timeline held in memory (the library without onRow): 1 d / 10 ms = 8.64·10^6 rows, + 1 at boot
  assert.throws(
    () =>
      checkWork(resolveScenario(parseScenarioText(`duration: 1d\nsample_interval: 10ms\n${HOSTS}${ONE_VM}`)), 'w.yaml', {
        rowsInMemory: true,
      }),
    refusedFor('sample_interval', /timeline would have about 8\.6·10\^6 rows \(limit 5\.0·10\^6 in memory/),
  );
  const fleet = `duration: 1s\n${HOSTS}vms:\n${Array.from({ length: 50_000 }, (_, i) => `  - { name: v${i}, host: h }\n`).join('')}`;
  assert.throws(check(fleet), refusedFor('vms', /50000 VMs need about 3\.7 GiB/));
  // the CLI says it in one line, exit 2, before any output directory exists
  const out = join(dir, 'never');
  refused(
    tv('run', file('long.yaml', `duration: 100y\n${HOSTS}${ONE_VM}`), '--out', out),
    /long\.yaml: vms\[0\]\.update_interval: the run would take/,
  );
  assert.equal(existsSync(out), false);
});

test('SIGTERM and SIGINT stop a run at once and leave nothing half-written', async () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const out = join(dir, `sig-${signal}`, 'nested');
    const f = file(`slow-${signal}.yaml`, `duration: 30d\nsample_interval: 1s\n${HOSTS}${ONE_VM}`);
    const child = spawn(process.execPath, [BIN, 'run', f, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    // wait until the run is writing its timeline (the temporary file exists)
    for (let i = 0; i < 200 && !(existsSync(out) && readdirSync(out).length > 0); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(out) && readdirSync(out).length > 0, 'the run started writing');
    const sent = Date.now();
    child.kill(signal);
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    assert.equal(code, signal === 'SIGTERM' ? 143 : 130);
    // promptly: a 30-day run is stopped, not finished (it takes minutes); 5 s allows for a loaded machine
    assert.ok(Date.now() - sent < 5000, `stopped after ${Date.now() - sent} ms`);
    assert.equal(existsSync(join(dir, `sig-${signal}`)), false, 'the directories the run created are gone');
  }
});

test('--version prints the package version', () => {
  const r = tv('--version');
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), '0.1.0');
});
