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
      "kernel/sched/clock.c __set_sched_clock_stable (late_initcall sched_clock_init_late) prints (tick_gtod, __gtod_offset)->(tick_raw, __sched_clock_offset): CLOCK_MONOTONIC and the raw sched_clock (kvm-clock since kvmclock_init, or the TSC) at the last scheduler tick, the GTOD offset taken at sched_clock_init, and the offset that keeps local_clock() continuous (always first + second - third). The twin prints the line when the kernel does and computes it the same way; its second number is the time from timekeeping_init (CLOCK_MONOTONIC starts at local_clock() on the jiffies clocksource) to sched_clock_init with no tick in between (x86 has no clockevent before x86_late_time_init), which matches a real boot to microseconds. The first, third and fourth carry how far CLOCK_MONOTONIC fell behind sched_clock while it ran on jiffies (until clocksource_done_booting): a jiffies-based tick loses every delay of its interrupt, because tick_handle_periodic re-arms a one-shot (TSC-deadline) device from the jiffies-based ktime and makes up missed periods only on a clocksource valid for high resolution. Those delays (interrupts-off stretches, host stalls of that boot) cannot be read from inside the guest, so the twin has none and trails only by jiffy quantization.",
  },
];

export function gapFor(d: TwinDifference): KnownGap | undefined {
  return KNOWN_GAPS.find((g) => g.kinds.includes(d.what) && (!g.machine || g.machine.test(d.machine)) && (!g.twin || g.twin.test(d.twin)));
}
