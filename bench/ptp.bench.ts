// chronyd on the ptp_kvm PHC through simulate(): one VM for 6 simulated hours with
// `refclock PHC /dev/ptp0 poll 3 dpoll -2` (4 PHC reads a second), on kvm-clock (PTP_SYS_OFFSET_PRECISE,
// one hypercall a read) and on tsc (PTP_SYS_OFFSET, 25 hypercalls a read).
import type { Bench } from './run.ts';
import { parseScenarioText, simulate } from '../src/world/index.ts';

const bench: Bench = (report) => {
  for (const [profile, how] of [
    ['qemu-kvm-noinvtsc', 'kvm-clock, PTP_SYS_OFFSET_PRECISE'],
    ['qemu-kvm', 'tsc, PTP_SYS_OFFSET'],
  ] as const) {
    const s = parseScenarioText(
      `
name: ptp-6h
duration: 6h
sample_interval: 1min
hosts: [{ name: h, tsc: { freq_khz: 2596136 } }]
vms: [{ name: v, host: h, profile: ${profile}, sync: { method: chrony, refclock: { poll: 3, dpoll: -2 } } }]
`,
      'bench',
    );
    const t0 = performance.now();
    const r = simulate(s);
    const wallS = (performance.now() - t0) / 1000;
    report({
      name: `refclock PHC dpoll -2, ${how} (simulated / wall)`,
      value: r.summary.duration_s / wallS,
      unit: '× real time',
      note: `${wallS.toFixed(1)} s wall for 6 h, ${r.summary.events_dispatched} events`,
    });
  }
};

export default bench;
