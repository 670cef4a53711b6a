// The QGA model's time commands (what the differential test cannot exercise on a real agent: it must
// never set this machine's clock) and its stream handling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QgaAgent } from '../../src/guest/qga-agent.ts';
import { formatG17 } from '../../src/guest/qga-json.ts';

function agent(o: { hwclock?: boolean; blocked?: string[] } = {}) {
  const log: string[] = [];
  let now = 1_767_225_600_123_456_789n;
  const a = new QgaAgent({
    guest: {
      realtime: () => now,
      settimeofday: (ns) => {
        log.push(`settimeofday ${ns}`);
        now = ns;
      },
      hwclockToSystem: () => log.push('hwclock -s'),
      systemToHwclock: () => log.push('hwclock -w'),
    },
    ...(o.hwclock !== undefined ? { hwclockAvailable: o.hwclock } : {}),
    ...(o.blocked ? { blocked: o.blocked } : {}),
  });
  const ask = (s: string) => new TextDecoder('latin1').decode(a.feed(s));
  return { ask, log };
}

test('guest-get-time has microsecond resolution (g_get_real_time() * 1000)', () => {
  assert.equal(agent().ask('{"execute":"guest-get-time"}\n'), '{"return": 1767225600123456000}\n');
});

test('guest-set-time with a time: settimeofday with a struct timeval (µs), then hwclock -w', () => {
  const { ask, log } = agent();
  assert.equal(ask('{"execute":"guest-set-time","arguments":{"time":1767225700987654321}}\n'), '{"return": {}}\n');
  assert.deepEqual(log, ['settimeofday 1767225700987654000', 'hwclock -w']);
});

test('guest-set-time without a time sets the system clock from the RTC (hwclock -s)', () => {
  const { ask, log } = agent();
  assert.equal(ask('{"execute":"guest-set-time","id":3}\n'), '{"return": {}, "id": 3}\n');
  assert.deepEqual(log, ['hwclock -s']);
});

test('guest-set-time refuses years outside 1970..2069 and a guest without /sbin/hwclock', () => {
  assert.equal(
    agent().ask('{"execute":"guest-set-time","arguments":{"time":3250368000000000000}}\n'),
    '{"error": {"class": "GenericError", "desc": "Invalid time: Success"}}\n',
  );
  assert.equal(
    agent({ hwclock: false }).ask('{"execute":"guest-set-time"}\n'),
    '{"error": {"class": "GenericError", "desc": "this feature or command is not currently supported"}}\n',
  );
});

test('guest-sync-delimited writes 0xFF before its reply; an incomplete object is held until complete', () => {
  const { ask } = agent();
  assert.equal(ask('{"execute":"guest-sync-delimited","arguments":{"id":'), '');
  assert.equal(ask('42}'), '');
  assert.equal(ask('}'), '\xff{"return": 42}\n');
});

test('--block disables a command: CommandNotFound "has been disabled", guest-info enabled false', () => {
  const { ask } = agent({ blocked: ['guest-get-time'] });
  assert.equal(
    ask('{"execute":"guest-get-time"}\n'),
    '{"error": {"class": "CommandNotFound", "desc": "Command guest-get-time has been disabled"}}\n',
  );
  assert.match(ask('{"execute":"guest-info"}\n'), /\{"enabled": false, "name": "guest-get-time", "success-response": true\}/);
});

test('doubles print as C printf %.17g', () => {
  assert.deepEqual([0.1, 1.5, 1.5e10, 1e21, 1e-5, 123456789012345680000, -0].map(formatG17), [
    '0.10000000000000001',
    '1.5',
    '15000000000',
    '1e+21',
    '1.0000000000000001e-05',
    '1.2345678901234568e+20',
    '-0',
  ]);
});
