// i8254 PIT: read-back status, access modes, latching, counting per mode, port 0x61, QEMU and KVM IRQ0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import { Pit, RecordingIrq, SpeakerPort } from '../../src/devices/index.ts';

/** Smallest ns at which `ticks` PIT input ticks have elapsed: ceil(ticks * 1e9 / 1193182). */
const ticksNs = (ticks: bigint) => (ticks * 1_000_000_000n + 1_193_181n) / 1_193_182n;

function make(kvm?: { reinject: boolean; minTimerPeriodUs?: number }) {
  const engine = new Engine();
  const irq = new RecordingIrq();
  const pit = new Pit({ scheduler: engine, irq, ...(kvm ? { kvm } : {}) });
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

test('KVM reinject: missed ticks are counted and delivered one per acknowledgement', () => {
  const p = make({ reinject: true });
  p.load(0, 0x34, 1193); // period 999_847 ns
  p.engine.run(10_000_000n); // 10 ticks, guest never acknowledges
  assert.equal(p.irq.raises, 1);
  assert.equal(p.pit.pendingTicks, 10);
  p.pit.ackIrq(); // EOI of the first: the next pending tick goes in at once
  assert.equal(p.irq.raises, 2);
  for (let i = 0; i < 8; i++) p.pit.ackIrq();
  assert.equal(p.irq.raises, 10);
  p.pit.ackIrq();
  assert.equal(p.irq.raises, 10, 'nothing left to reinject');
});

test('KVM: unmasking IRQ0 drops the ticks waiting for reinjection (pit_mask_notifier)', () => {
  const p = make({ reinject: true });
  p.load(0, 0x34, 1193);
  p.engine.run(10_000_000n);
  assert.equal(p.pit.pendingTicks, 10);
  p.pit.irqMaskChanged(true);
  assert.equal(p.pit.pendingTicks, 10);
  p.pit.irqMaskChanged(false);
  assert.equal(p.pit.pendingTicks, 0);
  p.engine.run(11_000_000n);
  assert.equal(p.irq.raises, 2, 'the next tick injects at once: irq_ack was reset too');
});

test('KVM: channel 0 runs its reset-time 18.2 Hz periodic timer (mode 3, count 0x10000) until reprogrammed', () => {
  const p = make({ reinject: false });
  p.engine.run(1_000_000_000n);
  assert.equal(p.irq.raises, 18); // 65536 / 1193182 s = 54.925 ms per tick
});

test('KVM discard: every tick injects whether or not the last was acknowledged', () => {
  const p = make({ reinject: false });
  p.load(0, 0x34, 1193);
  p.engine.run(10_000_000n);
  assert.equal(p.irq.raises, 10);
  assert.equal(p.pit.pendingTicks, 0);
});

test('KVM clamps a periodic channel 0 to min_timer_period_us; the first expiry still uses the requested interval', () => {
  const p = make({ reinject: false });
  p.load(0, 0x34, 100); // 83_809 ns requested
  p.engine.run(1_000_000n);
  // expiries at 83_809 + k * 200_000: 83_809, 283_809, 483_809, 683_809, 883_809
  assert.equal(p.irq.raises, 5);
  assert.equal(p.pit.stats.clamped, 1);
  const q = make({ reinject: false, minTimerPeriodUs: 50 });
  q.load(0, 0x34, 100);
  q.engine.run(1_000_000n);
  assert.equal(q.irq.raises, 11); // 83_809 * k <= 1 ms
});

test('KVM one-shot (mode 0) fires once; channel 0 counts down from the hrtimer and wraps past zero (__kpit_elapsed)', () => {
  const p = make({ reinject: true });
  p.load(0, 0x30, 1000);
  p.engine.run(ticksNs(400n));
  p.out(0x43, 0x00);
  assert.equal(p.inp(0x40) | (p.inp(0x40) << 8), 600);
  p.engine.run(10_000_000n);
  assert.equal(p.irq.raises, 1);
  // 10 ms = 11931.8 ticks after the load: 1000 - 11931 wrapped to 16 bits
  p.out(0x43, 0x00);
  assert.equal(p.inp(0x40) | (p.inp(0x40) << 8), (1000 - 11931) & 0xffff);
});

test('KVM periodic channel 0 reads count against the clamped period', () => {
  const p = make({ reinject: false });
  p.load(0, 0x34, 100); // 83,809 ns requested, period clamped to 200 µs
  p.engine.run(83_809n + 100_000n); // 100 µs after the first expiry
  p.out(0x43, 0x00);
  // elapsed = 200,000 - (283,809 - 183,809) = 100,000 ns = 119 ticks; mode 2: 100 - 119 % 100
  assert.equal(p.inp(0x40) | (p.inp(0x40) << 8), 81);
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
