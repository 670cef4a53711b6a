// A run whose timeline arrives while it runs. simulate() is one synchronous call, so the scenario is run
// to 1/16, 1/8, 1/4, 1/2 and all of its duration: each shorter run is an exact prefix of the full one
// (same scenario, same seed, same events up to its end), and the rows before each cut are final. Costs
// about twice one run.
import type { Scenario } from '../world/index.ts';
import { type SimulationResult, simulate, type TimelineRow } from '../world/index.ts';

export const CUTS = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1];

export interface ProgressiveCallbacks {
  progress: (fraction: number) => void;
  rows: (rows: TimelineRow[]) => void;
}

export function runProgressively(s: Scenario, cb: ProgressiveCallbacks): SimulationResult {
  const full = s.duration;
  const total = CUTS.reduce((a, c) => a + c, 0);
  let doneCost = 0;
  let sentUpTo = -1n;
  let result: SimulationResult | null = null;
  for (const cut of CUTS) {
    const last = cut === 1;
    const end = last ? full : (full * BigInt(Math.round(cut * 1024))) / 1024n;
    const res = simulate(last ? s : { ...s, duration: end }, {
      onProgress: (f) => cb.progress((doneCost + f * cut) / total),
    });
    doneCost += cut;
    // rows at the cut itself may be an extra end-of-run sample: only rows before it are final
    const fresh = res.timeline.filter((r) => r.t > sentUpTo && (last || r.t < end));
    if (fresh.length) {
      cb.rows(fresh);
      sentUpTo = fresh[fresh.length - 1]!.t;
    }
    if (last) result = res;
  }
  cb.progress(1);
  return result!;
}
