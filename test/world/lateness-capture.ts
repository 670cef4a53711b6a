// Each VM's whole timer lateness histogram as summary.ts takes it (one VmDevices.timerIrqStats() per VM, in
// summary order), captured while `run` runs; the method is restored afterwards.
import type { LatenessHistogram } from '../../src/devices/index.ts';
import { VmDevices } from '../../src/vmm/index.ts';

export function captureLateness<T>(run: () => T): { result: T; taken: LatenessHistogram[] } {
  const taken: LatenessHistogram[] = [];
  const timerIrqStats = VmDevices.prototype.timerIrqStats;
  VmDevices.prototype.timerIrqStats = function (this: VmDevices) {
    const st = timerIrqStats.call(this);
    taken.push(st.lateness);
    return st;
  };
  try {
    return { result: run(), taken };
  } finally {
    VmDevices.prototype.timerIrqStats = timerIrqStats;
  }
}

/** Ascending order of ns values (for sorting BigInts). */
export const cmpNs = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
