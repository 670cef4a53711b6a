// Fleet speed as users run it: `timevisor sweep`'s worker pool (one thread per CPU), N VMs for a
// simulated day, each with NTP sync and one 30-s pause at a drawn time, scenario defaults otherwise
// (qemu-kvm, 1-s timekeeper updates, 1-min samples, no crystal wander); and one VM with defaults and NTP
// for a simulated year. Fleet sizes whose predicted wall time exceeds BENCH_FLEET_BUDGET_S (default 600 s)
// are extrapolated from the largest size run, and say so; BENCH_FLEET_YEAR=1 runs the whole year instead
// of 30 days scaled up; BENCH_FLEET_SIZES=100,1000 picks the fleet sizes (empty: none).
import { availableParallelism } from 'node:os';
import { runPool } from '../src/cli/sweep-pool.ts';
import { parseScenarioText, parseSweepText, simulate } from '../src/world/index.ts';
import type { Bench } from './run.ts';

const BASE = `base:
  name: fleet-vm
  duration: 1d
  hosts: [{ name: h, tsc: { freq_khz: 2596136 } }]
  vms: [{ name: v, host: h, pauses: [{ at: 6h, duration: 30s }], sync: { method: ntp } }]
`;

async function fleet(n: number, workers: number): Promise<{ wallS: number; maxRssMiB: number }> {
  const sweep = parseSweepText(`name: fleet\nseed: 1\n${BASE}draw:\n  count: ${n}\n  pause_at: { uniform: [1h, 23h] }\n`, 'bench');
  const jobs = sweep.points.map((point) => ({ point, scenario: sweep.scenarioOf(point) }));
  const t0 = performance.now();
  await runPool(
    jobs,
    Math.min(workers, n),
    sweep.resyncWithinNs,
    'bench',
    () => {},
    () => {},
  );
  const wallS = (performance.now() - t0) / 1000;
  return { wallS, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

const bench: Bench = async (report) => {
  const workers = availableParallelism();
  const budget = Number(process.env.BENCH_FLEET_BUDGET_S ?? 600);
  let perVmS = 0;
  let measuredN = 0;
  const sizes = (process.env.BENCH_FLEET_SIZES ?? '100,1000,10000').split(',').filter(Boolean).map(Number);
  for (const n of sizes) {
    const predicted = perVmS * n;
    if (measuredN > 0 && predicted > budget) {
      report({
        name: `${n.toLocaleString('en-US')} VMs × 24 h, NTP + one pause each (wall)`,
        value: predicted,
        unit: 's',
        note: `EXTRAPOLATED from ${measuredN} VMs (${(1 / perVmS).toFixed(2)} VM-days/s), not run: over the ${budget}-s budget`,
      });
      continue;
    }
    const r = await fleet(n, workers);
    perVmS = r.wallS / n;
    measuredN = n;
    report({
      name: `${n.toLocaleString('en-US')} VMs × 24 h, NTP + one pause each (wall)`,
      value: r.wallS,
      unit: 's',
      note: `${(n / r.wallS).toFixed(2)} VM-days/s on ${workers} worker threads, peak RSS ${r.maxRssMiB.toFixed(0)} MiB`,
    });
  }

  // CPU time rather than wall, best of three: what compares across commits on a shared machine
  const two = parseScenarioText(
    `name: vm-2d\nduration: 2d\nhosts: [{ name: h, tsc: { freq_khz: 2596136 } }]\nvms: [{ name: v, host: h, pauses: [{ at: 6h, duration: 30s }], sync: { method: ntp } }]\n`,
    'bench',
  );
  let bestMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const c0 = process.cpuUsage();
    simulate(two, { onRow: () => {} });
    const c = process.cpuUsage(c0);
    bestMs = Math.min(bestMs, (c.user + c.system) / 1000 / 2);
  }
  report({ name: 'one VM × 2 days, NTP + one pause: CPU per VM-day (best of 3)', value: bestMs, unit: 'ms' });

  const full = process.env.BENCH_FLEET_YEAR === '1';
  const days = full ? 365 : 30;
  const s = parseScenarioText(
    `name: vm-year\nduration: ${days}d\nhosts: [{ name: h, tsc: { freq_khz: 2596136 } }]\nvms: [{ name: v, host: h, sync: { method: ntp } }]\n`,
    'bench',
  );
  const t0 = performance.now();
  simulate(s, { onRow: () => {} });
  const wallS = (performance.now() - t0) / 1000;
  report({
    name: 'one VM, defaults + NTP, a simulated year (wall)',
    value: (wallS * 365) / days,
    unit: 's',
    note: full ? 'run in full' : `EXTRAPOLATED ×365/30 from a 30-day run (${wallS.toFixed(1)} s wall)`,
  });
};

export default bench;
