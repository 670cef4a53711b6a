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
  /** Applies only when one of the machine's boot clock lines matches this (the mechanism's evidence). */
  requires?: RegExp;
  explanation: string;
}

export const KNOWN_GAPS: KnownGap[] = [
  {
    id: 'sched-clock-marking-stable',
    machine: /^sched_clock: Marking stable \(-?\d+, -?\d+\)->\(-?\d+, -?\d+\)$/,
    twin: /^sched_clock: Marking stable \(-?\d+, -?\d+\)->\(-?\d+, -?\d+\)$/,
    kinds: ['boot line (numbers differ)'],
    explanation:
      "kernel/sched/clock.c __set_sched_clock_stable (late_initcall sched_clock_init_late) prints (tick_gtod, __gtod_offset)->(tick_raw, __sched_clock_offset): CLOCK_MONOTONIC and the raw sched_clock (kvm-clock since kvmclock_init, or the TSC) at the last scheduler tick, the GTOD offset taken at sched_clock_init, and the offset that keeps local_clock() continuous (always first + second - third). The twin prints the line when the kernel does and computes it the same way; its second number is the time from timekeeping_init (CLOCK_MONOTONIC starts at local_clock() on the jiffies clocksource) to sched_clock_init with no tick in between (x86 has no clockevent before x86_late_time_init): with the boot-step times the model takes from this workplace's 6.18 Firecracker guest it is within 3 µs of that machine's (1454000 vs 1456806 ns); machines whose boot steps take other times (a TCG guest, another kernel) differ by that timing too. The first, third and fourth carry how far CLOCK_MONOTONIC fell behind sched_clock while it ran on jiffies (until clocksource_done_booting): a jiffies-based tick loses every delay of its interrupt, because tick_handle_periodic re-arms a one-shot (TSC-deadline) device from the jiffies-based ktime and makes up missed periods only on a clocksource valid for high resolution. Those delays (interrupts-off stretches, host stalls of that boot) cannot be read from inside the guest, so the twin has none and trails only by jiffy quantization.",
  },
  {
    id: 'tsc-measured-frequency',
    kinds: ['boot line (numbers differ)'],
    machine:
      /^(tsc: Detected \d+\.\d{3} MHz processor|clocksource: tsc-early: mask: 0xffffffffffffffff max_cycles: 0x[0-9a-f]+, max_idle_ns: \d+ ns)$/,
    requires:
      /^tsc: (Fast TSC calibration using PIT|PIT calibration matches|using (HPET|PMTIMER) reference calibration|Using PIT calibration value)/,
    explanation:
      "this machine measured its TSC frequency instead of being told it (no kvm-clock or CPUID 0x15/0x16): quick_pit_calibrate (arch/x86/kernel/tsc.c) counts TSC cycles between the last reads that still saw PIT channel 2's MSB at 0xff and at 0xff-i, stopping once two loop periods are under 1/2048 of the span; the result is off from the TSC's rate against the PIT's clock by where the MSB changes fell between reads — up to one loop period (two trapped port reads) over i x 256 PIT ticks, i.e. anywhere within about ±500 ppm by construction, a few ppm in practice. The refinement a second later (tsc_refine_calibration_work, HPET or PM timer read once at each end of ~1 s) has its own sampling error. The twin takes the refined number (the rate the machine's clock finally runs at) as its TSC rate, and its calibrations return that rate without sampling error; so the machine's early number, and the tsc-early max_cycles/max_idle_ns computed from it, keep that boot's difference between the two samplings, which depends on instruction timing (under TCG, translation and I/O emulation time) that cannot be read back.",
  },
];

/** The documented gap that explains a difference; `machineLines` (the machine's boot clock lines) are the evidence some gaps need. */
export function gapFor(d: TwinDifference, machineLines: readonly string[] = []): KnownGap | undefined {
  return KNOWN_GAPS.find(
    (g) =>
      g.kinds.includes(d.what) &&
      (!g.machine || g.machine.test(d.machine)) &&
      (!g.twin || g.twin.test(d.twin)) &&
      (!g.requires || machineLines.some((l) => g.requires!.test(l))),
  );
}
