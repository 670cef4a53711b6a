// ACPI PM1a block and PM timer as QEMU's hw/acpi/core.c implements them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import { AcpiPmTimer, RecordingIrq } from '../../src/devices/index.ts';

function make(bits?: 24 | 32) {
  const engine = new Engine();
  const irq = new RecordingIrq();
  const pm = new AcpiPmTimer({ scheduler: engine, irq, base: 0x600, ...(bits ? { bits } : {}) });
  return { engine, irq, pm };
}

// 2^23 ticks = 2^23 * 1e9 / 3579545 ns = 2,343,484,437.27 ns; 2^24 ticks = 4,686,968,874.53 ns
const BIT23_NS = 2_343_484_438n;
const BIT24_NS = 4_686_968_875n;

test('PM_TMR counts at 3.579545 MHz and wraps at 24 bits (or 32 with TMR_VAL_EXT); byte and word reads see its low bytes', () => {
  const t = make();
  t.engine.run(1_000_000_000n);
  assert.equal(t.pm.portRead(0x608, 4), 3_579_545);
  assert.equal(t.pm.portRead(0x608, 1), 3_579_545 & 0xff);
  // QEMU's memory core widens a byte read at +9 to the handler's 4 bytes at the same address, and the
  // handler ignores the address: the low byte again (access_with_adjusted_size, acpi_pm_tmr_read)
  assert.equal(t.pm.portRead(0x609, 1), 3_579_545 & 0xff);
  assert.equal(t.pm.portRead(0x60a, 2), 3_579_545 & 0xffff);
  assert.equal(t.pm.portRead(0x608, 2), 3_579_545 & 0xffff);
  t.engine.run(5_000_000_000n);
  assert.equal(t.pm.portRead(0x608, 4), 17_897_725 - 16_777_216);
  const u = make(32);
  u.engine.run(5_000_000_000n);
  assert.equal(u.pm.portRead(0x608, 4), 17_897_725);
});

test('TMR_STS reads set after reset (overflow_time 0); clearing it moves the overflow to the next toggle of bit 23', () => {
  const t = make();
  assert.equal(t.pm.portRead(0x600, 2), 1);
  t.pm.portWrite(0x600, 2, 1);
  assert.equal(t.pm.portRead(0x600, 2), 0);
  t.engine.run(BIT23_NS - 1n);
  assert.equal(t.pm.portRead(0x600, 2), 0);
  t.engine.run(BIT23_NS);
  assert.equal(t.pm.portRead(0x600, 2), 1);
  assert.equal(t.irq.raises, 0, 'no SCI without TMR_EN');
});

test('with TMR_EN the SCI rises at the overflow and falls when TMR_STS is written with 1; the next comes at bit 24', () => {
  const t = make();
  t.pm.portWrite(0x600, 2, 1);
  t.pm.portWrite(0x602, 2, 1);
  assert.equal(t.pm.portRead(0x602, 2), 1);
  t.engine.run(BIT23_NS - 1n);
  assert.equal(t.irq.level, false);
  t.engine.run(BIT23_NS);
  assert.equal(t.irq.level, true);
  t.pm.portWrite(0x600, 2, 1);
  assert.equal(t.irq.level, false);
  t.engine.run(BIT24_NS - 1n);
  assert.equal(t.irq.level, false);
  t.engine.run(BIT24_NS);
  assert.equal(t.irq.level, true);
});

test('enabling TMR_EN while TMR_STS is still set raises the SCI at once', () => {
  const t = make();
  t.pm.portWrite(0x602, 2, 1);
  assert.equal(t.irq.level, true);
});

test('PM1_CNT stores what is written except SLP_EN; 32-bit reads at the base return STS | EN << 16', () => {
  const t = make();
  t.pm.portWrite(0x604, 2, 0x2001 | (5 << 10));
  assert.equal(t.pm.portRead(0x604, 2), 0x0001 | (5 << 10));
  t.pm.portWrite(0x600, 2, 1);
  t.pm.portWrite(0x602, 2, 0x0120);
  assert.equal(t.pm.portRead(0x600, 4), 0x0120 << 16);
});

test('saveState/restore keeps status, enables and the overflow point', () => {
  const a = make();
  a.pm.portWrite(0x600, 2, 1);
  a.pm.portWrite(0x602, 2, 1);
  a.engine.run(1_000_000_000n);
  const s = JSON.parse(JSON.stringify(a.pm.saveState()));
  const b = make();
  b.engine.run(1_000_000_000n);
  b.pm.restore(s);
  b.engine.run(BIT23_NS);
  assert.equal(b.irq.level, true);
  assert.equal(b.pm.portRead(0x600, 2), 1);
});
