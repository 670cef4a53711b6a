// The VMM's MMIO and port paths to the device models: a flat 32-bit micro-guest enables the HPET and reads
// its main counter (MMIO 0xfed000f0) and the ACPI PM timer (port 0x608) in pairs ~50 ms apart. Both
// models run on the host clock, so between two pairs they must advance by the same time: the HPET at
// 100 MHz (QEMU's HPET_CLK_PERIOD 10 ns, hw/timer/hpet.c), the PM timer at 3.579545 MHz (24 bits,
// hw/acpi/core.c). The twin reads the same models on a simulated clock at the same moments' spacing.
import { Engine } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import { AcpiPmTimer } from '../devices/index.ts';
import { Hpet } from '../devices/index.ts';
import { noIrq } from '../devices/index.ts';
import { buildGuest } from './guest-build.ts';
import { LiveKvm } from './kvm.ts';
import { LiveMachine, MB, PM_BASE } from './vmm.ts';

const PM_HZ = 3_579_545;

export interface DevicesInterval {
  /** Time between two pairs as the guest saw it on each timer, ns. */
  hpetNs: number;
  pmNs: number;
}

export interface DevicesReport {
  pairs: { hpet: number; pm: number }[];
  intervals: DevicesInterval[];
  /** The same models read on a simulated clock at the live PM timer's moments, both in one instant. */
  twin: DevicesInterval[];
}

export function timerIntervals(pairs: { hpet: number; pm: number }[]): DevicesInterval[] {
  return pairs.slice(1).map((p, i) => ({
    hpetNs: ((p.hpet - pairs[i]!.hpet) >>> 0) * 10,
    pmNs: Math.round((((p.pm - pairs[i]!.pm) & 0xffffff) * 1e9) / PM_HZ),
  }));
}

export async function devicesExperiment(o: { pairs: number; waitMs: number }): Promise<DevicesReport> {
  if (!Number.isInteger(o.pairs) || o.pairs < 2 || o.pairs > 64) throw new InputError(`expected 2..64 pairs, got "${o.pairs}"`, '--pairs');
  const k = LiveKvm.open();
  try {
    const wait = Math.round((o.waitMs * PM_HZ) / 1000);
    const m = new LiveMachine(k, { guest: buildGuest('devices'), params: [o.pairs, wait], mode: 'protected' });
    m.start();
    await m.waitForLine(/^devices done$/, 10_000 + o.pairs * o.waitMs * 4);
    await m.stop();
    const pairs = Array.from({ length: o.pairs }, (_, i) => ({ hpet: m.mailbox(MB.result + 8 * i), pm: m.mailbox(MB.result + 8 * i + 4) }));
    const intervals = timerIntervals(pairs);
    let t = 0;
    const at = [0, ...intervals.map((i) => (t += i.pmNs))];
    return { pairs, intervals, twin: timerIntervals(simulateDevices(at)) };
  } finally {
    k.close();
  }
}

/** The twin: the HPET (enabled) and PM timer models read at the same simulated instants `atNs`. */
export function simulateDevices(atNs: number[]): { hpet: number; pm: number }[] {
  const engine = new Engine();
  const hpet = new Hpet({ scheduler: engine, irqs: [] });
  const pm = new AcpiPmTimer({ scheduler: engine, irq: noIrq, base: PM_BASE });
  hpet.mmioWrite(0x10, 4, 1n);
  return atNs.map((t) => {
    engine.run(BigInt(t));
    return { hpet: Number(hpet.mmioRead(0xf0, 4)), pm: pm.portRead(PM_BASE + 8, 4) };
  });
}
