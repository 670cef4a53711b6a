// LAPIC timer as KVM emulates it: divide values, count decay, one-shot, periodic + clamp, TSC deadline,
// masking, and the hardware/software timer switch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import { APIC_LVTT, APIC_TDCR, APIC_TMCCT, APIC_TMICT, LapicTimer, MSR_IA32_TSC_DEADLINE, RecordingIrq } from '../../src/devices/index.ts';

function make(opts: { hvTimer?: boolean; minTimerPeriodUs?: number } = {}) {
  const engine = new Engine();
  const irq = new RecordingIrq();
  const vectors: number[] = [];
  const lapic = new LapicTimer({ scheduler: engine, irq, tscKhz: 2_000_000, deliver: (v) => vectors.push(v), ...opts });
  return { engine, irq, lapic, vectors };
}

const ONESHOT = 0x00000;
const PERIODIC = 0x20000;
const TSCDEADLINE = 0x40000;

test('divide configuration: TDCR encodings 0,1,2,3,8,9,10,11 divide by 2,4,8,16,32,64,128,1', () => {
  const encodings: [number, number][] = [
    [0x0, 2],
    [0x1, 4],
    [0x2, 8],
    [0x3, 16],
    [0x8, 32],
    [0x9, 64],
    [0xa, 128],
    [0xb, 1],
  ];
  for (const [enc, div] of encodings) {
    const t = make();
    t.lapic.writeReg(APIC_TDCR, enc);
    assert.equal(t.lapic.divisor, div, `TDCR ${enc}`);
    assert.equal(t.lapic.readReg(APIC_TDCR), enc);
  }
  const t = make();
  t.lapic.writeReg(APIC_TDCR, 0xffff_ffff);
  assert.equal(t.lapic.readReg(APIC_TDCR), 0xb, 'only bits 0, 1 and 3 are kept');
});

test('current count decays at bus clock / divisor under each divide value and stops at 0 in one-shot mode', () => {
  for (const [enc, div] of [
    [0xb, 1n],
    [0x0, 2n],
    [0x1, 4n],
    [0x2, 8n],
    [0x3, 16n],
    [0x8, 32n],
    [0x9, 64n],
    [0xa, 128n],
  ] as const) {
    const t = make();
    t.lapic.writeReg(APIC_TDCR, enc);
    t.lapic.writeReg(APIC_LVTT, ONESHOT | 0x30);
    t.lapic.writeReg(APIC_TMICT, 1_000_000);
    t.engine.run(500n * div); // 500 bus-cycle periods of the divided clock (1 GHz bus)
    assert.equal(t.lapic.readReg(APIC_TMCCT), 999_500, `divisor ${div}`);
    t.engine.run(500n * div + 3n);
    assert.equal(t.lapic.readReg(APIC_TMCCT), div > 3n ? 999_499 : Number(999_500n - (3n + div - 1n) / div));
    t.engine.run(1_000_000n * div);
    assert.equal(t.lapic.readReg(APIC_TMCCT), 0);
    assert.deepEqual(t.vectors, [0x30]);
  }
});

test('at the very instant TMICT is written KVM reads TMCCT as 0 (remaining time modulo the period)', () => {
  const t = make();
  t.lapic.writeReg(APIC_LVTT, ONESHOT | 0x30);
  t.lapic.writeReg(APIC_TMICT, 1_000);
  assert.equal(t.lapic.readReg(APIC_TMCCT), 0);
  t.engine.run(1n);
  assert.equal(t.lapic.readReg(APIC_TMCCT), 999); // (2000 - 1) ns / divisor 2
});

test('one-shot fires once at TMICT * divisor ns; writing TMICT 0 stops the timer', () => {
  const t = make();
  t.lapic.writeReg(APIC_LVTT, ONESHOT | 0xef);
  t.lapic.writeReg(APIC_TDCR, 0xb);
  t.lapic.writeReg(APIC_TMICT, 10_000);
  t.engine.run(9_999n);
  assert.equal(t.vectors.length, 0);
  t.engine.run(10_000n);
  assert.deepEqual(t.vectors, [0xef]);
  t.engine.run(1_000_000n);
  assert.equal(t.vectors.length, 1);
  t.lapic.writeReg(APIC_TMICT, 10_000);
  t.lapic.writeReg(APIC_TMICT, 0);
  t.engine.run(2_000_000n);
  assert.equal(t.vectors.length, 1);
  assert.equal(t.lapic.readReg(APIC_TMCCT), 0);
});

test('periodic mode reloads; the current count wraps within the period', () => {
  const t = make();
  t.lapic.writeReg(APIC_LVTT, PERIODIC | 0x40);
  t.lapic.writeReg(APIC_TDCR, 0x0); // /2
  t.lapic.writeReg(APIC_TMICT, 500_000); // 1 ms
  t.engine.run(10_000_000n);
  assert.equal(t.vectors.length, 10);
  t.engine.run(10_250_000n);
  assert.equal(t.lapic.readReg(APIC_TMCCT), 375_000);
});

test('periodic periods below min_timer_period_us are clamped (200 µs by default)', () => {
  const t = make();
  t.lapic.writeReg(APIC_LVTT, PERIODIC | 0x40);
  t.lapic.writeReg(APIC_TDCR, 0xb);
  t.lapic.writeReg(APIC_TMICT, 1_000); // 1 µs requested
  t.engine.run(1_000_000n);
  assert.equal(t.vectors.length, 5);
  const u = make({ minTimerPeriodUs: 0 });
  u.lapic.writeReg(APIC_LVTT, PERIODIC | 0x40);
  u.lapic.writeReg(APIC_TDCR, 0xb);
  u.lapic.writeReg(APIC_TMICT, 10_000);
  u.engine.run(1_000_000n);
  assert.equal(u.vectors.length, 100);
});

test('a clamped periodic timer counts TMCCT down from the clamped period, so it can exceed TMICT (KVM apic_get_tmcct)', () => {
  const t = make();
  t.lapic.writeReg(APIC_LVTT, PERIODIC | 0x40);
  t.lapic.writeReg(APIC_TDCR, 0xb);
  t.lapic.writeReg(APIC_TMICT, 1_000);
  t.engine.run(1_000n);
  assert.equal(t.lapic.readReg(APIC_TMCCT), 199_000);
});

test('changing the divisor mid-count rescales the remaining time', () => {
  const t = make();
  t.lapic.writeReg(APIC_LVTT, ONESHOT | 0x40);
  t.lapic.writeReg(APIC_TDCR, 0xb); // /1
  t.lapic.writeReg(APIC_TMICT, 1_000);
  t.engine.run(400n);
  t.lapic.writeReg(APIC_TDCR, 0x0); // /2: 600 ns left become 1200
  t.engine.run(1_599n);
  assert.equal(t.vectors.length, 0);
  t.engine.run(1_600n);
  assert.equal(t.vectors.length, 1);
});

test('TSC-deadline: fires when the guest TSC reaches the MSR value, reads back until then, 0 after', () => {
  const t = make(); // 2 GHz TSC: 2 cycles per ns
  t.lapic.writeReg(APIC_LVTT, TSCDEADLINE | 0xec);
  t.lapic.writeReg(APIC_TMICT, 12345);
  assert.equal(t.lapic.readReg(APIC_TMICT), 0, 'TMICT writes are ignored in TSC-deadline mode');
  t.lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 20_000n);
  assert.equal(t.lapic.msrRead(MSR_IA32_TSC_DEADLINE), 20_000n);
  t.engine.run(9_999n);
  assert.equal(t.vectors.length, 0);
  t.engine.run(10_000n);
  assert.deepEqual(t.vectors, [0xec]);
  assert.equal(t.lapic.msrRead(MSR_IA32_TSC_DEADLINE), 0n);
});

test('TSC-deadline: writing 0 disarms, a deadline already past fires at once, and MSR writes outside the mode are ignored', () => {
  const t = make();
  t.lapic.writeReg(APIC_LVTT, TSCDEADLINE | 0xec);
  t.lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 20_000n);
  t.lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 0n);
  t.engine.run(1_000_000n);
  assert.equal(t.vectors.length, 0);
  t.lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 5n); // TSC is at 2,000,000
  assert.equal(t.vectors.length, 1);
  const u = make();
  u.lapic.writeReg(APIC_LVTT, ONESHOT | 0x31);
  u.lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 100n);
  assert.equal(u.lapic.msrRead(MSR_IA32_TSC_DEADLINE), 0n);
  u.engine.run(1_000n);
  assert.equal(u.vectors.length, 0);
});

test('leaving TSC-deadline mode disarms the deadline and clears TMICT', () => {
  const t = make();
  t.lapic.writeReg(APIC_LVTT, TSCDEADLINE | 0xec);
  t.lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 20_000n);
  t.lapic.writeReg(APIC_LVTT, ONESHOT | 0xec);
  t.engine.run(1_000_000n);
  assert.equal(t.vectors.length, 0);
});

test('a masked LVT timer expires (count reaches 0) without delivering', () => {
  const t = make();
  t.lapic.writeReg(APIC_LVTT, 0x10000 | 0x30);
  t.lapic.writeReg(APIC_TMICT, 1_000);
  t.engine.run(10_000n);
  assert.equal(t.vectors.length, 0);
  assert.equal(t.lapic.stats.masked, 1);
  assert.equal(t.lapic.readReg(APIC_TMCCT), 0);
});

test('hv timer: used while running, moved to a software hrtimer when the vCPU halts, fires on time either way', () => {
  const t = make({ hvTimer: true });
  t.lapic.writeReg(APIC_LVTT, TSCDEADLINE | 0xec);
  t.lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 20_000n); // 10 µs
  assert.equal(t.lapic.usingHvTimer, true);
  t.engine.run(2_000n);
  t.lapic.setRunState('halted');
  assert.equal(t.lapic.usingHvTimer, false);
  t.engine.run(10_000n);
  assert.equal(t.vectors.length, 1);
  assert.equal(t.lapic.stats.sw, 1);
  t.lapic.setRunState('running');
  t.lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 40_000n);
  t.engine.run(20_000n);
  assert.equal(t.lapic.stats.hv, 1);
});

test('hv timer on a preempted vCPU cannot fire until the vCPU re-enters the guest: the interrupt arrives late', () => {
  const t = make({ hvTimer: true });
  t.lapic.writeReg(APIC_LVTT, ONESHOT | 0x40);
  t.lapic.writeReg(APIC_TDCR, 0xb);
  t.lapic.writeReg(APIC_TMICT, 10_000);
  t.lapic.setRunState('preempted');
  t.engine.run(50_000n);
  assert.equal(t.vectors.length, 0);
  t.lapic.setRunState('running');
  assert.equal(t.vectors.length, 1, 'delivered at the next VM entry, 40 µs late');
  const u = make({ hvTimer: false });
  u.lapic.writeReg(APIC_LVTT, ONESHOT | 0x40);
  u.lapic.writeReg(APIC_TDCR, 0xb);
  u.lapic.writeReg(APIC_TMICT, 10_000);
  u.lapic.setRunState('preempted');
  u.engine.run(10_000n);
  assert.equal(u.vectors.length, 1, 'the software hrtimer fires on time');
});

test('saveState/restore keeps mode, counts and the armed expiry', () => {
  const a = make();
  a.lapic.writeReg(APIC_LVTT, PERIODIC | 0x40);
  a.lapic.writeReg(APIC_TMICT, 500_000);
  a.engine.run(2_300_000n);
  const s = JSON.parse(JSON.stringify(a.lapic.saveState()));
  const b = make();
  b.engine.run(2_300_000n);
  b.lapic.restore(s);
  assert.equal(b.lapic.readReg(APIC_TMCCT), a.lapic.readReg(APIC_TMCCT));
  a.engine.run(10_000_000n);
  b.engine.run(10_000_000n);
  assert.equal(b.vectors.length + 2, a.vectors.length);
});
