// The qtest server: reply formats as QEMU's system/qtest.c writes them, the virtual clock, IRQ
// interception, errors that QEMU would abort on, and the CLI reading stdin to its end.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseQtestNumber, QtestSession, rtcBaseSeconds } from '../../src/devices/index.ts';

const session = () => new QtestSession({ rtcBaseSeconds: rtcBaseSeconds('2020-01-01T00:00:00', 0n) });
const run = (s: QtestSession, script: string) => script.split('\n').flatMap((l) => s.handle(l));

test('reply formats: OK, OK 0x%04x for port reads, OK 0x%016x for memory reads, OK little for endianness', () => {
  const s = session();
  assert.deepEqual(run(s, 'outb 0x70 0x0a\ninb 0x71\nreadl 0xfed00000\nendianness'), [
    'OK',
    'OK 0x0026',
    'OK 0x000000008086a201',
    'OK little',
  ]);
  assert.deepEqual(run(s, 'inl 0x1234\ninw 0x1234'), ['OK 0xffffffff', 'OK 0xffff'], 'unmapped ports read all ones');
});

test('unknown and malformed lines answer FAIL with a reason and the session goes on', () => {
  const s = session();
  assert.deepEqual(run(s, 'frobnicate 1'), ["FAIL Unknown command 'frobnicate'"]);
  assert.deepEqual(run(s, ''), ["FAIL Unknown command ''"]);
  assert.deepEqual(run(s, 'outb 0x70'), ['FAIL missing value']);
  assert.deepEqual(run(s, 'inb zz'), ["FAIL invalid port 'zz'"]);
  assert.deepEqual(run(s, 'outb 0x10000 1'), ['FAIL port 0x10000 out of range']);
  assert.deepEqual(run(s, 'outb 0x70 0x0a\ninb 0x71'), ['OK', 'OK 0x0026'], 'still answering');
});

test('numbers parse as strtoul base 0: hex, octal and decimal', () => {
  assert.equal(parseQtestNumber('0x1f', 'x'), 31n);
  assert.equal(parseQtestNumber('017', 'x'), 15n);
  assert.equal(parseQtestNumber('17', 'x'), 17n);
  assert.equal(parseQtestNumber('0', 'x'), 0n);
  assert.throws(() => parseQtestNumber('08', 'x'));
  assert.throws(() => parseQtestNumber('1x', 'x'));
});

test('clock_step and clock_set move the virtual clock and report it; stepping to the next deadline works; time never goes back', () => {
  const s = session();
  assert.deepEqual(run(s, 'clock_step 1000'), ['OK 1000']);
  assert.deepEqual(run(s, 'clock_set 5000'), ['OK 5000']);
  assert.deepEqual(run(s, 'clock_set 10'), ['FAIL 5000']);
  assert.deepEqual(run(s, 'clock_step 0'), ['FAIL could not advance time']);
  // next deadline: the PIT's first OUT transition of its reset-time mode 3 count (32768 ticks)
  assert.deepEqual(run(s, 'clock_step'), ['OK 27462700']);
});

test('the RTC seen through qtest: seconds advance with clock_step; UIP shows in the 244 µs window', () => {
  const s = session();
  assert.deepEqual(run(s, 'clock_step 999755860\noutb 0x70 0x0a\ninb 0x71\noutb 0x70 0x00\ninb 0x71'), [
    'OK 999755860',
    'OK',
    'OK 0x00a6',
    'OK',
    'OK 0x0000',
  ]);
  assert.deepEqual(run(s, 'clock_step 244140\ninb 0x71\noutb 0x70 0x0a\ninb 0x71'), ['OK 1000000000', 'OK 0x0001', 'OK', 'OK 0x0026']);
});

test('irq_intercept_in ioapic reports IRQ raise/lower before the answer of the command that caused them', () => {
  const s = session();
  assert.deepEqual(run(s, 'irq_intercept_in ioapic'), ['OK']);
  assert.deepEqual(run(s, 'irq_intercept_in /machine/i440fx/ioapic'), ['OK']);
  assert.deepEqual(run(s, 'irq_intercept_in nosuch'), ['FAIL Unknown device']);
  // RTC update-ended interrupt on IRQ8
  assert.deepEqual(run(s, 'outb 0x70 0x0b\noutb 0x71 0x12'), ['OK', 'OK']);
  const out = run(s, 'clock_step 1000000000');
  assert.ok(out.includes('IRQ raise 8'));
  assert.equal(out.at(-1), 'OK 1000000000');
  assert.deepEqual(run(s, 'outb 0x70 0x0c\ninb 0x71'), ['OK', 'IRQ lower 8', 'OK 0x0090']);
});

test('PIT channel 0 drives IRQ0 as QEMU does: mode 2 gives raise/lower once per period', () => {
  const s = session();
  run(s, 'irq_intercept_in ioapic\noutb 0x43 0x34\noutb 0x40 0xa9\noutb 0x40 0x04'); // 1193 -> ~1 kHz
  // With QEMU's pit_get_out/pit_get_next_transition_time and muldiv64 flooring, the line rises one
  // tick after each period boundary and drops one tick before the next: high for a period, low for a
  // tick. An edge-triggered guest sees one interrupt per period; the 10th rise is just past 10 ms.
  const out = run(s, 'clock_step 10010000');
  assert.equal(out.filter((l) => l === 'IRQ raise 0').length, 10);
  assert.equal(out.filter((l) => l === 'IRQ lower 0').length, 9);
});

test('HPET legacy replacement takes IRQ0 away from the PIT and gives it to HPET timer 0', () => {
  const s = session();
  run(s, 'irq_intercept_in ioapic\noutb 0x43 0x34\noutb 0x40 0xa9\noutb 0x40 0x04');
  run(s, 'writel 0xfed00108 0x3e8\nwritel 0xfed0010c 0x0\nwritel 0xfed00100 0x4\nwritel 0xfed00010 0x3');
  const out = run(s, 'clock_step 10000000');
  assert.equal(out.filter((l) => l === 'IRQ raise 0').length, 1, 'only the HPET one-shot at 10 µs');
});

test('PIIX4 PM: the PM timer appears at PMBA + 8 once PMREGMISC enables it, and counts with the virtual clock', () => {
  const s = session();
  assert.deepEqual(run(s, 'inl 0xb008'), ['OK 0xffffffff']);
  run(s, 'outl 0xcf8 0x80000b40\noutl 0xcfc 0xb001\noutl 0xcf8 0x80000b80\noutb 0xcfc 0x01');
  assert.deepEqual(run(s, 'clock_step 1000000000\ninl 0xb008'), ['OK 1000000000', 'OK 0x369e99']); // 3,579,545
  run(s, 'outl 0xcf8 0x80000b40\noutl 0xcfc 0x0601');
  assert.deepEqual(run(s, 'inl 0xb008\ninl 0x608'), ['OK 0xffffffff', 'OK 0x369e99']);
  run(s, 'outl 0xcf8 0x80000b80\noutb 0xcfc 0x00');
  assert.deepEqual(run(s, 'inl 0x608'), ['OK 0xffffffff']);
});

test('memory: write/read hex, b64write/b64read, memset, writeq/readq in RAM', () => {
  const s = session();
  assert.deepEqual(run(s, 'write 0x1000 4 0xdeadbeef\nread 0x1000 4'), ['OK', 'OK 0xdeadbeef']);
  assert.deepEqual(run(s, 'readl 0x1000'), ['OK 0x00000000efbeadde']);
  assert.deepEqual(run(s, 'b64write 0x2000 3 AQID\nb64read 0x2000 3'), ['OK', 'OK AQID']);
  assert.deepEqual(run(s, 'memset 0x3000 2 0x41\nreadw 0x3000'), ['OK', 'OK 0x0000000000004141']);
  assert.deepEqual(run(s, 'writeq 0x4000 0x0102030405060708\nreadq 0x4000\nreadb 0x4000'), [
    'OK',
    'OK 0x0102030405060708',
    'OK 0x0000000000000008',
  ]);
});

test('`timevisor devices qtest` answers a script on stdin and exits at end of input', () => {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'timevisor.js');
  const r = spawnSync(process.execPath, [bin, 'devices', 'qtest', '--rtc-base', '2020-01-01T00:00:00'], {
    input: 'outb 0x70 0x09\ninb 0x71\nbogus\nclock_step 1000\n',
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "OK\nOK 0x0020\nFAIL Unknown command 'bogus'\nOK 1000\n");
  const partial = spawnSync(process.execPath, [bin, 'devices', 'qtest'], {
    input: 'endianness\nendianness',
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(partial.stdout, 'OK little\n', 'an unterminated last line is not a command (qtest_process_inbuf)');
  const bad = spawnSync(process.execPath, [bin, 'devices', 'qtest', '--machine', 'q35'], { input: '', encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown machine 'q35'/);
});

test('an IRQ flood streams through the emit sink: millions of lines for one clock_step, then its answer', () => {
  const lines: string[] = [];
  let irq = 0;
  const s = new QtestSession({ rtcBaseSeconds: 0n }, (l) => (l.startsWith('IRQ ') ? irq++ : lines.push(l)));
  for (const l of ['irq_intercept_in ioapic', 'outb 0x43 0x34', 'outb 0x40 0x02', 'outb 0x40 0x00']) assert.deepEqual(s.handle(l), []);
  s.handle('clock_step 2000000000');
  // divisor 2 in mode 2: IRQ0 changes about once per input tick (2 s × 1,193,182 Hz); the sink must see
  // exactly the lines a collecting session returns
  const collecting = session();
  run(collecting, 'irq_intercept_in ioapic\noutb 0x43 0x34\noutb 0x40 0x02\noutb 0x40 0x00');
  const collected = collecting.handle('clock_step 2000000000');
  assert.ok(irq > 2_380_000, `${irq} IRQ lines`);
  assert.equal(irq, collected.length - 1);
  assert.deepEqual(lines, ['OK', 'OK', 'OK', 'OK', 'OK 2000000000']);
});

test('clock_step 2^63-1 with periodic timers is refused at once with FAIL, the clock stays, and the session goes on', () => {
  const s = session();
  const [refused, ...rest] = run(s, 'clock_step 9223372036854775807');
  assert.deepEqual(rest, []);
  // the PIT's reset-time 18.2 Hz square wave alone would be 3.4e11 events
  assert.match(
    refused!,
    /^FAIL a step of 9223372036854775807 ns could dispatch \d{12} timer events \(limit 50000000\); step in smaller parts$/,
  );
  assert.deepEqual(run(s, 'clock_step 1000'), ['OK 1000'], 'the clock stayed at 0');
  assert.deepEqual(run(s, 'clock_set 9223372036854775808'), [
    'FAIL time 9223372036854775808 is past the largest virtual time (9223372036854775807 ns)',
  ]);
  assert.deepEqual(run(s, 'clock_step 1000'), ['OK 2000']);
});

test('`devices qtest` writes every answer of an IRQ flood and the answers after it, in order', () => {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'timevisor.js');
  const r = spawnSync(process.execPath, [bin, 'devices', 'qtest'], {
    input: 'irq_intercept_in ioapic\noutb 0x43 0x34\noutb 0x40 0x02\noutb 0x40 0x00\nclock_step 300000000\nendianness\n',
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.split('\n');
  const model = new QtestSession({ rtcBaseSeconds: 0n });
  run(model, 'irq_intercept_in ioapic\noutb 0x43 0x34\noutb 0x40 0x02\noutb 0x40 0x00');
  const expected = model.handle('clock_step 300000000').length - 1; // about one per tick of 0.3 s × 1,193,182 Hz
  assert.ok(expected > 350_000);
  assert.equal(out.filter((l) => l.startsWith('IRQ ')).length, expected);
  assert.deepEqual(
    out.filter((l) => !l.startsWith('IRQ ')),
    ['OK', 'OK', 'OK', 'OK', 'OK 300000000', 'OK little', ''],
  );
});

test('`devices qtest` refuses bad --utc-offset and --acpi-pm values with one line naming the option, exit 2', () => {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'timevisor.js');
  const cases: [string, string][] = [
    ['--utc-offset', 'abc'],
    ['--utc-offset', '1.5'],
    ['--utc-offset', '1e20'],
    ['--acpi-pm', 'abc'],
    ['--acpi-pm', '-1'],
    ['--acpi-pm', '70000'],
    ['--hpet-cmp64', 'both'],
  ];
  for (const [opt, value] of cases) {
    const r = spawnSync(process.execPath, [bin, 'devices', 'qtest', `${opt}=${value}`], {
      input: 'endianness\n',
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 2, `${opt} ${value}: ${r.stderr}`);
    assert.equal(r.stdout, '', `${opt} ${value}: no answers`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.ok(lines[0]!.includes(opt), `${opt} ${value}: ${lines[0]}`);
  }
  const ok = spawnSync(process.execPath, [bin, 'devices', 'qtest', '--acpi-pm', '0xb000', '--utc-offset', '-3600'], {
    input: 'inl 0xb008\n',
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(ok.stdout, 'OK 0x0000\n', ok.stderr);
});

test('`devices qtest` stops quietly when its reader goes away in the middle of a flood (EPIPE)', () => {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'timevisor.js');
  const script = 'irq_intercept_in ioapic\\noutb 0x43 0x34\\noutb 0x40 0x02\\noutb 0x40 0x00\\nclock_step 3000000000\\n';
  const r = spawnSync(
    'bash',
    ['-c', `printf '${script}' | '${process.execPath}' '${bin}' devices qtest | head -1; exit \${PIPESTATUS[1]}`],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  assert.equal(r.stdout, 'OK\n');
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
});
