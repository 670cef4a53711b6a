// HPET: capabilities, configuration, main counter, comparators (one-shot, periodic, 32-bit wrap), status.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import { Hpet, type HpetOptions, RecordingIrq } from '../../src/devices/index.ts';

function make(opts: Pick<HpetOptions, 'cmp64Write' | 'periodicAdvance'> = {}) {
  const engine = new Engine();
  const irqs = Array.from({ length: 24 }, () => new RecordingIrq());
  const legacy: boolean[] = [];
  const hpet = new Hpet({ scheduler: engine, irqs, onLegacyRoute: (on) => legacy.push(on), ...opts });
  const rd = (off: number) => hpet.mmioRead(off, 4);
  const wr = (off: number, v: bigint) => hpet.mmioWrite(off, 4, v);
  const rd64 = (off: number) => hpet.mmioRead(off, 8);
  return { engine, irqs, hpet, rd, wr, rd64, legacy };
}

test('capabilities: vendor 8086, 64-bit counter, legacy capable, 3 timers, 10 ns period; timers report periodic+64-bit caps and routes', () => {
  const h = make();
  assert.equal(h.rd(0x000), 0x8086a201n);
  assert.equal(h.rd(0x004), 10_000_000n);
  assert.equal(h.rd64(0x000), 0x009896808086a201n);
  for (let t = 0; t < 3; t++) {
    assert.equal(h.rd(0x100 + 0x20 * t), 0x30n);
    assert.equal(h.rd(0x104 + 0x20 * t), 0x4n);
    assert.equal(h.rd64(0x108 + 0x20 * t), 0xffff_ffff_ffff_ffffn);
  }
});

test('configuration keeps only ENABLE_CNF and LEG_RT_CNF; ID is read-only', () => {
  const h = make();
  h.wr(0x010, 0xffff_fffcn);
  assert.equal(h.rd(0x010), 0n);
  h.wr(0x000, 0n);
  assert.equal(h.rd(0x000), 0x8086a201n);
  h.wr(0x010, 0x2n);
  assert.equal(h.rd(0x010), 0x2n);
  assert.deepEqual(h.legacy, [true]);
  h.wr(0x010, 0x0n);
  assert.deepEqual(h.legacy, [true, false]);
});

test('the main counter runs at 100 MHz only while enabled, holds while halted, and is writable while halted', () => {
  const h = make();
  h.engine.run(5_000n);
  assert.equal(h.rd64(0x0f0), 0n);
  h.wr(0x010, 1n);
  h.engine.run(6_000n);
  assert.equal(h.rd64(0x0f0), 100n);
  h.wr(0x010, 0n);
  h.engine.run(9_000n);
  assert.equal(h.rd64(0x0f0), 100n);
  h.wr(0x0f0, 0xffff_fff0n);
  h.wr(0x0f4, 0x1n);
  h.wr(0x010, 1n);
  h.engine.run(9_200n);
  assert.equal(h.rd(0x0f0), 0x0000_0004n, 'low half wrapped');
  assert.equal(h.rd(0x0f4), 0x2n, 'carry into the high half');
});

test('timer config write mask: writable bits 1-3, 6, 8-14; caps bits read back unchanged', () => {
  const h = make();
  h.wr(0x100, 0xffff_ffffn);
  assert.equal(h.rd(0x100), 0x7f4en | 0x30n);
  assert.equal(h.rd(0x104), 0x4n);
});

test('one-shot edge timer pulses its routed line once at the comparator match', () => {
  const h = make();
  h.wr(0x108, 500n);
  h.wr(0x10c, 0n);
  h.wr(0x100, 0x4n | (2n << 9n)); // enable, route to IRQ2
  h.wr(0x010, 1n);
  h.engine.run(4_999n);
  assert.equal(h.irqs[2]!.raises, 0);
  h.engine.run(5_000n);
  assert.equal(h.irqs[2]!.raises, 1);
  assert.equal(h.irqs[2]!.level, false, 'edge: raised then lowered');
  assert.equal(h.rd(0x020), 0n, 'edge interrupts leave no status');
  h.engine.run(1_000_000n);
  assert.equal(h.irqs[2]!.raises, 1);
});

test('level timer sets its status bit and holds the line until the bit is written with 1', () => {
  const h = make();
  h.wr(0x128, 100n);
  h.wr(0x12c, 0n);
  h.wr(0x120, 0x6n | (5n << 9n)); // timer 1: level, enable, IRQ5
  h.wr(0x010, 1n);
  h.engine.run(1_000n);
  assert.equal(h.rd(0x020), 0x2n);
  assert.equal(h.irqs[5]!.level, true);
  h.wr(0x020, 0x1n); // wrong bit: nothing
  assert.equal(h.rd(0x020), 0x2n);
  h.wr(0x020, 0x2n);
  assert.equal(h.rd(0x020), 0n);
  assert.equal(h.irqs[5]!.level, false);
});

test('periodic timer: with VAL_SET the first write sets comparator and period; the comparator advances by the period on each match (periodicAdvance reached)', () => {
  const h = make({ cmp64Write: 'atomic', periodicAdvance: 'reached' });
  h.wr(0x100, 0x4cn | (3n << 9n)); // periodic | enable | VAL_SET, IRQ3
  h.hpet.mmioWrite(0x108, 8, 1000n);
  assert.equal(h.rd(0x100) & 0x40n, 0n, 'VAL_SET clears itself');
  h.wr(0x010, 1n);
  h.engine.run(10_000n * 5n);
  assert.equal(h.irqs[3]!.raises, 5);
  assert.equal(h.rd64(0x108), 6000n);
  h.hpet.mmioWrite(0x108, 8, 2000n); // without VAL_SET: changes the period only
  assert.equal(h.rd64(0x108), 6000n);
});

test('64-bit comparator writes: QEMU 7.2 splits them (the high half of a VAL_SET write lands in the period); cmp64Write atomic writes both halves', () => {
  for (const mode of ['split', 'atomic'] as const) {
    const h = make({ cmp64Write: mode });
    h.wr(0x100, 0x48n); // periodic | VAL_SET
    h.hpet.mmioWrite(0x108, 8, 0x9_0000_0010n);
    assert.equal(h.rd64(0x108), mode === 'split' ? 0xffff_ffff_0000_0010n : 0x9_0000_0010n, mode);
    h.wr(0x100, 0x100n); // 32-bit one-shot: a split write's high half is not masked
    h.hpet.mmioWrite(0x108, 8, 0x1234_5678_9abc_def0n);
    assert.equal(h.rd64(0x108), mode === 'split' ? 0x1234_5678_9abc_def0n : 0x9abc_def0n, mode);
  }
});

test("QEMU 7.2's timer-id check leaves the registers of the timer past the last live: zero, never reset, writable", () => {
  const h = make();
  assert.equal(h.rd64(0x160), 0n);
  assert.equal(h.rd64(0x168), 0n);
  h.hpet.mmioWrite(0x168, 8, 0x10_0000_0020n);
  assert.equal(h.rd64(0x168), 0x10_0000_0020n);
  assert.equal(h.rd64(0x180), 0n, 'two past the last reads 0');
  h.hpet.mmioWrite(0x188, 8, 5n);
  assert.equal(h.rd64(0x188), 0n);
});

test("QEMU 7.2's periodic timer (default): a comparator hit exactly is advanced only once the counter is past it, so it fires again one tick later", () => {
  const h = make();
  h.wr(0x10c, 0n); // one-shot: the comparator's high half
  h.wr(0x100, 0x4cn | (3n << 9n)); // periodic | enable | VAL_SET, IRQ3
  h.wr(0x108, 1000n); // comparator and period 1000 ticks (10 µs)
  h.wr(0x10c, 0n); // VAL_SET consumed: the period's high half
  h.wr(0x010, 1n);
  h.engine.run(10_000n);
  assert.equal(h.irqs[3]!.raises, 1, 'at the comparator');
  assert.equal(h.rd(0x108), 1000n, 'counter == comparator: not past, not advanced (hpet_time_after)');
  h.engine.run(10_010n);
  assert.equal(h.irqs[3]!.raises, 2, 'hpet_calculate_diff gives 1 tick: fires again 10 ns later');
  assert.equal(h.rd(0x108), 2000n);
  h.engine.run(50_050n);
  assert.equal(h.irqs[3]!.raises, 10, 'twice per period');
});

test('32-bit periodic mode: the comparator wraps modulo 2^32 and the timer keeps firing across the counter wrap (periodicAdvance reached)', () => {
  const h = make({ periodicAdvance: 'reached' });
  h.wr(0x0f0, 0xffff_ff00n); // counter while halted
  h.wr(0x100, 0x14cn | (3n << 9n)); // 32-bit | periodic | enable | VAL_SET
  h.wr(0x108, 0xffff_ff80n);
  h.wr(0x010, 1n);
  h.wr(0x108, 0x200n); // period (VAL_SET consumed by the write above)
  h.engine.run(1_280n); // 0x80 ticks
  assert.equal(h.irqs[3]!.raises, 1);
  assert.equal(h.rd(0x108), 0x180n, '0xffffff80 + 0x200 wrapped to 32 bits');
  assert.equal(h.rd(0x10c), 0n);
  h.engine.run(1_280n + 5_119n);
  assert.equal(h.irqs[3]!.raises, 1);
  h.engine.run(1_280n + 5_120n);
  assert.equal(h.irqs[3]!.raises, 2);
  assert.equal(h.rd64(0x0f0), 0x1_0000_0180n, 'the main counter itself is 64-bit');
});

test('32-bit one-shot: an extra interrupt when the low 32 bits of the counter wrap, then the match', () => {
  const h = make();
  h.wr(0x0f0, 0xffff_ff00n);
  h.wr(0x100, 0x104n | (4n << 9n)); // 32-bit | enable, IRQ4
  h.wr(0x108, 0x100n);
  h.wr(0x010, 1n);
  h.engine.run(2_550n); // 0xff ticks: wrap point
  assert.equal(h.irqs[4]!.raises, 1);
  h.engine.run(5_119n);
  assert.equal(h.irqs[4]!.raises, 1);
  h.engine.run(5_120n); // 0x200 ticks: match
  assert.equal(h.irqs[4]!.raises, 2);
});

test('a 32-bit write to the low comparator half keeps the high half (0xffffffff after reset), so the comparator lies far ahead', () => {
  const h = make();
  h.wr(0x108, 1000n);
  assert.equal(h.rd64(0x108), 0xffff_ffff_0000_03e8n);
  h.wr(0x10c, 0n);
  assert.equal(h.rd64(0x108), 1000n);
});

test('a periodic comparator far behind the counter catches up in one step (no per-period loop)', () => {
  const h = make();
  h.wr(0x0f0, 0xffff_ff00n);
  h.wr(0x0f4, 0x7fffn);
  h.wr(0x100, 0x4cn | (3n << 9n));
  h.hpet.mmioWrite(0x108, 8, 10n); // comparator 10, counter near 2^47: 2^47/10 periods behind
  h.wr(0x010, 1n);
  h.engine.run(100n);
  assert.equal(h.irqs[3]!.raises >= 1, true);
  assert.ok(h.rd64(0x108) > h.rd64(0x0f0));
});

test('setting 32-bit mode truncates comparator and period; no interrupt while the HPET or the timer is disabled', () => {
  const h = make();
  h.wr(0x100, 0x100n);
  assert.equal(h.rd64(0x108), 0xffff_ffffn);
  h.wr(0x108, 100n);
  h.wr(0x100, 0x100n | (6n << 9n)); // timer disabled
  h.wr(0x010, 1n);
  h.engine.run(100_000n);
  assert.equal(h.irqs[6]!.raises, 0);
});

test('legacy replacement routes timer 0 to IRQ0 and timer 1 to IRQ8 whatever their route field says', () => {
  const h = make();
  h.wr(0x108, 10n);
  h.wr(0x100, 0x4n | (2n << 9n));
  h.wr(0x128, 20n);
  h.wr(0x120, 0x4n | (2n << 9n));
  h.wr(0x010, 0x3n);
  h.engine.run(1_000n);
  assert.equal(h.irqs[0]!.raises, 1);
  assert.equal(h.irqs[8]!.raises, 1);
  assert.equal(h.irqs[2]!.raises, 0);
});

test('saveState/restore continues the counter from the saved value and keeps armed comparators', () => {
  const a = make({ cmp64Write: 'atomic', periodicAdvance: 'reached' });
  a.wr(0x100, 0x4cn | (3n << 9n));
  a.hpet.mmioWrite(0x108, 8, 1000n);
  a.wr(0x010, 1n);
  a.engine.run(25_000n);
  const state = JSON.parse(JSON.stringify(a.hpet.saveState()));
  const b = make({ cmp64Write: 'atomic', periodicAdvance: 'reached' });
  b.engine.run(7_000_000n); // restored at a different time on the new host
  b.hpet.restore(state);
  assert.equal(b.rd64(0x0f0), 2500n);
  b.engine.run(7_000_000n + 5_000n);
  assert.equal(b.irqs[3]!.raises, 1);
  assert.equal(b.rd64(0x108), 4000n);
});
