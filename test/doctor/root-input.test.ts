// `doctor --root DIR`: a path that is not a recorded tree is bad input (exit 2, one line naming --root and
// the path), never a report of "No risks found"; text from a recording reaches the terminal escaped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../../src/core/errors.ts';
import { checkRecordedTree, recordedSource } from '../../src/doctor/source.ts';
import { isUnsafeChar, jsonSafe, lineSafe, terminalSafe } from '../../src/doctor/safe-text.ts';

const ROOT = join(import.meta.dirname, '../..');
const FIX = join(ROOT, 'test/fixtures/doctor');

function doctor(...args: string[]) {
  return spawnSync(process.execPath, ['bin/timevisor.js', 'doctor', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
}

function assertBadRoot(p: ReturnType<typeof doctor>, path: string, why: RegExp): void {
  assert.equal(p.status, 2, `exit ${p.status}; stdout ${p.stdout}; stderr ${p.stderr}`);
  assert.equal(p.stdout, '', 'nothing is reported');
  const lines = p.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, p.stderr);
  assert.ok(lines[0]!.startsWith('timevisor: --root: '), lines[0]);
  assert.ok(lines[0]!.includes(JSON.stringify(path)), lines[0]);
  assert.match(lines[0]!, why);
  assert.match(lines[0]!, /expected a recorded tree: a directory holding proc, sys, dmesg\.txt/);
}

test('--root of a path that does not exist is an error, not "No risks found"', () => {
  assertBadRoot(doctor('--root', '/nonexistent'), '/nonexistent', /does not exist/);
});

test('--root of a regular file is an error', () => {
  assertBadRoot(doctor('--root', '/etc/passwd'), '/etc/passwd', /is not a directory/);
  assertBadRoot(doctor('--root', '/etc/passwd/x', '--json'), '/etc/passwd/x', /cannot be read \(ENOTDIR\)/);
});

test('--root of a directory that holds no recording is an error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-root-'));
  try {
    writeFileSync(join(dir, 'notes.txt'), 'hello\n');
    assertBadRoot(doctor('--root', dir), dir, /holds none of proc, sys, dmesg\.txt/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the library refuses the same trees with an InputError naming the option', () => {
  assert.throws(
    () => recordedSource('/nonexistent'),
    (e: unknown) => e instanceof InputError && e.where === '--root' && /does not exist/.test(e.message),
  );
  assert.throws(
    () => checkRecordedTree('/etc/passwd', '--from'),
    (e: unknown) => e instanceof InputError && e.where === '--from',
  );
  for (const m of ['firecracker-pvm', 'coreos-bare-metal-refined-jiffies']) checkRecordedTree(join(FIX, m));
});

test('an unreadable recorded tree is an error (run as nobody against a root-only directory)', (t) => {
  const runuser = spawnSync('runuser', ['--help']);
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || runuser.error) {
    const why = 'needs Linux, root and runuser(1) to read as the nobody user (root reads any directory)';
    console.log(`skip: ${why}`);
    t.skip(why);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-root-'));
  try {
    chmodSync(dir, 0o755);
    const tree = join(dir, 'tree');
    mkdirSync(tree);
    writeFileSync(join(tree, 'dmesg.txt'), '[    0.000000] Linux version 6.1\n');
    chmodSync(tree, 0o700);
    const p = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, 'bin/timevisor.js', 'doctor', '--root', tree], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assertBadRoot(p, tree, /cannot be read \(EACCES\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file of the tree that is there but unreadable is named as such, not as "not in the recording"', () => {
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-root-'));
  try {
    mkdirSync(join(dir, 'dmesg.txt')); // a directory where the kernel log belongs: EISDIR
    const src = recordedSource(dir);
    const log = src.kernelLog();
    assert.equal(log.ok, false);
    assert.match(log.ok ? '' : log.reason, /^kernel log: in the recording but unreadable \(EISDIR\)$/);
    const cmd = src.readText('/proc/cmdline');
    assert.equal(cmd.ok ? '' : cmd.reason, '/proc/cmdline: not in the recording');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('control characters are escaped for the terminal, JSON and one-line contexts', () => {
  assert.equal(terminalSafe('a\x1b[31mred\x07\tb\nc\x9b2J\u202eevil\x7f'), 'a\\x1b[31mred\\x07\tb\nc\\x9b2J\\u{202e}evil\\x7f');
  assert.equal(lineSafe('one\ntwo\tthree'), 'one\\x0atwo\\x09three');
  const j = jsonSafe(JSON.stringify({ s: 'x\x1by\x9bz\u2066' }));
  assert.equal(j, '{"s":"x\\u001by\\u009bz\\u2066"}');
  assert.deepEqual(JSON.parse(j), { s: 'x\x1by\x9bz\u2066' }, 'the same JSON value');
});

// Every character that could steer a terminal: C0 except \t and \n, DEL, C1 (U+0080..U+009F), bidi marks.
function assertTerminalSafe(out: string, what: string): void {
  for (let i = 0; i < out.length; i++) {
    const c = out.charCodeAt(i);
    if (isUnsafeChar(c) && c !== 0x0a && c !== 0x09)
      assert.fail(`${what}: U+${c.toString(16).padStart(4, '0')} at ${i}: ${JSON.stringify(out.slice(Math.max(0, i - 20), i + 20))}`);
  }
}

test('a tree of random bytes and escape sequences is reported with every control character escaped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-root-'));
  try {
    // Seeded bytes (xorshift32), so the tree is the same on every run.
    let x = 0x9e3779b9;
    const bytes = (n: number) =>
      Buffer.from(
        Array.from({ length: n }, () => {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          return (x >>> 0) & 0xff;
        }),
      );
    const evil = Buffer.from('\x1b]0;pwned\x07\x1b[2J\x1b[31m\u009b31m\u202e');
    const cs = join(dir, 'sys/devices/system/clocksource/clocksource0');
    mkdirSync(cs, { recursive: true });
    mkdirSync(join(dir, 'proc'));
    writeFileSync(join(cs, 'available_clocksource'), Buffer.concat([Buffer.from('tsc '), evil, Buffer.from(' kvm-clock\n')]));
    writeFileSync(join(cs, 'current_clocksource'), Buffer.concat([evil, Buffer.from('\n')]));
    writeFileSync(
      join(dir, 'proc/cmdline'),
      Buffer.concat([Buffer.from('console=ttyS0 clocksource='), evil, bytes(64), Buffer.from('\n')]),
    );
    writeFileSync(join(dir, 'proc/version'), Buffer.concat([Buffer.from('Linux version '), evil, bytes(32), Buffer.from('\n')]));
    writeFileSync(
      join(dir, 'dmesg.txt'),
      Buffer.concat([
        Buffer.from('[    0.000000] Linux version 6.18'),
        evil,
        Buffer.from('\n[    0.000000] Hypervisor detected: '),
        evil,
        Buffer.from('\n[    0.000001] tsc: Detected 2596.134 MHz processor\n[    0.300000] clocksource: Switched to clocksource '),
        evil,
        Buffer.from('\n'),
        bytes(512),
      ]),
    );
    const scenario = join(dir, 'twin.yaml');
    for (const args of [
      ['--root', dir],
      ['--root', dir, '--json'],
      ['--root', dir, '--scenario', scenario],
    ]) {
      const p = doctor(...args);
      assert.equal(p.status, 0, `${args.join(' ')}: ${p.stderr}`);
      assertTerminalSafe(p.stdout, args.join(' '));
      assertTerminalSafe(p.stderr, args.join(' '));
      if (!args.includes('--json')) assert.match(p.stdout, /\\x1b\[31m/, 'the escape is shown, not executed');
    }
    const p = doctor('--root', dir, '--json');
    assert.ok(JSON.parse(p.stdout), 'still valid JSON');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
