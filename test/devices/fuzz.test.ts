// Fuzz: long seeded random sequences of port, MMIO and MSR accesses with random time steps. Nothing
// may throw, each device's invariants must hold after every step, and a snapshot taken at any point
// must restore into a fresh machine that then reads the same registers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import { Prng } from '../../src/core/prng.ts';
import {
  APIC_LVTT,
  APIC_TDCR,
  APIC_TMCCT,
  APIC_TMICT,
  LapicTimer,
  MSR_IA32_TSC_DEADLINE,
  PcMachine,
  RecordingIrq,
} from '../../src/devices/index.ts';

const PORTS = [0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71, 0x600, 0x602, 0x604, 0x608, 0xcf8, 0xcfc, 0xcfd];
const HPET_OFFSETS = [
  0x0, 0x4, 0x10, 0x14, 0x20, 0xf0, 0xf4, 0x100, 0x104, 0x108, 0x10c, 0x110, 0x120, 0x128, 0x12c, 0x140, 0x148, 0x14c, 0x160, 0x3fc,
];

function machine() {
  return new PcMachine({ rtcBaseSeconds: 1_600_000_000n, lostTickPolicy: 'slew', acpiPmBase: 0x600 });
}

function pick<T>(r: Prng, xs: readonly T[]): T {
  return xs[r.int(xs.length)]!;
}

function randomValue(r: Prng): number {
  switch (r.int(4)) {
    case 0:
      return r.int(256);
    case 1:
      return pick(
        r,
        [
          0x00, 0xff, 0x80, 0x7f, 0x30, 0x34, 0x36, 0xe2, 0xc2, 0x0a, 0x0b, 0x0c, 0x26, 0x42, 0x12, 0x86, 0x80000b40, 0x80000b80, 0x601,
          0x41, 0x1,
        ],
      );
    case 2:
      return r.int(0x10000);
    default:
      return Math.floor(r.float() * 2 ** 32) >>> 0;
  }
}

function step(m: PcMachine, r: Prng): void {
  const k = r.int(10);
  if (k < 4) {
    const size = pick(r, [1, 1, 1, 2, 4] as const);
    m.ports.write(pick(r, PORTS), size, randomValue(r));
  } else if (k < 6) {
    m.ports.read(pick(r, PORTS), pick(r, [1, 1, 2, 4] as const));
  } else if (k < 7) {
    const size = pick(r, [4, 4, 8, 1] as const);
    let v = BigInt(randomValue(r));
    if (size === 8) v = (v << 32n) | BigInt(randomValue(r));
    m.mmio.write(0xfed00000n + BigInt(pick(r, HPET_OFFSETS)), size, v);
  } else if (k < 8) {
    m.mmio.read(0xfed00000n + BigInt(pick(r, HPET_OFFSETS)), pick(r, [4, 8, 2] as const));
  } else {
    // Time moves: mostly microseconds, sometimes tens of milliseconds. Random programming easily sets a
    // 1 MHz PIT or 8 kHz RTC rate, so seconds-long steps would cost millions of events each.
    const dt = r.int(8) === 0 ? BigInt(r.int(50_000_000)) : BigInt(r.int(200_000));
    m.runUntil(m.now + dt + 1n);
  }
}

function checkInvariants(m: PcMachine, lastCounter: { v: bigint; enabled: boolean }): void {
  const rd = (i: number) => (m.ports.write(0x70, 1, i), m.ports.read(0x71, 1));
  assert.equal(rd(0x0d), 0x80, 'RTC register D reads VRT only');
  const c = m.rtc.saveState().cmos[0x0c]!;
  assert.equal(c & 0x0f, 0, 'RTC register C low nibble is always 0');
  assert.ok(m.rtc.coalescedCount >= 0);
  const cfg = m.mmio.read(0xfed00010n, 4);
  assert.equal(cfg & ~3n, 0n, 'HPET config holds only ENABLE and LEG_RT');
  assert.equal(m.mmio.read(0xfed00000n, 4), 0x8086a201n, 'HPET capabilities are constant');
  // timer 3 is QEMU 7.2's live register block past the last timer: it can latch a level interrupt too
  assert.equal(m.mmio.read(0xfed00020n, 4) & ~0xfn, 0n, 'HPET status has bits only for timers 0-3');
  const counter = m.hpet.counter();
  const enabled = (cfg & 1n) === 1n;
  if (enabled && lastCounter.enabled) assert.ok(counter >= lastCounter.v, 'HPET counter never goes back while enabled');
  lastCounter.v = counter;
  lastCounter.enabled = enabled;
  for (let ch = 0; ch < 3; ch++) {
    const st = m.pit.saveState().channels[ch]!;
    assert.ok(st.count >= 1 && st.count <= 0x10000, 'PIT count in 1..0x10000');
    assert.ok(st.mode >= 0 && st.mode <= 7);
  }
  const pm = m.acpiPm!.counter();
  assert.ok(pm >= 0 && pm < 2 ** 24, 'PM timer is 24 bits');
}

test('fuzz: 20,000 random port/MMIO accesses and time steps on the pc machine never throw and keep invariants', () => {
  for (const seed of [1, 2, 3, 4]) {
    const r = new Prng(seed);
    const m = machine();
    const last = { v: 0n, enabled: false };
    for (let i = 0; i < 5_000; i++) {
      step(m, r);
      if (i % 50 === 0) checkInvariants(m, last);
    }
    checkInvariants(m, last);
  }
});

test('fuzz: a snapshot taken mid-sequence restores into a fresh machine with identical state', () => {
  const r = new Prng(42);
  const m = machine();
  for (let i = 0; i < 3_000; i++) step(m, r);
  const saved = JSON.parse(JSON.stringify(m.saveState()));
  const n = machine();
  n.restore(saved);
  const again = JSON.parse(JSON.stringify(n.saveState()));
  // hpet_post_load recomputes hpet_offset from the saved counter, dropping the sub-10 ns phase
  assert.equal(n.hpet.counter(), m.hpet.counter());
  delete again.hpet.hpetOffset;
  delete saved.hpet.hpetOffset;
  assert.deepEqual(again, saved);
});

test('fuzz: random LAPIC timer register and TSC-deadline writes keep TMCCT within TMICT and never throw', () => {
  const r = new Prng(7);
  const engine = new Engine();
  const irq = new RecordingIrq();
  const lapic = new LapicTimer({ scheduler: engine, irq, tscKhz: 2_596_136, hvTimer: true });
  for (let i = 0; i < 20_000; i++) {
    const k = r.int(8);
    if (k === 0) lapic.writeReg(APIC_LVTT, pick(r, [0x0, 0x20000, 0x40000, 0x60000]) | r.int(256) | (r.int(2) << 16));
    else if (k === 1) lapic.writeReg(APIC_TMICT, r.int(4) === 0 ? Math.floor(r.float() * 2 ** 32) : r.int(100_000));
    else if (k === 2) lapic.writeReg(APIC_TDCR, r.int(16));
    else if (k === 3)
      lapic.msrWrite(
        MSR_IA32_TSC_DEADLINE,
        r.int(3) === 0 ? 0n : (engine.now * 2_596_136n) / 1_000_000n + BigInt(r.int(5_000_000)) - 100_000n,
      );
    else if (k === 4) lapic.setRunState(pick(r, ['running', 'halted', 'preempted'] as const));
    else engine.run(engine.now + BigInt(r.int(1_000_000)));
    // TMCCT counts down from TMICT, except that a periodic timer clamped to min_timer_period_us
    // (200 µs) counts down from the clamped period, as KVM's apic_get_tmcct does
    const tmcct = lapic.readReg(APIC_TMCCT);
    const tmict = lapic.readReg(APIC_TMICT);
    const bound = Math.max(tmict, Math.floor(200_000 / lapic.divisor));
    assert.ok(tmcct <= bound, `TMCCT ${tmcct} <= max(TMICT ${tmict}, 200 µs / ${lapic.divisor})`);
    assert.equal(lapic.readReg(APIC_TDCR) & ~0xb, 0);
  }
  assert.ok(lapic.stats.delivered + lapic.stats.masked > 0);
});
