// What timevisor's guest model does not (yet) reproduce of a real machine's clock boot lines, stated
// precisely. compareTwin's differences are annotated with these; the self-twin test fails on any
// boot-line difference that is not listed here, so a gap is either explained or fixed — never hidden.
import type { TwinDifference } from './twin.ts';

export interface KnownGap {
  id: string;
  /** Which comparisons it explains (TwinDifference.what). */
  kinds: string[];
  /** Matches the machine's side (for a boot line: the machine's line). */
  machine?: RegExp;
  /** Matches the twin's side. */
  twin?: RegExp;
  explanation: string;
}

export const KNOWN_GAPS: KnownGap[] = [
  {
    id: 'sched-clock-marking-stable',
    machine: /^sched_clock: Marking stable \(-?\d+, -?\d+\)->\(-?\d+, -?\d+\)$/,
    twin: /^sched_clock: Marking stable \(-?\d+, -?\d+\)->\(-?\d+, -?\d+\)$/,
    kinds: ['boot line (numbers differ)'],
    explanation:
      "kernel/sched/clock.c __set_sched_clock_stable (late_initcall sched_clock_init_late) prints (tick_gtod, __gtod_offset)->(tick_raw, __sched_clock_offset): CLOCK_MONOTONIC and the raw sched_clock (kvm-clock since kvmclock_init, or the TSC) as the last scheduler tick stamped them, the GTOD offset taken at sched_clock_init, and the offset that keeps local_clock() continuous (the fourth is always the first plus the second minus the third). The twin prints the line when and because the kernel does, with its own numbers; the machine's differ because until the switch to kvm-clock/tsc CLOCK_MONOTONIC runs on the jiffies clocksource, and this boot lost jiffies (ticks the vCPU did not take while the host stalled it or interrupts were off) — the machine's GTOD trails its raw sched_clock by tick_raw - tick_gtod, tens of ms here — and its dmesg timestamps after sched_clock_init are in that GTOD frame. Neither the lost ticks nor when they happened can be read from inside the guest, so the twin loses none.",
  },
];

export function gapFor(d: TwinDifference): KnownGap | undefined {
  return KNOWN_GAPS.find((g) => g.kinds.includes(d.what) && (!g.machine || g.machine.test(d.machine)) && (!g.twin || g.twin.test(d.twin)));
}
