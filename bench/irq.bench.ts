// The cost of wired timer interrupts (issue 12): each guest run twice in the same process, with its tick
// driven by its clock event device's interrupt (PIT / LAPIC timer → irqchip → vCPU → handler) and with the
// side timer the model used before (GuestPlatform.interrupts removed before kernel entry), and the ratio;
// each the best of three alternating runs.
import type { Bench } from './run.ts';
import { Engine } from '../src/core/engine.ts';
import { NSEC_PER_SEC, type Ns } from '../src/core/time.ts';
import { bootVm, kernelPreset, machineProfile } from '../src/vmm/index.ts';

interface Case {
  name: string;
  profile: string;
  kernel: string;
  cmdline: string;
  updateIntervalNs?: Ns;
  deschedule?: boolean;
  seconds: bigint;
}

/** Wall seconds for `c.seconds` of model time after boot, and the events dispatched. */
function time(c: Case, wired: boolean): { wall: number; events: number } {
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile(c.profile),
    kernel: kernelPreset(c.kernel),
    cmdline: c.cmdline,
    scheduler: e,
    ...(c.updateIntervalNs !== undefined ? { updateIntervalNs: c.updateIntervalNs, vcpuEntryIntervalNs: c.updateIntervalNs } : {}),
    ...(c.deschedule ? { deschedule: { periodNs: 100_000_000n, runNs: 50_000_000n } } : {}),
  });
  if (!wired) delete b.vm.platform.interrupts;
  e.run(b.kernelEntryAt + 2n * NSEC_PER_SEC);
  const ev0 = e.eventsDispatched;
  const t0 = performance.now();
  e.run(e.now + c.seconds * NSEC_PER_SEC);
  return { wall: (performance.now() - t0) / 1000, events: e.eventsDispatched - ev0 };
}

const CASES: Case[] = [
  {
    name: 'tickless kvm-clock guest, 1-s updates, 1 day',
    profile: 'qemu-kvm-noinvtsc',
    kernel: 'distro',
    cmdline: '',
    updateIntervalNs: NSEC_PER_SEC,
    seconds: 86_400n,
  },
  { name: 'tickless tsc guest, 250 Hz updates, 5 min', profile: 'firecracker', kernel: 'distro', cmdline: '', seconds: 300n },
  {
    name: 'jiffies guest on the PIT, 2:1 share, 1-s updates, 10 min',
    profile: 'kvmtool',
    kernel: 'yocto-qemux86',
    cmdline: 'nolapic',
    updateIntervalNs: NSEC_PER_SEC,
    deschedule: true,
    seconds: 600n,
  },
];

const bench: Bench = (report) => {
  for (const c of CASES) {
    time(c, true); // warm-up
    // alternate three times and keep each one's best: the machine is shared, the minimum is the least disturbed
    let side = time(c, false);
    let wired = time(c, true);
    for (let i = 0; i < 2; i++) {
      const s = time(c, false);
      const w = time(c, true);
      if (s.wall < side.wall) side = s;
      if (w.wall < wired.wall) wired = w;
    }
    const secs = Number(c.seconds);
    report({ name: `${c.name}: side timer`, value: secs / side.wall, unit: '× real time', note: `${side.events} events` });
    report({ name: `${c.name}: wired`, value: secs / wired.wall, unit: '× real time', note: `${wired.events} events` });
    report({ name: `${c.name}: wired / side wall time`, value: wired.wall / side.wall, unit: '×' });
  }
};
export default bench;
