// Engine throughput (events dispatched per second at several queue depths) and whole-scenario speed
// (simulated seconds per wall second) for the built-in demo and for one VM over one day.
import { performance } from 'node:perf_hooks';
import { Engine } from '../src/core/engine.ts';
import { Prng } from '../src/core/prng.ts';
import { DEMO_SCENARIO_YAML } from '../src/world/demo.ts';
import { parseScenarioText } from '../src/world/scenario.ts';
import { simulate } from '../src/world/simulation.ts';
import type { Bench } from './run.ts';

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
  const t0 = performance.now();
  e.run();
  const dt = (performance.now() - t0) / 1000;
  return e.eventsDispatched / dt;
}

function scenarioRate(yaml: string): { ratio: number; wallMs: number } {
  const s = parseScenarioText(yaml);
  simulate(s); // warm-up
  const t0 = performance.now();
  const res = simulate(s);
  const wall = (performance.now() - t0) / 1000;
  return { ratio: res.summary.duration_s / wall, wallMs: wall * 1000 };
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
  for (const pending of [10, 1_000, 10_000]) {
    report({
      name: `engine: events/s with ${pending.toLocaleString('en-US')} pending`,
      value: engineRate(pending, 5_000_000),
      unit: 'events/s',
    });
  }
  const demo = scenarioRate(DEMO_SCENARIO_YAML);
  report({
    name: 'demo scenario (4 VMs, 1 day, a pause, agent and NTP sync)',
    value: demo.ratio,
    unit: '× real time',
    note: `${demo.wallMs.toFixed(1)} ms wall`,
  });
  const one = scenarioRate(ONE_VM_ONE_DAY);
  report({
    name: 'one VM, one day, 1-s samples and 1-s wander steps',
    value: one.ratio,
    unit: '× real time',
    note: `${one.wallMs.toFixed(1)} ms wall`,
  });
};
export default bench;
