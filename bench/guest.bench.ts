// Guest model speed: booting a guest, reading its clocks, and running an NTP-disciplined guest for
// simulated hours with the timekeeper advanced every second (NOHZ-idle style) or every tick.
import type { Bench } from './run.ts';
import { Engine } from '../src/core/engine.ts';
import { NSEC_PER_SEC } from '../src/core/time.ts';
import { bootVm, kernelPreset, machineProfile } from '../src/vmm/index.ts';
import { ADJ_NANO, ADJ_OFFSET, ADJ_STATUS, ADJ_TIMECONST, STA_NANO, STA_PLL } from '../src/guest/ntp.ts';

const bench: Bench = (report) => {
  // 1. boots (firecracker + distro, 3 s of model time after kernel entry)
  let t0 = performance.now();
  const n = 40;
  for (let i = 0; i < n; i++) {
    const e = new Engine();
    const b = bootVm({ profile: machineProfile('firecracker'), kernel: kernelPreset('distro'), scheduler: e });
    e.run(b.kernelEntryAt + 3n * NSEC_PER_SEC);
    b.vm.destroy();
  }
  report({ name: 'boot firecracker/distro to a settled guest (3 s model)', value: (performance.now() - t0) / n, unit: 'ms/boot' });

  // 2. clock reads
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile('firecracker'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    host: { ppm: 50 },
    updateIntervalNs: NSEC_PER_SEC,
    vcpuEntryIntervalNs: NSEC_PER_SEC,
  });
  e.run(b.kernelEntryAt + 2n * NSEC_PER_SEC);
  const g = b.guest;
  const reads = 200_000;
  t0 = performance.now();
  let sink = 0n;
  for (let i = 0; i < reads; i++) sink ^= g.clockGettime('monotonic');
  report({
    name: 'clock_gettime(MONOTONIC) on tsc (timekeeper read)',
    value: reads / ((performance.now() - t0) / 1000),
    unit: 'reads/s',
    note: String(sink & 1n),
  });

  // 3. NTP-disciplined guest, 1-s updates, 16-s polls, 6 simulated hours
  g.adjtimex({ modes: ADJ_STATUS | ADJ_NANO | ADJ_TIMECONST, status: STA_PLL | STA_NANO, constant: 4 });
  const hours = 6n;
  const start = e.now;
  t0 = performance.now();
  while (e.now - start < hours * 3600n * NSEC_PER_SEC) {
    g.adjtimex({ modes: ADJ_OFFSET | ADJ_NANO, offset: -(g.clockGettime('realtime') - (1_767_225_600n * NSEC_PER_SEC + e.now)) });
    e.run(e.now + 16n * NSEC_PER_SEC);
  }
  const wall = (performance.now() - t0) / 1000;
  report({
    name: 'NTP-disciplined guest, 1-s timekeeper updates, 6 h',
    value: (Number(hours) * 3600) / wall,
    unit: '× real time',
    note: `${wall.toFixed(2)} s wall`,
  });

  // 4. timekeeping_advance per tick (periodic 250 Hz) for one simulated minute
  const e2 = new Engine();
  const b2 = bootVm({ profile: machineProfile('firecracker'), kernel: kernelPreset('distro'), scheduler: e2 });
  e2.run(b2.kernelEntryAt + 2n * NSEC_PER_SEC);
  const adv0 = b2.guest.timekeeper.advances;
  t0 = performance.now();
  e2.run(e2.now + 60n * NSEC_PER_SEC);
  const secs = (performance.now() - t0) / 1000;
  report({
    name: 'guest with a 250 Hz update_wall_time (+ 100 Hz vCPU entries)',
    value: 60 / secs,
    unit: '× real time',
    note: `${b2.guest.timekeeper.advances - adv0} advances`,
  });
};
export default bench;
