// i8254 PIT: read-back status, access modes, latching, counting per mode, port 0x61, QEMU's IRQ0.
// KVM's in-kernel PIT (the same counter with KVM's hrtimer) is tested in test/hypervisor/kvm-pit.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import { Pit, RecordingIrq, SpeakerPort } from '../../src/devices/index.ts';

/** Smallest ns at which `ticks` PIT input ticks have elapsed: ceil(ticks * 1e9 / 1193182). */
const ticksNs = (ticks: bigint) => (ticks * 1_000_000_000n + 1_193_181n) / 1_193_182n;

function make() {
  const engine = new Engine();
  const irq = new RecordingIrq();
  const pit = new Pit({ scheduler: engine, irq });
  const out = (p: number, v: number) => pit.portWrite(p, 1, v);
  const inp = (p: number) => pit.portRead(p, 1);
  const status = (ch: number) => (out(0x43, 0xe0 | (2 << ch)), inp(0x40 + ch));
  const load = (ch: number, ctrl: number, count: number) => {
    out(0x43, (ch << 6) | ctrl);
    out(0x40 + ch, count & 0xff);
    out(0x40 + ch, count >> 8);
  };
  return { engine, irq, pit, out, inp, status, load };
}

test('read-back status after each mode/access combination: OUT, access, mode and BCD bits (null count stays 0 as in QEMU)', () => {
  // OUT right after reset (count 0x10000 loaded at t=0, d=0): mode 0 low, 1 high, 2 low, 3 high, 4 low, 5 low
  const outAtZero = [0, 1, 0, 1, 0, 0];
  for (let mode = 0; mode < 6; mode++) {
    for (let access = 1; access <= 3; access++) {
      for (const bcd of [0, 1]) {
        const p = make();
        p.out(0x43, (1 << 6) | (access << 4) | (mode << 1) | bcd); // channel 1
        const expected = (outAtZero[mode]! << 7) | (access << 4) | (mode << 1) | bcd;
        assert.equal(p.status(1), expected, `mode ${mode} access ${access} bcd ${bcd}`);
      }
    }
  }
});

test('a latched status is returned once, before any latched count, and is not overwritten by a second read-back', () => {
  const p = make();
  p.load(0, 0x34, 0x1234); // mode 2, lo/hi
  p.out(0x43, 0xc2); // latch count and status of channel 0
  p.out(0x43, 0xe2); // status again: ignored while one is latched
  assert.equal(p.inp(0x40), 0x34);
  assert.equal(p.inp(0x40), 0x34); // count low (0x1234 - 0)
  assert.equal(p.inp(0x40), 0x12);
});

test('counter latch freezes the value until both bytes are read', () => {
  const p = make();
  p.load(0, 0x34, 0x1234);
  p.engine.run(ticksNs(100n));
  p.out(0x43, 0x00); // latch channel 0
  p.engine.run(ticksNs(500n));
  assert.equal(p.inp(0x40) | (p.inp(0x40) << 8), 0x1234 - 100);
  assert.equal(p.inp(0x40) | (p.inp(0x40) << 8), 0x1234 - 500, 'live count after the latch is consumed');
});

test('LSB-only and MSB-only access load and read a single byte', () => {
  const p = make();
  p.out(0x43, 0x14); // ch0 LSB only, mode 2
  p.out(0x40, 0x50);
  assert.equal(p.inp(0x40), 0x50);
  p.out(0x43, 0x24); // MSB only
  p.out(0x40, 0x12);
  assert.equal(p.inp(0x40), 0x12);
  p.out(0x43, 0x34);
  p.out(0x40, 0x00);
  p.out(0x40, 0x00); // 0 means 0x10000
  assert.equal(p.inp(0x40), 0x00);
  assert.equal(p.inp(0x40), 0x00);
});

test('mode 0 counts down once and OUT rises at terminal count; modes 2 and 3 reload; mode 3 counts by two', () => {
  const p = make();
  p.load(0, 0x30, 1000); // mode 0
  p.engine.run(ticksNs(999n));
  assert.equal(p.pit.getOut(0), false);
  p.engine.run(ticksNs(1000n));
  assert.equal(p.pit.getOut(0), true);
  p.engine.run(ticksNs(1010n));
  p.out(0x43, 0x00);
  assert.equal(p.inp(0x40) | (p.inp(0x40) << 8), 0x10000 - 10, 'mode 0 wraps past zero');

  const q = make();
  q.load(1, 0x34, 1000); // mode 2
  q.engine.run(ticksNs(2300n));
  q.out(0x43, 0x40);
  assert.equal(q.inp(0x41) | (q.inp(0x41) << 8), 1000 - 300);

  const r = make();
  r.load(1, 0x36, 1000); // mode 3
  r.engine.run(ticksNs(100n));
  r.out(0x43, 0x40);
  assert.equal(r.inp(0x41) | (r.inp(0x41) << 8), 800);
  assert.equal(r.pit.getOut(1), true, 'first half period high');
  r.engine.run(ticksNs(600n));
  assert.equal(r.pit.getOut(1), false, 'second half low');
});

test('QEMU userspace IRQ0 follows OUT: mode 0 raises at terminal count, mode 2 gives one edge per period', () => {
  const p = make();
  p.load(0, 0x30, 1000);
  p.engine.run(ticksNs(1000n) - 1n);
  assert.equal(p.irq.level, false);
  p.engine.run(ticksNs(1000n));
  assert.equal(p.irq.level, true);

  const q = make();
  q.load(0, 0x34, 1193); // ~1 kHz
  q.engine.run(10_000_000n);
  assert.equal(q.irq.raises, 10);
});

test('port 0x61: bit 0 gates channel 2, bit 1 is speaker data, bit 4 toggles per read, bit 5 is channel 2 OUT', () => {
  const p = make();
  const spk = new SpeakerPort(p.pit);
  assert.equal(spk.portRead() & 0x01, 0, 'gate 2 is low after reset');
  spk.portWrite(0x61, 1, 0x03);
  p.load(2, 0x30, 100); // mode 0
  const a = spk.portRead();
  const b = spk.portRead();
  assert.equal(a & 0x03, 0x03);
  assert.equal((a ^ b) & 0x10, 0x10, 'refresh bit toggles');
  assert.equal(a & 0x20, 0);
  p.engine.run(ticksNs(100n));
  assert.equal(spk.portRead() & 0x20, 0x20);
});

test('mode 1: a rising gate edge restarts the count', () => {
  const p = make();
  p.load(2, 0x32, 1000); // ch2 mode 1
  p.engine.run(ticksNs(400n));
  p.pit.setGate(2, true);
  p.engine.run(ticksNs(400n) + ticksNs(100n));
  p.out(0x43, 0x80);
  assert.equal(p.inp(0x42) | (p.inp(0x42) << 8), 1000 - 100);
});

test('saveState/restore round-trips channel state and the armed IRQ0 timer', () => {
  const a = make();
  a.load(0, 0x34, 1193);
  a.load(2, 0xb6, 0x533);
  a.engine.run(2_500_000n);
  const state = JSON.parse(JSON.stringify(a.pit.saveState()));
  const b = make();
  b.engine.run(2_500_000n);
  b.pit.restore(state);
  for (const p of [a, b]) p.out(0x43, 0xc6); // latch count+status of channels 0 and 1
  assert.deepEqual([b.inp(0x40), b.inp(0x40), b.inp(0x40)], [a.inp(0x40), a.inp(0x40), a.inp(0x40)]);
  a.irq.reset();
  b.irq.reset();
  a.engine.run(10_000_000n);
  b.engine.run(10_000_000n);
  assert.equal(b.irq.raises, a.irq.raises);
});
