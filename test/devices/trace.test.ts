// Devices emit trace events named after the kernel/QEMU functions they stand for, only when tracing is on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import { TraceRecorder } from '../../src/core/trace.ts';
import { APIC_LVTT, APIC_TDCR, APIC_TMICT, CmosRtc, LapicTimer, RecordingIrq } from '../../src/devices/index.ts';
import { KvmPit } from '../../src/hypervisor/index.ts';

test('KVM PIT traces create_pit_timer, pit_timer_fn and kvm_set_irq; the LAPIC timer its hv/sw switch', () => {
  const engine = new Engine();
  const trace = new TraceRecorder({ enabled: true });
  const pit = new KvmPit({ scheduler: engine, irq: new RecordingIrq(), trace, name: 'vm0/pit', reinject: false });
  pit.portWrite(0x43, 1, 0x34);
  pit.portWrite(0x40, 1, 0xa9);
  pit.portWrite(0x40, 1, 0x04);
  const lapic = new LapicTimer({
    scheduler: engine,
    irq: new RecordingIrq(),
    trace,
    name: 'vm0/vcpu0/lapic',
    tscKhz: 1_000_000,
    hvTimer: true,
  });
  lapic.writeReg(APIC_LVTT, 0x40);
  lapic.writeReg(APIC_TDCR, 0xb);
  lapic.writeReg(APIC_TMICT, 5_000_000);
  lapic.setRunState('halted');
  engine.run(3_000_000n);
  const names = trace.recorded.map((e) => `${e.source}:${e.name}`);
  assert.deepEqual(names.slice(0, 4), [
    'vm0/pit:create_pit_timer',
    'vm0/pit:create_pit_timer',
    'vm0/vcpu0/lapic:start_hv_timer',
    'vm0/vcpu0/lapic:kvm_lapic_switch_to_sw_timer',
  ]);
  assert.equal(names.filter((n) => n === 'vm0/pit:pit_timer_fn').length, 3);
  assert.equal(names.filter((n) => n === 'vm0/pit:kvm_set_irq').length, 3);
  assert.ok(trace.recorded.every((e) => e.ts <= 3_000_000n));
});

test('no events are recorded when tracing is off', () => {
  const engine = new Engine();
  const trace = new TraceRecorder();
  const rtc = new CmosRtc({ scheduler: engine, irq: new RecordingIrq(), trace, baseSeconds: 0n });
  rtc.portWrite(0x70, 1, 0x0b);
  rtc.portWrite(0x71, 1, 0x52);
  engine.run(2_000_000_000n);
  assert.equal(trace.recorded.length, 0);
});
