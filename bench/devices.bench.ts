// Device throughput: guest register accesses per second through the port/MMIO buses, and timer
// events per second of wall time while the devices' own timers run in the simulation engine.
import { performance } from 'node:perf_hooks';
import { Engine } from '../src/core/engine.ts';
import { APIC_LVTT, APIC_TDCR, APIC_TMCCT, APIC_TMICT, LapicTimer, PcMachine, QtestSession, RecordingIrq } from '../src/devices/index.ts';
import { KvmPit } from '../src/hypervisor/index.ts';
import type { Bench } from './run.ts';

function rate(n: number, fn: () => void): number {
  const t0 = performance.now();
  fn();
  return n / ((performance.now() - t0) / 1000);
}

const pc = () => new PcMachine({ rtcBaseSeconds: 1_700_000_000n, acpiPmBase: 0x600 });

const bench: Bench = (report) => {
  const m = pc();
  const N = 200_000;
  report({
    name: 'RTC seconds read (outb 0x70 + inb 0x71)',
    value: rate(N, () => {
      for (let i = 0; i < N; i++) {
        m.ports.write(0x70, 1, 0);
        m.ports.read(0x71, 1);
      }
    }),
    unit: 'reads/s',
    note: 'recomputes the time registers from the base, as QEMU does',
  });
  report({
    name: 'RTC register A read (UIP check)',
    value: rate(N, () => {
      m.ports.write(0x70, 1, 0x0a);
      for (let i = 0; i < N; i++) m.ports.read(0x71, 1);
    }),
    unit: 'reads/s',
  });
  report({
    name: 'PIT channel 0 latch + 2 byte reads',
    value: rate(N, () => {
      for (let i = 0; i < N; i++) {
        m.ports.write(0x43, 1, 0x00);
        m.ports.read(0x40, 1);
        m.ports.read(0x40, 1);
      }
    }),
    unit: 'counter reads/s',
  });
  m.mmio.write(0xfed00010n, 4, 1n);
  report({
    name: 'HPET main counter readl (MMIO bus)',
    value: rate(N, () => {
      for (let i = 0; i < N; i++) m.mmio.read(0xfed000f0n, 4);
    }),
    unit: 'reads/s',
  });
  report({
    name: 'ACPI PM timer inl',
    value: rate(N, () => {
      for (let i = 0; i < N; i++) m.ports.read(0x608, 4);
    }),
    unit: 'reads/s',
  });
  const q = new QtestSession(pc());
  report({
    name: 'qtest lines (outb/inb pairs) handled in process',
    value: rate(N, () => {
      for (let i = 0; i < N / 2; i++) {
        q.handle('outb 0x70 0x00');
        q.handle('inb 0x71');
      }
    }),
    unit: 'lines/s',
  });

  // timer events
  const rtcM = pc();
  rtcM.ports.write(0x70, 1, 0x0a);
  rtcM.ports.write(0x71, 1, 0x23); // 8192 Hz
  rtcM.ports.write(0x70, 1, 0x0b);
  rtcM.ports.write(0x71, 1, 0x42); // PIE
  let before = rtcM.engine.eventsDispatched;
  let t0 = performance.now();
  rtcM.runUntil(60_000_000_000n);
  report({
    name: 'RTC periodic interrupt at 8192 Hz, 60 s simulated',
    value: (rtcM.engine.eventsDispatched - before) / ((performance.now() - t0) / 1000),
    unit: 'events/s',
    note: `${rtcM.engine.eventsDispatched - before} events`,
  });

  const pitM = pc();
  pitM.ports.write(0x43, 1, 0x34);
  pitM.ports.write(0x40, 1, 0xa9);
  pitM.ports.write(0x40, 1, 0x04); // 1 kHz, QEMU userspace: two OUT transitions per period
  before = pitM.engine.eventsDispatched;
  t0 = performance.now();
  pitM.runUntil(300_000_000_000n);
  report({
    name: 'PIT mode 2 at 1 kHz (QEMU userspace IRQ0), 300 s simulated',
    value: (pitM.engine.eventsDispatched - before) / ((performance.now() - t0) / 1000),
    unit: 'events/s',
    note: `${pitM.engine.eventsDispatched - before} events`,
  });

  const kvmM = new PcMachine({ rtcBaseSeconds: 0n, createPit: (deps) => new KvmPit({ ...deps, reinject: false }) });
  kvmM.ports.write(0x43, 1, 0x34);
  kvmM.ports.write(0x40, 1, 0xa9);
  kvmM.ports.write(0x40, 1, 0x04);
  before = kvmM.engine.eventsDispatched;
  t0 = performance.now();
  kvmM.runUntil(300_000_000_000n);
  report({
    name: 'PIT mode 2 at 1 kHz (KVM in-kernel hrtimer), 300 s simulated',
    value: (kvmM.engine.eventsDispatched - before) / ((performance.now() - t0) / 1000),
    unit: 'events/s',
    note: `${kvmM.engine.eventsDispatched - before} events`,
  });

  const hM = pc();
  hM.mmio.write(0xfed00100n, 4, 0x4cn | (3n << 9n));
  hM.mmio.write(0xfed00108n, 8, 10_000n); // 100 µs period
  hM.mmio.write(0xfed00010n, 4, 1n);
  before = hM.engine.eventsDispatched;
  t0 = performance.now();
  hM.runUntil(100_000_000_000n);
  report({
    name: 'HPET periodic timer at 10 kHz, 100 s simulated',
    value: (hM.engine.eventsDispatched - before) / ((performance.now() - t0) / 1000),
    unit: 'events/s',
    note: `${hM.engine.eventsDispatched - before} events`,
  });

  const engine = new Engine();
  const lapic = new LapicTimer({ scheduler: engine, irq: new RecordingIrq(), tscKhz: 2_596_136 });
  lapic.writeReg(APIC_LVTT, 0x20000 | 0xef);
  lapic.writeReg(APIC_TDCR, 0xb);
  lapic.writeReg(APIC_TMICT, 1_000_000); // 1 kHz
  before = engine.eventsDispatched;
  t0 = performance.now();
  engine.run(300_000_000_000n);
  report({
    name: 'LAPIC periodic timer at 1 kHz, 300 s simulated',
    value: (engine.eventsDispatched - before) / ((performance.now() - t0) / 1000),
    unit: 'events/s',
    note: `${engine.eventsDispatched - before} events`,
  });
  report({
    name: 'LAPIC TMCCT read',
    value: rate(N, () => {
      for (let i = 0; i < N; i++) lapic.readReg(APIC_TMCCT);
    }),
    unit: 'reads/s',
  });
};
export default bench;
