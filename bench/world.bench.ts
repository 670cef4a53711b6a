// World speed through simulate(): one VM for a simulated year, and a fleet of 100 VMs for a day, each
// booting the guest kernel model on qemu-kvm-noinvtsc (the TSC is watched by the clocksource watchdog
// against kvm-clock every 0.5 s) with 300-s vCPU entries and timekeeping updates.
import type { Bench } from './run.ts';
import { parseScenarioText, simulate } from '../src/world/index.ts';

function measure(yaml: string): { wallS: number; simS: number; events: number } {
  const s = parseScenarioText(yaml, 'bench');
  const t0 = performance.now();
  const r = simulate(s);
  return { wallS: (performance.now() - t0) / 1000, simS: r.summary.duration_s, events: r.summary.events_dispatched };
}

const bench: Bench = (report) => {
  const year = measure(`
name: vm-year
duration: 365d
sample_interval: 1d
hosts: [{ name: h, oscillator: { ppm: -3 }, tsc: { freq_khz: 2000000 } }]
vms: [{ name: v, host: h, profile: qemu-kvm-noinvtsc, update_interval: 300s }]
`);
  report({
    name: 'one VM for a simulated year (simulated / wall)',
    value: year.simS / year.wallS,
    unit: '× real time',
    note: `${year.wallS.toFixed(1)} s wall, ${year.events} events`,
  });

  const hosts = Array.from(
    { length: 10 },
    (_, i) => `  - { name: h${i}, oscillator: { ppm: ${(i % 7) - 3} }, tsc: { freq_khz: 2000000 } }`,
  ).join('\n');
  const vms = Array.from(
    { length: 100 },
    (_, i) => `  - { name: v${i}, host: h${i % 10}, profile: qemu-kvm-noinvtsc, update_interval: 300s, boot_at: ${i}s }`,
  ).join('\n');
  const fleet = measure(`name: fleet\nduration: 1d\nsample_interval: 1h\nhosts:\n${hosts}\nvms:\n${vms}\n`);
  report({
    name: '100 VMs for a simulated day (VM-days simulated / wall)',
    value: (100 * fleet.simS) / fleet.wallS,
    unit: '× real time',
    note: `${fleet.wallS.toFixed(1)} s wall, ${fleet.events} events`,
  });
};

export default bench;
