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

test('PM_TMR counts at 3.579545 MHz and wraps at 24 bits (or 32 with TMR_VAL_EXT)', () => {
  const t = make();
  t.engine.run(1_000_000_000n);
  assert.equal(t.pm.portRead(0x608, 4), 3_579_545);
  t.engine.run(5_000_000_000n);
  assert.equal(t.pm.portRead(0x608, 4), 17_897_725 - 16_777_216);
  const u = make(32);
  u.engine.run(5_000_000_000n);
  assert.equal(u.pm.portRead(0x608, 4), 17_897_725);
  assert.equal(u.pm.portRead(0x608, 2), 17_897_725 & 0xffff);
});

test('TMR_STS is set when bit 23 toggles; with TMR_EN it raises the SCI; writing 1 clears both', () => {
  const t = make();
  t.pm.portWrite(0x602, 2, 0x1); // TMR_EN
  // 2^23 ticks = 2^23 * 1e9 / 3579545 = 2,343,484,437.27 ns: first ns with the bit set is 2,343,484,438
  t.engine.run(2_343_484_437n);
  assert.equal(t.pm.portRead(0x600, 2) & 1, 0);
  assert.equal(t.irq.level, false);
  t.engine.run(2_343_484_438n);
  assert.equal(t.irq.level, true);
  assert.equal(t.pm.portRead(0x600, 2) & 1, 1);
  t.pm.portWrite(0x600, 2, 1);
  assert.equal(t.pm.portRead(0x600, 2) & 1, 0);
  assert.equal(t.irq.level, false);
});

test('without TMR_EN the status is still latched but no SCI is raised', () => {
  const t = make();
  t.engine.run(3_000_000_000n);
  assert.equal(t.pm.portRead(0x600, 2) & 1, 1);
  assert.equal(t.irq.raises, 0);
});
