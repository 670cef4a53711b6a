// Fuzz: 12,000 seeded random qtest lines, valid and malformed, fed to the qtest server. Nothing may throw,
// every command line gets exactly one answer (OK/FAIL/ERR, after any IRQ lines), the same seed gives the
// same output byte for byte, and a machine snapshot taken every 1,000 lines restores into a fresh machine
// with the same state. The work is a fixed count of lines, not a time budget.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { Prng } from '../../src/core/prng.ts';
import { PcMachine, type PcMachineOptions, type PcMachineState, QtestSession } from '../../src/devices/index.ts';

const LINES = 12_000;
const OPTS: PcMachineOptions = { rtcBaseSeconds: 1_600_000_000n, lostTickPolicy: 'slew' };

const pick = <T>(r: Prng, xs: readonly T[]): T => xs[r.int(xs.length)]!;
const hex = (v: number | bigint) => '0x' + v.toString(16);

const PORTS = [
  0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71, 0x600, 0x602, 0x604, 0x605, 0x606, 0x608, 0x60a, 0xcf8, 0xcfc, 0xcfd, 0xb008, 0x80,
];
const MMIO = [
  0xfed00000, 0xfed00004, 0xfed00010, 0xfed00020, 0xfed000f0, 0xfed000f4, 0xfed00100, 0xfed00108, 0xfed0010c, 0xfed00110, 0xfed00120,
  0xfed00128, 0xfed00140, 0xfed00148, 0xfed00160, 0xfed00168, 0xfed003fc, 0x1000, 0x2004, 0xfee00000,
];
const VALUES = [
  0, 1, 2, 0x30, 0x34, 0x36, 0xe2, 0xc2, 0x0a, 0x0b, 0x0c, 0x12, 0x26, 0x42, 0x86, 0xff, 0x601, 0x80000b40, 0x80000b80, 0xffffffff,
];

function value(r: Prng): string {
  switch (r.int(5)) {
    case 0:
      return hex(pick(r, VALUES));
    case 1:
      return String(r.int(256));
    case 2:
      return '0' + r.int(64).toString(8); // octal, as strtoul base 0 reads it
    case 3:
      return hex(Math.floor(r.float() * 2 ** 32));
    default:
      return hex((BigInt(Math.floor(r.float() * 2 ** 32)) << 32n) | BigInt(r.int(2 ** 30)));
  }
}

function validLine(r: Prng): string {
  const k = r.int(20);
  if (k < 5) return `${pick(r, ['outb', 'outw', 'outl'])} ${hex(pick(r, PORTS))} ${value(r)}`;
  if (k < 9) return `${pick(r, ['inb', 'inw', 'inl'])} ${hex(pick(r, PORTS))}`;
  if (k < 11) return `${pick(r, ['writeb', 'writew', 'writel', 'writeq'])} ${hex(pick(r, MMIO))} ${value(r)}`;
  if (k < 14) return `${pick(r, ['readb', 'readw', 'readl', 'readq'])} ${hex(pick(r, MMIO))}`;
  if (k < 17) {
    // Random programming easily sets a 1 MHz PIT or an 8 kHz RTC, so steps stay short (microseconds, now
    // and then milliseconds); a 2^63 ns step must be refused at once, and a bare clock_step goes to the
    // next deadline.
    const c = r.int(20);
    if (c === 0) return 'clock_step 9223372036854775807';
    if (c === 1) return 'clock_step';
    return `clock_step ${r.int(c < 4 ? 5_000_000 : 200_000)}`;
  }
  if (k === 17) return pick(r, ['endianness', 'irq_intercept_in ioapic', 'irq_intercept_out ioapic', 'irq_intercept_in /machine/nosuch']);
  if (k === 18) return `clock_set ${r.int(3) === 0 ? r.int(1000) : 'abc'}`;
  return pick(r, [
    `read 0x1000 ${1 + r.int(8)}`,
    `b64read 0x1000 ${1 + r.int(8)}`,
    'write 0x1000 2 0xbeef',
    'b64write 0x1000 3 AQID',
    'memset 0x1000 4 0x5a',
  ]);
}

function invalidLine(r: Prng): string {
  return pick(r, [
    '',
    ' ',
    'outb',
    'outb 0x70',
    'outb 0x10000 1',
    'inb zz',
    'inb -1',
    'outb 0x70 0x1g',
    'readl',
    'writeq 0xfed00000',
    'clock_step -5',
    'clock_step 99999999999999999999999',
    'clock_set 9223372036854775808',
    'read 0x1000 0',
    'read 0x1000 99999999',
    'write 0x1000 4',
    'memset 0x1000',
    'frobnicate 1 2 3',
    'OUTB 0x70 0',
    'inb  0x70',
    'inb 0x70 extra',
    'clock_step 08',
    '\u00e9\u00e9',
    'irq_intercept_in',
    'irq_intercept_in ioapic name',
  ]);
}

/** Feed the lines; returns the output's hash and the states snapshotted every 1,000 lines. */
function runFuzz(seed: number): { digest: string; answers: number; irqLines: number; snapshots: { at: number; state: PcMachineState }[] } {
  const r = new Prng(seed);
  const session = new QtestSession(OPTS);
  const hash = createHash('sha256');
  const snapshots: { at: number; state: PcMachineState }[] = [];
  let answers = 0;
  let irqLines = 0;
  for (let i = 1; i <= LINES; i++) {
    const line = r.int(4) === 0 ? invalidLine(r) : validLine(r);
    const out = session.handle(line);
    const irq = out.slice(0, -1);
    assert.ok(
      irq.every((l) => /^IRQ (raise|lower) \d+$/.test(l)),
      `line ${i} '${line}': only IRQ lines may precede the answer: ${out.slice(0, 3).join(' | ')}`,
    );
    assert.match(out.at(-1)!, /^(OK|FAIL|ERR)\b/, `line ${i} '${line}'`);
    answers++;
    irqLines += irq.length;
    hash.update(line + '\n');
    for (const l of out) hash.update(l + '\n');
    if (i % 1000 === 0) snapshots.push({ at: i, state: JSON.parse(JSON.stringify(session.machine.saveState())) as PcMachineState });
  }
  return { digest: hash.digest('hex'), answers, irqLines, snapshots };
}

test('fuzz: 12,000 random qtest lines never throw and get one answer each; the same seed gives the same bytes', () => {
  const a = runFuzz(17);
  assert.equal(a.answers, LINES);
  assert.ok(a.irqLines > 0, 'interception was switched on and IRQ lines were reported');
  const b = runFuzz(17);
  assert.equal(b.digest, a.digest);
});

test('fuzz: a machine snapshot taken every 1,000 random lines restores into a fresh machine with the same state', () => {
  const { snapshots } = runFuzz(23);
  assert.equal(snapshots.length, LINES / 1000);
  for (const { at, state } of snapshots) {
    const fresh = new PcMachine(OPTS);
    fresh.restore(state);
    const again = JSON.parse(JSON.stringify(fresh.saveState())) as PcMachineState;
    // hpet_post_load recomputes hpet_offset from the saved counter (whole 10 ns ticks), so the offset and
    // the armed comparators' expiry instants may move by less than one tick; everything else is exact
    // (while the HPET is halted the offset is unused: enabling it recomputes the offset from the counter).
    const phase = (a: string | null, b: string | null, what: string) => {
      assert.equal(a === null, b === null, what);
      if (a !== null && b !== null) assert.ok(BigInt(a) - BigInt(b) < 10n && BigInt(b) - BigInt(a) < 10n, `${what}: ${a} vs ${b}`);
    };
    if (BigInt(state.hpet.config) & 1n) phase(again.hpet.hpetOffset, state.hpet.hpetOffset, `hpetOffset after line ${at}`);
    again.hpet.timers.forEach((t, i) => phase(t.expires, state.hpet.timers[i]!.expires, `HPET timer ${i} expiry after line ${at}`));
    const exact = (m: PcMachineState) => ({
      ...m,
      hpet: { ...m.hpet, hpetOffset: '', timers: m.hpet.timers.map((t) => ({ ...t, expires: '' })) },
    });
    assert.deepEqual(exact(again), exact(state), `snapshot after line ${at}`);
  }
});
