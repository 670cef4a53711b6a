// `timevisor qga --stdio`: the agent model on stdin/stdout over a simulated guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const BIN = resolve(import.meta.dirname, '../../bin/timevisor.js');
const qga = (input: string | Buffer, ...args: string[]) =>
  spawnSync(process.execPath, [BIN, 'qga', ...args], { input, encoding: 'latin1' });

test('answers requests on stdin as qemu-ga does, including the 0xFF of guest-sync-delimited and held partial input', () => {
  const r = qga(
    Buffer.from(
      '{"execute":"guest-ping","id":1}\n{"execute":"guest-sync-delimited","arguments":{"id":9}}\n{"execute":"guest-set-time"}\n{"execute":"guest-sy',
      'utf8',
    ),
    '--stdio',
    '--block',
    'guest-set-time',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(
    r.stdout,
    '{"return": {}, "id": 1}\n\xff{"return": 9}\n{"error": {"class": "CommandNotFound", "desc": "Command guest-set-time has been disabled"}}\n',
  );
});

test("the simulated guest reads about this host's time; guest-set-time moves it", () => {
  const r = qga(
    '{"execute":"guest-get-time"}\n{"execute":"guest-set-time","arguments":{"time":1800000000000000000}}\n{"execute":"guest-get-time"}\n',
    '--stdio',
  );
  assert.equal(r.status, 0, r.stderr);
  const [t1, , t2] = r.stdout
    .trim()
    .split('\n')
    .map((l) => BigInt(/"return": (\d+)/.exec(l)?.[1] ?? '0'));
  // the guest's clock is the host's at start plus a few ppm of kvmclock arithmetic; the process runs < 30 s
  const hostNs = BigInt(Date.now()) * 1_000_000n;
  assert.ok(t1! > hostNs - 30_000_000_000n && t1! <= hostNs + 1_000_000_000n, `guest ${t1} host ${hostNs}`);
  assert.ok(t2! >= 1_800_000_000_000_000_000n && t2! < 1_800_000_001_000_000_000n, `after set ${t2}`);
});

test('bad options exit 2 with one line naming the option', () => {
  for (const [args, where] of [
    [['--stdio', '--block', 'guest-nope'], '--block'],
    [['--stdio', '--profile', 'vmware'], '--profile'],
    [[], '--stdio'],
  ] as const) {
    const r = qga('', ...args);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(where));
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
});
