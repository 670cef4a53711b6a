// Fleet speed as users run it: `timevisor sweep`'s worker pool (one thread per CPU), N VMs for a
// simulated day, each with NTP sync and one 30-s pause at a drawn time, scenario defaults otherwise
// (qemu-kvm, 1-s timekeeper updates, 1-min samples, no crystal wander); and one VM with defaults and NTP
// for a simulated year. Fleet sizes whose predicted wall time exceeds BENCH_FLEET_BUDGET_S (default 600 s)
// are extrapolated from the largest size run, and say so; BENCH_FLEET_YEAR=1 runs the whole year instead
// of 30 days scaled up; BENCH_FLEET_SIZES=100,1000 picks the fleet sizes (empty: none).
import { availableParallelism } from 'node:os';
import { runPool } from '../src/cli/sweep-pool.ts';
import { moduleWorker, workerBundle } from '../src/cli/worker-bundle.ts';
import { parseSweepText } from '../src/world/index.ts';
import type { Bench } from './run.ts';
import type { SimJob } from './sim-worker.ts';

/** Simulate on a worker thread running the bundle, as `timevisor run` does; CPU and wall ms per repeat. */
async function simulateBundled(job: SimJob): Promise<{ cpuMs: number[]; wallMs: number[] }> {
  const module = new URL('./sim-worker.ts', import.meta.url);
  const w = moduleWorker(module, await workerBundle(module), job);
  return new Promise((resolvePromise, reject) => {
    w.once('message', (m: { cpuMs: number[]; wallMs: number[] }) => {
      void w.terminate();
      resolvePromise(m);
    });
    w.once('error', reject);
  });
}

const BASE = `base:
  name: fleet-vm
  duration: 1d
  hosts: [{ name: h, tsc: { freq_khz: 2596136 } }]
  vms: [{ name: v, host: h, pauses: [{ at: 6h, duration: 30s }], sync: { method: ntp } }]
`;

async function fleet(n: number, workers: number): Promise<{ wallS: number; cpuS: number; maxRssMiB: number }> {
  const sweep = parseSweepText(`name: fleet\nseed: 1\n${BASE}draw:\n  count: ${n}\n  pause_at: { uniform: [1h, 23h] }\n`, 'bench');
  const jobs = sweep.points.map((point) => ({ point, scenario: sweep.scenarioOf(point) }));
  const t0 = performance.now();
  const c0 = process.cpuUsage(); // the whole process: the worker threads too
  await runPool(
    jobs,
    Math.min(workers, n),
    sweep.resyncWithinNs,
    'bench',
    () => {},
    () => {},
  );
  const wallS = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wallS, cpuS: (c.user + c.system) / 1e6, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
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
      note: `${(n / r.wallS).toFixed(2)} VM-days/s on ${workers} worker threads, ${r.cpuS.toFixed(1)} CPU-s (${((r.cpuS / n) * 1000).toFixed(0)} ms per VM-day), peak RSS ${r.maxRssMiB.toFixed(0)} MiB`,
    });
  }

  // CPU time rather than wall, best of three, on a worker running the bundle (as `timevisor run` does)
  const two = `name: vm-2d\nduration: 2d\nhosts: [{ name: h, tsc: { freq_khz: 2596136 } }]\nvms: [{ name: v, host: h, pauses: [{ at: 6h, duration: 30s }], sync: { method: ntp } }]\n`;
  // quiet spans on (what users run) and off (every periodic expiry an engine event)
  const on = Math.min(...(await simulateBundled({ scenario: two, repeats: 8 })).cpuMs.slice(3)) / 2;
  const off = Math.min(...(await simulateBundled({ scenario: two, repeats: 8, quietSpans: false })).cpuMs.slice(3)) / 2;
  report({ name: 'one VM × 2 days, NTP + one pause: CPU per VM-day (best of runs 4–8)', value: on, unit: 'ms' });
  report({
    name: '  the same, event by event (quietSpans: false)',
    value: off,
    unit: 'ms',
    note: `quiet spans ${(off / on).toFixed(1)}× less`,
  });

  const full = process.env.BENCH_FLEET_YEAR === '1';
  const days = full ? 365 : 30;
  const year = `name: vm-year\nduration: ${days}d\nhosts: [{ name: h, tsc: { freq_khz: 2596136 } }]\nvms: [{ name: v, host: h, sync: { method: ntp } }]\n`;
  const r = await simulateBundled({ scenario: year, repeats: 1 });
  const wallS = r.wallMs[0]! / 1000;
  const cpuS = r.cpuMs[0]! / 1000;
  report({
    name: 'one VM, defaults + NTP, a simulated year (wall)',
    value: (wallS * 365) / days,
    unit: 's',
    note: full
      ? `run in full, ${cpuS.toFixed(1)} CPU-s`
      : `EXTRAPOLATED ×365/30 from a 30-day run (${wallS.toFixed(1)} s wall, ${cpuS.toFixed(1)} CPU-s)`,
  });
};

export default bench;
