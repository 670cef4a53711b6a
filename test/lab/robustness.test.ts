// The lab command's edges without QEMU: a bad cache directory is one clear line (exit 2), SIGTERM/SIGINT
// stop a run at once with its helper programs ended and nothing half-written in the cache (a fake slow
// apt-get stands in for the first run's download), missing prerequisites are named, progress shows only
// on a terminal, and the twin's TSC is read from this machine's kernel log as the doctor reads it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { labProgress, readHostTsc } from '../../src/cli/commands/lab.ts';
import { InputError, UnavailableError } from '../../src/core/errors.ts';
import { recordedSource } from '../../src/doctor/index.ts';
import {
  adopt,
  aptMissingPrerequisite,
  buildGuestImage,
  ensureDir,
  killChildren,
  MissingPrerequisiteError,
  requireTool,
  writeFileAtomic,
} from '../../src/lab/index.ts';

const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'bin/timevisor.js');

function cli(
  args: string[],
  env: Record<string, string>,
): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; stderr: string; stdout: string }> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const done = new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stderr, stdout })),
  );
  return { child, done };
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'timevisor-labrobust-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

// a timeout, so that a regression (Node's recursive mkdir spinning on /proc) fails instead of hanging the suite
test('TIMEVISOR_CACHE naming a file, a path under /proc, or nothing: one line naming it, exit 2, no stack', {
  timeout: 120_000,
}, async (t) => {
  const d = tempDir(t);
  const file = join(d, 'some-file');
  writeFileSync(file, 'x');
  const cases: [string, string][] = [
    [file, `timevisor: TIMEVISOR_CACHE: ${file} is not a directory; expected a directory the lab can create and write\n`],
    // Node's recursive mkdir loops for ever here (mkdir under /proc answers ENOENT); the lab's does not
    [
      '/proc/timevisor-no-such-dir',
      'timevisor: TIMEVISOR_CACHE: cannot create /proc/timevisor-no-such-dir (ENOENT: no such file or directory); expected a directory the lab can create and write\n',
    ],
    ['', 'timevisor: TIMEVISOR_CACHE: the value is empty; expected a directory the lab can create and write\n'],
  ];
  for (const [cache, want] of cases) {
    const r = await cli(['lab', 'boot'], { TIMEVISOR_CACHE: cache }).done;
    assert.equal(r.code, 2, cache);
    assert.equal(r.stderr, want);
    assert.equal(r.stdout, '');
  }
  assert.equal(readFileSync(file, 'utf8'), 'x');
});

test('ensureDir is bounded by the path’s components and names the one that failed', (t) => {
  const d = tempDir(t);
  assert.equal(ensureDir(join(d, 'a/b/c'), 'X'), join(d, 'a/b/c'));
  assert.ok(existsSync(join(d, 'a/b/c')));
  writeFileSync(join(d, 'f'), '');
  assert.throws(
    () => ensureDir(join(d, 'f/g'), 'X'),
    (e: InputError) => e instanceof InputError && e.where === 'X' && e.message.startsWith(`${join(d, 'f')} is not a directory`),
  );
  assert.throws(() => ensureDir('/proc/timevisor-x/y', 'X'), /cannot create \/proc\/timevisor-x \(ENOENT/);
});

test('writeFileAtomic leaves the file whole or absent, never a temporary', (t) => {
  const d = tempDir(t);
  writeFileAtomic(join(d, 'out.bin'), Buffer.from('abc'));
  assert.deepEqual(readdirSync(d), ['out.bin']);
  assert.throws(() => writeFileAtomic(join(d, 'missing-dir', 'x'), 'y'));
  assert.deepEqual(readdirSync(d), ['out.bin']);
});

/** A fake apt-get that records its pid, writes half a .deb, and then takes its time. */
function slowAptGet(dir: string): { bin: string; pidFile: string } {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const pidFile = join(dir, 'apt.pid');
  writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\nprintf 'half a package' > "$3_1.0_amd64.deb"\necho $$ > ${pidFile}\nexec sleep 60\n`);
  chmodSync(join(bin, 'apt-get'), 0o755);
  return { bin, pidFile };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const [signal, code] of [
  ['SIGTERM', 143],
  ['SIGINT', 130],
] as const) {
  test(`${signal} during the first run's download: exit ${code} at once, apt-get ended, no package in the cache`, async (t) => {
    const d = tempDir(t);
    const fake = slowAptGet(d);
    const cache = join(d, 'cache');
    const run = cli(['lab', 'boot'], {
      TIMEVISOR_CACHE: cache,
      TIMEVISOR_LAB_KERNEL_PKG: 'linux-image-timevisor-test-amd64',
      PATH: `${fake.bin}:${process.env.PATH}`,
    });
    t.after(() => run.child.kill('SIGKILL'));
    // tsx compiles the CLI first: on 2 shared, busy cores that alone can take several seconds
    await waitFor(() => existsSync(fake.pidFile) && readFileSync(fake.pidFile, 'utf8').trim() !== '', 60_000, 'the fake apt-get');
    const aptPid = Number(readFileSync(fake.pidFile, 'utf8'));
    const sent = Date.now();
    run.child.kill(signal);
    const r = await run.done;
    // Real time: the handler runs on the next turn of the event loop; 5 s allows for a loaded machine
    // (before, a synchronous download held the handler off for as long as apt-get ran: 60 s here).
    assert.ok(Date.now() - sent < 5_000, `took ${Date.now() - sent} ms`);
    assert.equal(r.code, code);
    assert.equal(r.stderr, `timevisor: lab: ${signal}: stopped (ended 1 helper process)\n`);
    await waitFor(() => !alive(aptPid), 2_000, 'apt-get to end');
    const leftovers = readdirSync(join(cache, 'lab', 'debs'));
    assert.deepEqual(leftovers, [], 'nothing half-written');
  });
}

test('killChildren ends every adopted helper', async () => {
  const c = adopt(spawn('sleep', ['60'], { stdio: 'ignore' }));
  const ended = new Promise<NodeJS.Signals | null>((r) => c.once('exit', (_code, sig) => r(sig)));
  assert.ok(killChildren('SIGTERM') >= 1);
  assert.equal(await ended, 'SIGTERM');
});

/** buildGuestImage with a fake apt-get that fails with `message`; returns what it threw. */
async function buildWithFailingApt(t: { after: (fn: () => void) => void }, message: string): Promise<unknown> {
  const d = tempDir(t);
  mkdirSync(join(d, 'bin'));
  writeFileSync(join(d, 'bin', 'apt-get'), `#!/bin/sh\necho '${message}' >&2\nexit 100\n`);
  chmodSync(join(d, 'bin', 'apt-get'), 0o755);
  const saved = { PATH: process.env.PATH, TIMEVISOR_CACHE: process.env.TIMEVISOR_CACHE, K: process.env.TIMEVISOR_LAB_KERNEL_PKG };
  Object.assign(process.env, {
    PATH: `${join(d, 'bin')}:${saved.PATH}`,
    TIMEVISOR_CACHE: join(d, 'cache'),
    TIMEVISOR_LAB_KERNEL_PKG: 'linux-image-x-amd64',
  });
  try {
    await buildGuestImage();
    return null;
  } catch (e) {
    return e;
  } finally {
    process.env.PATH = saved.PATH;
    for (const [k, v] of [
      ['TIMEVISOR_CACHE', saved.TIMEVISOR_CACHE],
      ['TIMEVISOR_LAB_KERNEL_PKG', saved.K],
    ] as const)
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

test('building the image: no network is a named missing prerequisite (the lab test skips); a write error is a failure', async (t) => {
  const offline = await buildWithFailingApt(t, 'E: Failed to fetch http://deb.debian.org/x  Temporary failure resolving deb.debian.org');
  assert.ok(offline instanceof MissingPrerequisiteError, String(offline));
  assert.equal(offline.prerequisite, 'network access to the Debian archive');
  const broken = await buildWithFailingApt(t, 'E: Write error - write (28: No space left on device)');
  assert.ok(broken instanceof UnavailableError && !(broken instanceof MissingPrerequisiteError), String(broken));
  assert.equal(broken.message, 'cannot download the Debian package linux-image-x-amd64');
});

test('missing prerequisites are named; other apt failures are errors', () => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    assert.throws(
      () => requireTool('dpkg-deb', 'dpkg'),
      (e: MissingPrerequisiteError) => e instanceof MissingPrerequisiteError && e.prerequisite === 'dpkg-deb (Debian package dpkg)',
    );
  } finally {
    process.env.PATH = path;
  }
  assert.equal(
    aptMissingPrerequisite('E: Failed to fetch http://deb.example/x.deb  Temporary failure resolving', true),
    'network access to the Debian archive',
  );
  assert.equal(aptMissingPrerequisite('E: Unable to locate package chrony', false), "Debian's package lists (run apt-get update)");
  // with package lists present, an unknown package is a bug, not a missing prerequisite
  assert.equal(aptMissingPrerequisite('E: Unable to locate package chrony', true), null);
  assert.equal(aptMissingPrerequisite('E: Write error - write (28: No space left on device)', true), null);
});

test('progress: nothing when stderr is not a terminal; on a terminal one line per step', () => {
  const written: string[] = [];
  const fake = { isTTY: true, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  const p = labProgress(fake);
  p.progress('downloading the Debian package chrony');
  p.progress("booting Debian's kernel under QEMU TCG");
  p.done();
  const text = written.join('');
  assert.match(text, /\[ {2}0 s\] downloading the Debian package chrony \(0 s\)\n/);
  assert.match(text, /booting Debian's kernel under QEMU TCG \(0 s\)\n$/);
  const quiet: string[] = [];
  const pipe = { isTTY: false, write: (s: string) => quiet.push(s) } as unknown as NodeJS.WriteStream;
  const q = labProgress(pipe);
  q.progress('x');
  q.done();
  assert.deepEqual(quiet, []);
});

test("the twin's TSC is this machine's kernel's: the refined number when printed, else the detected one", () => {
  const fx = (n: string) => recordedSource(join(ROOT, 'test/fixtures/doctor', n));
  assert.deepEqual(readHostTsc(fx('qemu-tcg-pc')), {
    khz: 2_596_115,
    source: `this machine's kernel log, "tsc: Refined TSC clocksource calibration" 2596.115 MHz`,
  });
  const fc = readHostTsc(fx('firecracker-pvm'));
  assert.ok(fc && /Detected/.test(fc.source), JSON.stringify(fc));
});
