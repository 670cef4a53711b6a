// What every timer device is built from: its time base, the scheduler that runs its timers, its
// interrupt line(s) and an optional trace recorder. No device reads the wall clock.
import type { Scheduler, Timer } from '../core/index.ts';
import type { Clock, Ns } from '../core/index.ts';
import { TraceRecorder } from '../core/index.ts';
import type { IrqLine } from './irq.ts';

export interface DeviceDeps {
  /** The device's time base (QEMU_CLOCK_VIRTUAL for most devices). Defaults to `scheduler.now`. */
  clock?: Clock;
  /** Runs the device's timers: the simulation Engine, or a live backend implementing Scheduler. */
  scheduler: Scheduler;
  irq: IrqLine;
  trace?: TraceRecorder;
  /** Name used as the trace source, e.g. "vm0/rtc". */
  name?: string;
}

/** Arm `timer` to fire when `clock` reads `t` (clock and scheduler advance at the same rate). */
export function armAtClock(timer: Timer, clock: Clock, t: Ns): void {
  const d = t - clock();
  timer.armIn(d > 0n ? d : 0n);
}

/** Expiry of `timer` on `clock`'s scale, or null. */
export function expiresOnClock(timer: Timer, clock: Clock, scheduler: Scheduler): Ns | null {
  const e = timer.expires;
  return e === null ? null : e - scheduler.now + clock();
}

/** QEMU's muldiv64(a, b, c): (a * b) / c with a 128-bit intermediate, truncated. */
export function muldiv64(a: bigint, b: bigint, c: bigint): bigint {
  return (a * b) / c;
}

export function resolveDeps(d: DeviceDeps, fallbackName: string) {
  const scheduler = d.scheduler;
  return {
    clock: d.clock ?? (() => scheduler.now),
    scheduler,
    irq: d.irq,
    trace: d.trace ?? TraceRecorder.off,
    name: d.name ?? fallbackName,
  };
}

/**
 * At most how many times `timer` can fire in the next `span` ns if it re-arms every `periodNs` (null: it
 * fires once). Used to bound the work of a time step before taking it.
 */
export function timerEventBound(timer: Timer, periodNs: Ns | null, span: Ns): number {
  if (!timer.pending) return 0;
  if (periodNs === null) return 1;
  return Number(span / (periodNs > 0n ? periodNs : 1n)) + 1;
}

/** Snapshot helpers: 64-bit values travel as decimal strings. */
export const big = (s: string): bigint => BigInt(s);
export const str = (b: bigint): string => b.toString();
