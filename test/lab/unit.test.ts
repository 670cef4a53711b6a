// The lab's pure parts: the newc packer, the serial protocol and clock-block parser (fed a block the real
// guest sent), the function_graph importer (fed a trace the real guest's kernel wrote), and the twins.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { packNewc, unpackNewc } from '../../src/lab/cpio.ts';
import { formatStackCounts, importFunctionGraph } from '../../src/lab/ftrace.ts';
import { initScript } from '../../src/lab/init.ts';
import { LineProtocolParser, parseClockBlock, type SerialMessage } from '../../src/lab/protocol.ts';
import { modelPause, rtcBootOffsetNs } from '../../src/lab/twin.ts';

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url);
const S = 1_000_000_000n;

test('newc: one file gives the 110-byte ASCII header, name, data and trailer with 4-byte padding', () => {
  const buf = packNewc([{ kind: 'file', path: 'a', data: Buffer.from('hi'), mode: 0o644 }]);
  // Hand-derived: magic, ino 1, mode 0100644, uid, gid, nlink 1, mtime, size 2, dev 0/0, rdev 0/0, namesize 2, check.
  const header =
    '070701' +
    [
      '00000001',
      '000081a4',
      '00000000',
      '00000000',
      '00000001',
      '00000000',
      '00000002',
      '00000000',
      '00000000',
      '00000000',
      '00000000',
      '00000002',
      '00000000',
    ].join('');
  assert.equal(buf.toString('ascii', 0, 110), header);
  assert.equal(buf.toString('ascii', 110, 112), 'a\0'); // 110 + 2 = 112: already 4-aligned
  assert.equal(buf.toString('ascii', 112, 114), 'hi');
  assert.deepEqual([...buf.subarray(114, 116)], [0, 0]); // data padded to 4
  assert.equal(buf.toString('ascii', 116, 122), '070701');
  assert.equal(buf.toString('ascii', 116 + 110, 116 + 120), 'TRAILER!!!');
  assert.equal(buf.length, 116 + 124); // trailer: 110 + 11 name bytes = 121, padded to 124
});

test('newc: directories, symlinks and device nodes round-trip with their modes', () => {
  const buf = packNewc([
    { kind: 'dir', path: 'dev' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'symlink', path: 'bin/sh', target: '/bin/busybox' },
    { kind: 'file', path: 'init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
  ]);
  const got = unpackNewc(buf);
  assert.deepEqual(
    got.map((e) => [e.path, e.mode.toString(8)]),
    [
      ['dev', '40755'],
      ['dev/console', '20600'],
      ['bin/sh', '120777'],
      ['init', '100755'],
    ],
  );
  assert.deepEqual(got[1]!.rdev, [5, 1]);
  assert.equal(got[2]!.data.toString(), '/bin/busybox');
  assert.equal(got[3]!.data.toString(), '#!/bin/sh\n');
});

test('clock block from the real guest: MONOTONIC from "now at", REALTIME/BOOTTIME from the hrtimer base offsets', () => {
  const lines = JSON.parse(readFileSync(fixture('clock-block.json'), 'utf8')) as string[];
  const c = parseClockBlock(lines);
  assert.equal(c.monotonicNs, 2_075_405_465n);
  assert.equal(c.realtimeNs, 2_075_405_465n + 1_795_639_059_129_518_653n);
  assert.equal(c.boottimeNs, 2_075_405_465n);
  assert.equal(c.adjtimex.status, 64); // STA_UNSYNC
  assert.equal(c.adjtimex.ret, 5); // TIME_ERROR: clock not synchronized
  assert.equal(c.adjtimex.offsetUs, 0);
  assert.equal(c.adjtimex.timeUs, 1_795_639_061_223_494n);
  assert.equal(c.uptimeS, 2.1);
});

test('clock block without the base offsets is an error, not a zero', () => {
  assert.throws(() => parseClockBlock(['now at 5 nsecs', '2.10 0.00']), /incomplete/);
});

test('line protocol: blocks, tagged lines and console noise are told apart across chunk boundaries', () => {
  const got: SerialMessage[] = [];
  const p = new LineProtocolParser((m) => got.push(m));
  p.push('[    1.0] some kernel line\r\n@tv rea');
  p.push('dy\r\n@tv begin clock b1\r\nnow at 5 nsecs\r\n@tv chrony System clock was stepped by 1 seconds\r\n@tv end clock b1\r\n');
  assert.deepEqual(p.console, ['[    1.0] some kernel line']);
  assert.deepEqual(got, [
    { kind: 'line', tag: 'ready', text: '' },
    { kind: 'line', tag: 'chrony', text: 'System clock was stepped by 1 seconds' },
    { kind: 'block', tag: 'clock', id: 'b1', lines: ['now at 5 nsecs'] },
  ]);
});

test('function_graph import: the real guest kernel’s rtc_read_time trace in stack-count layout', () => {
  const imp = importFunctionGraph(readFileSync(fixture('rtc_read_time.function_graph.txt'), 'utf8'));
  assert.deepEqual(imp.skipped, []);
  const counts = imp.recorder.stackCounts();
  assert.equal(counts.get('rtc_read_time'), 1);
  assert.equal(counts.get('rtc_read_time;__rtc_read_time;cmos_read_time;mc146818_get_time;mc146818_avoid_UIP'), 1);
  // Counted by hand in the fixture: 5 rtc_cmos_read leaves directly under mc146818_avoid_UIP.
  assert.equal(counts.get('rtc_read_time;__rtc_read_time;cmos_read_time;mc146818_get_time;mc146818_avoid_UIP;rtc_cmos_read'), 5);
  // An interrupt taken inside cmos_read_time nests under it, as the kernel printed it.
  assert.equal(counts.get('rtc_read_time;__rtc_read_time;cmos_read_time;__sysvec_apic_timer_interrupt;hrtimer_interrupt'), 1);
  const first = imp.recorder.recorded[0]!;
  assert.equal(first.ts, 5_168_852_000n); // funcgraph-abstime 5.168852 s
  assert.equal(first.ph, 'B');
  assert.ok(formatStackCounts(counts).every((l) => /^\S+ \d+$/.test(l)));
});

test('RTC boot offset: QEMU’s RTC second boundaries follow QEMU’s start, hctosys adds 0.5 s', () => {
  // QEMU started at host 100.3 s: base_rtc 100, last_update at 100.3. Read at 101.2: 0 whole seconds elapsed
  // → RTC says 100; the guest sets 100.5; offset 100.5 − 101.2 = −0.7 s.
  assert.equal(rtcBootOffsetNs(100n * S + 300_000_000n, 101n * S + 200_000_000n), -700_000_000n);
  // Read at 101.4: 1.1 s elapsed → RTC 101 → guest 101.5; offset +0.1 s.
  assert.equal(rtcBootOffsetNs(100n * S + 300_000_000n, 101n * S + 400_000_000n), 100_000_000n);
  // The same RTC phase measured from a tick seen after the read (101.3 s) gives the same answer.
  assert.equal(rtcBootOffsetNs(101n * S + 300_000_000n, 101n * S + 200_000_000n), -700_000_000n);
  // Worst case just under −1.5 s: start at x.999, read just before the next RTC boundary.
  assert.equal(rtcBootOffsetNs(100n * S + 999_000_000n, 101n * S + 998_000_000n), -1_498_000_000n);
});

test('pause twin: the clocksource is frozen while stopped; REALTIME falls behind by the pause until a sync', () => {
  const none = modelPause({ pauseNs: 15n * S, offsetBeforeNs: -200_000_000n, sync: 'none' });
  assert.equal(none.realtime_lag_after_resume_s, 15);
  assert.equal(none.monotonic_advance_during_pause_s, 0);
  assert.equal(none.error_after_sync_s, -15.2);
  assert.equal(none.sync_done_at_s, null);
  const agent = modelPause({ pauseNs: 15n * S, offsetBeforeNs: 0n, sync: 'agent' });
  assert.equal(agent.error_after_sync_s, 0);
});

test("the lab's pause twin agrees with the full simulation of a QEMU TCG guest (vmm lifecycle: cpu_disable_ticks)", async () => {
  const { parseScenarioText } = await import('../../src/world/scenario.ts');
  const { simulate } = await import('../../src/world/simulation.ts');
  const run = (sync: string) =>
    simulate(
      parseScenarioText(`duration: 5min
sample_interval: 1min
hosts: [{ name: h, tsc: { freq_khz: 2596136 } }]
vms: [{ name: v, host: h, profile: qemu-tcg, kernel: debian12, update_interval: 1s, pauses: [{ at: 2min, duration: 15s }], sync: { method: ${sync}, agent_delay: 0s } }]
`),
    ).summary.vms[0]!.pauses[0]!;
  for (const sync of ['none', 'agent'] as const) {
    const sim = run(sync);
    const offsetBeforeNs = BigInt(sim.offset_before_ns);
    const twin = modelPause({ pauseNs: 15n * S, offsetBeforeNs, sync });
    const lagS = Number(offsetBeforeNs - BigInt(sim.offset_after_resume_ns!)) / 1e9;
    assert.ok(Math.abs(lagS - twin.realtime_lag_after_resume_s) < 1e-5, `${sync}: lag ${lagS} vs ${twin.realtime_lag_after_resume_s}`);
    assert.ok(Math.abs(Number(sim.monotonic_advance_ns) / 1e9 - twin.monotonic_advance_during_pause_s) < 1e-5);
    const afterSync = sim.offset_after_sync_ns === null ? Number(sim.offset_after_resume_ns) : Number(sim.offset_after_sync_ns);
    assert.ok(Math.abs(afterSync / 1e9 - twin.error_after_sync_s) < 1e-5, `${sync}: ${afterSync} vs ${twin.error_after_sync_s}`);
  }
});

test('the init script serves every command the host sends', () => {
  const sh = initScript({ modules: ['/lib/modules/e1000.ko'] });
  for (const cmd of ['clock)', 'sys)', 'dmesg)', 'trace-start)', 'trace-dump)', 'net-up)', 'chrony-start)', 'agent-start)'])
    assert.ok(sh.includes(cmd), cmd);
  assert.ok(sh.includes('insmod /lib/modules/e1000.ko'));
  assert.ok(sh.startsWith('#!/bin/sh\n'));
});
