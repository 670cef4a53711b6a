// KVM's in-kernel PIT (arch/x86/kvm/i8254.c): channel 0's hrtimer, reinject vs discard with pending
// ticks and acks, the min_timer_period_us clamp, kpit_elapsed counting, both reset states, snapshots.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import { RecordingIrq } from '../../src/devices/index.ts';
import { KvmPit, type KvmPitOptions } from '../../src/hypervisor/index.ts';

/** Smallest ns at which `ticks` PIT input ticks have elapsed: ceil(ticks * 1e9 / 1193182). */
const ticksNs = (ticks: bigint) => (ticks * 1_000_000_000n + 1_193_181n) / 1_193_182n;

function make(opts: KvmPitOptions) {
  const engine = new Engine();
  const irq = new RecordingIrq();
  const pit = new KvmPit({ scheduler: engine, irq, ...opts });
  const out = (p: number, v: number) => pit.portWrite(p, 1, v);
  const inp = (p: number) => pit.portRead(p, 1);
  const load = (ch: number, ctrl: number, count: number) => {
    out(0x43, (ch << 6) | ctrl);
    out(0x40 + ch, count & 0xff);
    out(0x40 + ch, count >> 8);
  };
  return { engine, irq, pit, out, inp, load };
}

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

test('KVM_CREATE_PIT2 alone (reset kvm): no channel 0 timer and a zero period, so channel 0 reads its count unmoved', () => {
  const p = make({ reinject: true, reset: 'kvm' });
  p.engine.run(1_000_000_000n);
  assert.equal(p.irq.raises, 0);
  p.out(0x43, 0x00);
  assert.equal(p.inp(0x40) | (p.inp(0x40) << 8), 0, '0x10000 - kpit_elapsed 0 = 0x10000, read as 0');
  assert.equal(p.pit.saveState().kvm!.expires, null);
});

test('saveState/restore round-trips the registers, the hrtimer and the pending ticks', () => {
  const a = make({ reinject: true });
  a.load(0, 0x34, 1193);
  a.engine.run(5_500_000n); // 5 ticks, one delivered, none acknowledged
  const state = JSON.parse(JSON.stringify(a.pit.saveState()));
  const b = make({ reinject: true });
  b.engine.run(5_500_000n);
  b.pit.restore(state);
  assert.deepEqual(b.pit.saveState(), a.pit.saveState());
  assert.equal(b.pit.pendingTicks, 5);
  for (const p of [a, b]) p.out(0x43, 0x00);
  assert.deepEqual([b.inp(0x40), b.inp(0x40)], [a.inp(0x40), a.inp(0x40)]);
  a.irq.reset();
  b.irq.reset();
  for (const p of [a, b]) {
    p.engine.run(10_000_000n);
    p.pit.ackIrq();
  }
  assert.equal(b.irq.raises, a.irq.raises);
  assert.equal(b.pit.pendingTicks, a.pit.pendingTicks);
});

test('KVM_PIT_FLAGS_HPET_LEGACY (the HPET took IRQ0): set, it stops a running channel 0 and no load restarts it; cleared, the count reloads', () => {
  const p = make({ reinject: false });
  p.load(0, 0x34, 1193); // period 999_847 ns
  p.engine.run(3_500_000n);
  assert.equal(p.irq.raises, 3);
  p.pit.setIrqDisabled(true); // kvm_pit_load_count with hpet_legacy_start: mode 0xff → destroy_pit_timer
  p.engine.run(10_000_000n);
  assert.equal(p.irq.raises, 3);
  p.load(0, 0x34, 1193); // create_pit_timer returns early while the flag is set
  p.engine.run(20_000_000n);
  assert.equal(p.irq.raises, 3);
  p.pit.setIrqDisabled(false); // the flag cleared: the count reloads (create_pit_timer) at 20 ms
  p.engine.run(20_000_000n + 999_847n);
  assert.equal(p.irq.raises, 4);
});

test('pit_load_count: mode 4 (Linux one-shot tick, 0x38) is a one-shot hrtimer, mode 5 starts none', () => {
  const p = make({ reinject: false });
  p.load(0, 0x38, 4772);
  p.engine.run(10_000_000n);
  assert.equal(p.irq.raises, 1); // at 4772·1e9/1193182 = 3,999,390 ns, once
  const q = make({ reinject: false });
  q.load(0, 0x3a, 4772);
  q.engine.run(10_000_000n);
  assert.equal(q.irq.raises, 0);
});
