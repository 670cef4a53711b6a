// What timevisor's guest model does not (yet) reproduce of a real machine's clock boot lines, stated
// precisely. compareTwin's differences are annotated with these; the self-twin test fails on any
// boot-line difference that is not listed here, so a gap is either explained or fixed — never hidden.
import type { TwinDifference } from './twin.ts';

export interface KnownGap {
  id: string;
  /** Matches the machine's line (or the twin's, for lines only the twin prints). */
  line: RegExp;
  kinds: TwinDifference['what'][];
  explanation: string;
}

export const KNOWN_GAPS: KnownGap[] = [
  {
    id: 'kvmclock-sched-offset',
    line: /^kvm-clock: using sched offset of \d+ cycles$/,
    kinds: ['boot line (numbers differ)'],
    explanation:
      "the number is kvm-clock's nanoseconds at kvmclock_init (arch/x86/kernel/kvmclock.c kvm_sched_clock_init: kvm_clock_read(); \"cycles\" is the kernel's word), i.e. how long the VMM and firmware ran before this boot's kernel set up kvmclock. The guest model takes it from the VMM profile (vmToKernelNs, 52 ms for firecracker) and the scenario format has no field to carry this machine's value, so the twin prints its profile's number.",
  },
  {
    id: 'sched-clock-marking-stable',
    line: /^sched_clock: Marking stable \(/,
    kinds: ['boot line missing in the twin', 'boot line (numbers differ)'],
    explanation:
      'kernel/sched/clock.c __set_sched_clock_stable prints it from sched_clock_init_late (a late_initcall) when sched_clock is stable, with the GTOD and raw sched_clock stamps and offsets of that moment. The guest model keeps no sched_clock/GTOD offset bookkeeping and does not print it; its four numbers depend on this boot\'s timing.',
  },
];

export function gapFor(d: TwinDifference): KnownGap | undefined {
  const line = d.machine || d.twin;
  return KNOWN_GAPS.find((g) => g.kinds.includes(d.what) && g.line.test(line));
}
