// Engine throughput (events dispatched per second of this process's CPU time at several queue depths;
// CPU time because the machine is shared and wall time swings with the load) and whole-scenario speed
// (simulated seconds per wall second) for the built-in demo and for one VM over one day.
import { performance } from 'node:perf_hooks';
import { Prng } from '../src/core/prng.ts';
import { DEMO_SCENARIO_YAML } from '../src/world/demo.ts';
import { parseScenarioText } from '../src/world/scenario.ts';
import { simulate } from '../src/world/simulation.ts';
import type { Bench } from './run.ts';

// BENCH_ENGINE=<file> measures another engine module with the same API (an older engine.ts, for a
// before/after in the same session); the scenario figures always use this tree's engine.
const { Engine } = (await import(process.env.BENCH_ENGINE ?? '../src/core/engine.ts')) as typeof import('../src/core/engine.ts');

/** CPU seconds (user + system) of this process since `since`. */
function cpuSeconds(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1e6;
}

function engineRate(pending: number, events: number): number {
  const e = new Engine();
  const prng = new Prng(1);
  let left = events;
  // `pending` self-rearming timers with random periods: the queue stays `pending` deep.
  for (let i = 0; i < pending; i++) {
    const period = 1000 + prng.int(1_000_000);
    const t = e.timer(() => {
      if (--left > 0) t.armIn(period);
      else e.stop();
    });
    t.armIn(period);
  }
  const c0 = process.cpuUsage();
  e.run();
  return e.eventsDispatched / cpuSeconds(c0);
}

/**
 * What the bench's own callbacks cost without an engine: the same `pending` closures (one counter, one
 * re-arm call on a stub) called in a fixed random order, per second of CPU time. At 10,000 timers
 * their scattered objects, not the queue, set most of the per-event cost.
 */
function callbackRate(pending: number, events: number): number {
  const prng = new Prng(1);
  let left = events;
  const stub = { armIn(_d: number): void {} };
  const cbs: (() => void)[] = [];
  for (let i = 0; i < pending; i++) {
    const period = 1000 + prng.int(1_000_000);
    const t = { ...stub };
    cbs.push(() => {
      if (--left > 0) t.armIn(period);
    });
  }
  const order = new Int32Array(65536).map(() => prng.int(pending));
  const c0 = process.cpuUsage();
  for (let i = 0; i < events; i++) cbs[order[i & 65535]!]!();
  return events / cpuSeconds(c0);
}

function scenarioRate(yaml: string): { ratio: number; cpuMs: number; wallMs: number } {
  const s = parseScenarioText(yaml);
  simulate(s); // warm-up
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const res = simulate(s);
  const cpu = cpuSeconds(c0);
  const wall = (performance.now() - t0) / 1000;
  return { ratio: res.summary.duration_s / cpu, cpuMs: cpu * 1000, wallMs: wall * 1000 };
}

const ONE_VM_ONE_DAY = `
name: one-vm-one-day
duration: 1d
sample_interval: 1s
hosts:
  - name: h
    oscillator: { ppm: 12, wander_sigma_ppm: 0.002, wander_interval: 1s }
    tsc: { freq_khz: 2596136 }
vms:
  - { name: v, host: h, profile: qemu-kvm-noinvtsc }
`;

const bench: Bench = (report) => {
  engineRate(1000, 2_000_000); // warm-up
  engineRate(10_000, 2_000_000);
  for (const pending of [10, 1_000, 10_000]) {
    // best of three: the load from other processes only ever slows a run down
    const rates = [0, 1, 2].map(() => engineRate(pending, 5_000_000));
    report({
      name: `engine: events/s with ${pending.toLocaleString('en-US')} pending`,
      value: Math.max(...rates),
      unit: 'events/s (CPU time)',
      note: `best of 3; ${rates.map((r) => (r / 1e6).toFixed(2)).join(' / ')} M`,
    });
  }
  callbackRate(10_000, 2_000_000); // warm-up
  report({
    name: 'bench callbacks alone, 10,000 timers (no engine)',
    value: Math.max(callbackRate(10_000, 5_000_000), callbackRate(10_000, 5_000_000)),
    unit: 'calls/s (CPU time)',
  });
  const demo = scenarioRate(DEMO_SCENARIO_YAML);
  report({
    name: 'demo scenario (4 VMs, 1 day, a pause, agent and NTP sync)',
    value: demo.ratio,
    unit: '× real time (CPU time)',
    note: `${demo.cpuMs.toFixed(1)} ms CPU, ${demo.wallMs.toFixed(1)} ms wall`,
  });
  const one = scenarioRate(ONE_VM_ONE_DAY);
  report({
    name: 'one VM, one day, 1-s samples and 1-s wander steps',
    value: one.ratio,
    unit: '× real time (CPU time)',
    note: `${one.cpuMs.toFixed(1)} ms CPU, ${one.wallMs.toFixed(1)} ms wall`,
  });
};
export default bench;
