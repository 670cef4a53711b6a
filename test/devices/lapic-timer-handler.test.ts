// The LAPIC timer when the guest's handler runs inside the delivery (as the simulation's guest does: its
// interrupt handler is called from deliver and writes the next TSC deadline there). KVM clears a one-shot
// deadline and drops the hv timer before the guest can run again; a deadline the handler writes must survive.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import { APIC_LVTT, LapicTimer, MSR_IA32_TSC_DEADLINE, RecordingIrq } from '../../src/devices/index.ts';

const TSCDEADLINE = 0x40000;

/** A 2 GHz TSC-deadline timer whose handler arms the next deadline `step` cycles after the one that fired. */
function rearming(hvTimer: boolean, step: bigint) {
  const engine = new Engine();
  const expired: bigint[] = [];
  let lapic: LapicTimer | null = null;
  lapic = new LapicTimer({
    scheduler: engine,
    irq: new RecordingIrq(),
    tscKhz: 2_000_000,
    hvTimer,
    deliver: (_v, deadline) => {
      expired.push(deadline);
      if (expired.length < 3) lapic!.msrWrite(MSR_IA32_TSC_DEADLINE, deadline + step);
    },
  });
  lapic.writeReg(APIC_LVTT, TSCDEADLINE | 0xec);
  return { engine, lapic, expired };
}

test('TSC-deadline: a deadline the handler writes during delivery stays armed, reads back, and is what the next expiry reports', () => {
  const t = rearming(false, 2_000n);
  t.lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 20_000n); // 10 µs
  t.engine.run(10_000n);
  assert.deepEqual(t.expired, [20_000n]);
  // cleared after delivery, it would read 0 while the timer still runs (and tell KVM's entry wait nothing)
  assert.equal(t.lapic.msrRead(MSR_IA32_TSC_DEADLINE), 22_000n);
  t.engine.run(11_000n);
  assert.deepEqual(t.expired, [20_000n, 22_000n]);
  t.engine.run(12_000n);
  assert.deepEqual(t.expired, [20_000n, 22_000n, 24_000n]);
  assert.equal(t.lapic.msrRead(MSR_IA32_TSC_DEADLINE), 0n, 'the last one, not re-armed, is cleared');
});

test('hv timer: a deadline the handler writes on expiry keeps the preemption timer (cancel_hv_timer only when nothing was re-armed)', () => {
  const t = rearming(true, 2_000n);
  t.lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 20_000n);
  t.engine.run(10_000n);
  assert.equal(t.lapic.usingHvTimer, true, 'the re-armed deadline is on the hv timer');
  t.engine.run(12_000n);
  assert.deepEqual(t.expired, [20_000n, 22_000n, 24_000n]);
  assert.deepEqual([t.lapic.stats.hv, t.lapic.stats.sw], [3, 0]);
  assert.equal(t.lapic.usingHvTimer, false);
});
