// The clocksource watchdog on a shared host (src/guest/watchdog.ts): with a CPU for every thread it
// fast-forwards its quiet spans; at 2:1 overcommit vCPU 0 may wait at any check, so every check is an event.
// One qemu-kvm-noinvtsc guest (kvm-clock watching the TSC), 1-min updates, one simulated day.
import type { Bench } from './run.ts';
import { Engine } from '../src/core/engine.ts';
import { NSEC_PER_SEC } from '../src/core/time.ts';
import { bootVm, kernelPreset, machineProfile } from '../src/vmm/index.ts';
import { HostCpus } from '../src/world/host-cpus.ts';

const bench: Bench = (report) => {
  for (const [cpus, busy] of [
    [2, 1],
    [1, 1],
  ] as const) {
    const e = new Engine();
    const host = new HostCpus({ cpus, busyThreads: busy }, () => e.now);
    const b = bootVm({
      profile: machineProfile('qemu-kvm-noinvtsc'),
      kernel: kernelPreset('distro'),
      scheduler: e,
      vcpus: 1,
      updateIntervalNs: 60n * NSEC_PER_SEC,
      vcpuEntryIntervalNs: 60n * NSEC_PER_SEC,
      vcpuSchedule: (n) => host.vcpuThreads(n, 'vm'),
    });
    const t0 = performance.now();
    e.run(86_400n * NSEC_PER_SEC);
    const wd = b.guest.watchdog;
    const what = `${cpus} CPU${cpus > 1 ? 's' : ''}, ${busy} busy thread: a day of watchdog`;
    report({ name: `${what} (wall)`, value: performance.now() - t0, unit: 'ms', note: `${wd.checks} checks, ${wd.fastForwarded} skipped` });
    report({ name: `${what} (events)`, value: e.eventsDispatched, unit: 'events' });
  }
};
export default bench;
