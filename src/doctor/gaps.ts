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
    id: 'kvmclock-sched-offset',
    machine: /^kvm-clock: using sched offset of \d+ cycles$/,
    kinds: ['boot line (numbers differ)'],
    explanation:
      "the number is kvm-clock's nanoseconds at kvmclock_init (arch/x86/kernel/kvmclock.c kvm_sched_clock_init: kvm_clock_read(); \"cycles\" is the kernel's word), i.e. how long the VMM and firmware ran before this boot's kernel set up kvmclock. The guest model takes it from the VMM profile (vmToKernelNs, 52 ms for firecracker) and the scenario format has no field to carry this machine's value, so the twin prints its profile's number.",
  },
  {
    id: 'sched-clock-marking-stable',
    machine: /^sched_clock: Marking stable \(/,
    kinds: ['boot line missing in the twin', 'boot line (numbers differ)'],
    explanation:
      'kernel/sched/clock.c __set_sched_clock_stable prints it from sched_clock_init_late (a late_initcall) when sched_clock is stable, with the GTOD and raw sched_clock stamps and offsets of that moment. The guest model keeps no sched_clock/GTOD offset bookkeeping and does not print it; its four numbers depend on this boot\'s timing.',
  },
  {
    id: 'pit-broadcast-with-arat',
    kinds: ['broadcast_device'],
    machine: /^"\\n"$/,
    twin: /^"pit\\n"$/,
    explanation:
      "Linux registers the PIT clockevent only when apic_needs_pit() says so (arch/x86/kernel/i8253.c pit_timer_init → use_pit; arch/x86/kernel/apic/apic.c): with known TSC/CPU frequencies, an APIC, ARAT (CPUID.6:EAX bit 2, the APIC timer keeps running in deep C-states) and the TSC-deadline timer it returns false, so this machine has no PIT clockevent and no broadcast device. The guest model's CPUID has no ARAT bit (GuestCpuid in src/guest/platform.ts) and registers pit as the broadcast device.",
  },
];

export function gapFor(d: TwinDifference): KnownGap | undefined {
  return KNOWN_GAPS.find((g) => g.kinds.includes(d.what) && (!g.machine || g.machine.test(d.machine)) && (!g.twin || g.twin.test(d.twin)));
}
