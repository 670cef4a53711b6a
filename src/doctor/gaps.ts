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
    machine: /^sched_clock: Marking stable \(/,
    kinds: ['boot line missing in the twin', 'boot line (numbers differ)'],
    explanation:
      'kernel/sched/clock.c __set_sched_clock_stable prints it from sched_clock_init_late (a late_initcall) when sched_clock is stable, with the GTOD and raw sched_clock stamps and offsets of that moment. The guest model keeps no sched_clock/GTOD offset bookkeeping and does not print it; its four numbers depend on this boot\'s timing.',
  },
];

export function gapFor(d: TwinDifference): KnownGap | undefined {
  return KNOWN_GAPS.find((g) => g.kinds.includes(d.what) && (!g.machine || g.machine.test(d.machine)) && (!g.twin || g.twin.test(d.twin)));
}
