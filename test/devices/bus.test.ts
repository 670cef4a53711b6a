// Port and MMIO buses: access splitting, unmapped ranges, overlap checks, and a few device corners that
// only show through the bus (x2APIC MSRs, HPET FSB delivery, PIT strobe modes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import {
  Hpet,
  LapicTimer,
  MmioBus,
  Pit,
  PortBus,
  type PortDevice,
  RecordingIrq,
  X2APIC_LVTT,
  X2APIC_TDCR,
  X2APIC_TMCCT,
  X2APIC_TMICT,
} from '../../src/devices/index.ts';

class Log implements PortDevice {
  writes: string[] = [];
  portRead(port: number, size: number): number {
    return size === 1 ? port & 0xff : 0xabcd;
  }
  portWrite(port: number, size: number, value: number): void {
    this.writes.push(`${port.toString(16)}/${size}=${value.toString(16)}`);
  }
}

test('port bus: wide accesses to a byte device split little-endian; unmapped ports read all ones and ignore writes', () => {
  const bus = new PortBus();
  const dev = new Log();
  bus.map(0x70, 2, dev, 1);
  bus.write(0x70, 2, 0x1234);
  assert.deepEqual(dev.writes, ['70/1=34', '71/1=12']);
  assert.equal(bus.read(0x70, 2), 0x7170);
  assert.equal(bus.read(0x71, 2), 0xff71, 'the byte past the device is unmapped');
  assert.equal(bus.read(0x300, 4), 0xffffffff);
  bus.write(0x300, 1, 0x55);
  assert.throws(() => bus.map(0x71, 1, dev), /already mapped/);
});

test('MMIO bus: accesses narrower than the region allows read 0 and are dropped; unmapped memory reads 0', () => {
  const engine = new Engine();
  const bus = new MmioBus();
  const hpet = new Hpet({ scheduler: engine, irqs: [] });
  bus.map(0xfed00000n, 0x400n, hpet, { min: 4, max: 8 });
  assert.equal(bus.read(0xfed00000n, 1), 0n);
  bus.write(0xfed00010n, 1, 1n);
  assert.equal(bus.read(0xfed00010n, 4), 0n);
  assert.equal(bus.read(0xfee00000n, 4), 0n);
  assert.throws(() => bus.map(0xfed00200n, 0x10n, hpet), /overlaps/);
});

test('x2APIC MSRs reach the same timer registers as the xAPIC page', () => {
  const engine = new Engine();
  const lapic = new LapicTimer({ scheduler: engine, irq: new RecordingIrq(), tscKhz: 1_000_000 });
  lapic.msrWrite(X2APIC_TDCR, 0xbn);
  lapic.msrWrite(X2APIC_LVTT, 0x30n);
  lapic.msrWrite(X2APIC_TMICT, 1000n);
  engine.run(250n);
  assert.equal(lapic.msrRead(X2APIC_TMCCT), 750n);
  assert.equal(lapic.msrRead(X2APIC_LVTT), 0x30n);
  assert.equal(lapic.msrRead(X2APIC_TMICT), 1000n);
});

test("HPET FSB (MSI) delivery writes the route register's data to its address instead of raising a line", () => {
  const engine = new Engine();
  const msi: [bigint, number][] = [];
  const irqs = Array.from({ length: 24 }, () => new RecordingIrq());
  const hpet = new Hpet({ scheduler: engine, irqs, msiWrite: (a, d) => msi.push([a, d]) });
  const wr = (o: number, v: bigint) => hpet.mmioWrite(o, 4, v);
  assert.equal(hpet.mmioRead(0x100, 4) & 0x8000n, 0x8000n, 'FSB_INT_DEL_CAP advertised');
  wr(0x110, 0x41n); // data
  wr(0x114, 0xfee00000n); // address
  hpet.mmioWrite(0x108, 8, 100n);
  wr(0x100, 0x4004n); // FSB_EN | ENABLE
  wr(0x010, 1n);
  engine.run(1_000n);
  assert.deepEqual(msi, [[0xfee00000n, 0x41]]);
  assert.equal(
    irqs.reduce((n, l) => n + l.raises, 0),
    0,
  );
});

test('PIT modes 4 and 5: OUT pulses high for exactly the tick at which the count expires', () => {
  const engine = new Engine();
  const pit = new Pit({ scheduler: engine, irq: new RecordingIrq() });
  const ticksNs = (t: bigint) => (t * 1_000_000_000n + 1_193_181n) / 1_193_182n;
  for (const ctrl of [0x78, 0x7a]) {
    // channel 1, lo/hi, mode 4 then mode 5
    const start = engine.now;
    pit.portWrite(0x43, 1, ctrl);
    pit.portWrite(0x41, 1, 100);
    pit.portWrite(0x41, 1, 0);
    engine.run(start + ticksNs(99n));
    assert.equal(pit.getOut(1), false);
    engine.run(start + ticksNs(100n));
    assert.equal(pit.getOut(1), true);
    engine.run(start + ticksNs(101n));
    assert.equal(pit.getOut(1), false);
  }
});
