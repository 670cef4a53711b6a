// What tracing costs. Off (the default), every emit site is one `trace.on` load and a not-taken branch:
// measured per call site in a tight loop against the same loop without the check, then multiplied by the
// number of emits the demo would make, and set against the demo's wall time. On, the demo records every
// event (and a filter that keeps nothing shows the cost of building the arguments alone).
import { TraceRecorder } from '../src/core/trace.ts';
import { DEMO_SCENARIO_YAML } from '../src/world/demo.ts';
import { parseScenarioText } from '../src/world/scenario.ts';
import { simulate } from '../src/world/simulation.ts';
import type { Bench } from './run.ts';

function bestOf<T>(n: number, f: () => T): { ms: number; value: T } {
  let best = Number.POSITIVE_INFINITY;
  let value: T;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    value = f();
    best = Math.min(best, performance.now() - t0);
  }
  return { ms: best, value: value! };
}

/** ns per `if (trace.on) trace.instant(...)` with tracing off, over the same loop without it. */
function offCheckNs(): number {
  const N = 50_000_000;
  // a recorder seen both on and off, so the check is not folded away
  const recorders = [new TraceRecorder(), new TraceRecorder({ enabled: true, limit: 0 })];
  const trace = recorders[0]!;
  let sink = 0;
  const withCheck = bestOf(5, () => {
    for (let i = 0; i < N; i++) {
      sink += i & 7;
      if (trace.on) trace.instant(BigInt(i), 'vm0/vcpu0', 'kvm_guest_time_update', ['vcpu_enter_guest'], { tsc: i });
    }
    return sink;
  });
  const without = bestOf(5, () => {
    for (let i = 0; i < N; i++) sink += i & 7;
    return sink;
  });
  recorders[1]!.instant(0n, 's', 'n'); // keep the second recorder live
  return (Math.max(0, withCheck.ms - without.ms) * 1e6) / N;
}

const bench: Bench = (report) => {
  const s = parseScenarioText(DEMO_SCENARIO_YAML, 'demo');
  const off = bestOf(3, () => simulate(s));
  const on = bestOf(3, () => {
    const trace = new TraceRecorder({ enabled: true });
    simulate(s, { trace });
    return trace.recorded.length;
  });
  const filtered = bestOf(3, () => simulate(s, { trace: new TraceRecorder({ enabled: true, filter: () => false }) }));
  const perCheck = offCheckNs();
  const emits = on.value;
  report({ name: 'demo, tracing off (wall)', value: off.ms, unit: 'ms', note: 'best of 3' });
  report({
    name: 'demo, tracing on: every event recorded (wall)',
    value: on.ms,
    unit: 'ms',
    note: `${emits} events, ×${(on.ms / off.ms).toFixed(2)}`,
  });
  report({
    name: 'demo, tracing on, filter keeps nothing (wall)',
    value: filtered.ms,
    unit: 'ms',
    note: `×${(filtered.ms / off.ms).toFixed(2)}`,
  });
  report({ name: 'one emit site with tracing off', value: perCheck, unit: 'ns', note: 'trace.on check over a bare loop, 50 M iterations' });
  report({
    name: "tracing off: the demo's emit sites as a share of its wall time",
    value: ((emits * perCheck) / 1e6 / off.ms) * 100,
    unit: '%',
    note: `${emits} checks × ${perCheck.toFixed(2)} ns`,
  });
};
export default bench;
