// The real guest's clock boot lines against the guest model's, line by line. Every deterministic line is
// compared as text, in order. A line leaves the comparison, or has a number masked, only where what it
// says depends on the host's load while TCG ran the boot; each rule below says why. Everything else the
// real guest prints among its clock lines must be printed by the model, and the other way round.

/** The dmesg lines the lab reads as clock lines. */
export const CLOCK_LINE = /clocksource|tsc:|rtc_cmos|hpet|acpi_pm|PM-Timer|\.\.TIMER|clockevent|kvm-clock|sched_clock|Calibrating delay/i;

export interface BootLineRule {
  match: RegExp;
  /** Absent: the line leaves the ordered comparison. Present: the line stays, with this replacement. */
  mask?: (line: string) => string;
  why: string;
}

/** Lines whose presence or position depends on host load: out of the ordered comparison. */
export const LOAD_DEPENDENT_LINES: readonly BootLineRule[] = [
  {
    match:
      /^tsc: (Fast TSC calibration (using PIT|failed)|Unable to calibrate against PIT|using (HPET|PMTIMER) reference calibration|PIT calibration matches (HPET|PMTIMER))/,
    why: "which TSC calibration succeeds depends on how fast TCG runs quick_pit_calibrate's loop (arch/x86/kernel/tsc.c: it gives up when PIT reads take too long); on a loaded host the early PIT calibration fails and tsc_init calibrates against the HPET instead",
  },
  {
    match: /^tsc: Detected \d+\.\d+ MHz processor$/,
    why: 'printed by tsc_early_init when the quick PIT calibration succeeds, by tsc_init (after ..TIMER) when it failed: its place follows the calibration above, its value is compared separately (tscDetectedKhz)',
  },
  {
    match: /^clocksource: Long readout interval, skipping watchdog check/,
    why: 'the clocksource watchdog timer ran late (kernel/time/clocksource.c): the vCPU thread was descheduled',
  },
  {
    match: /^APIC (calibration not consistent with PM-Timer|delta adjusted to PM-Timer)/,
    why: 'calibrate_APIC_clock (arch/x86/kernel/apic/apic.c) measured the LAPIC timer against the PM timer over a load-stretched 100 ms; the model has no LAPIC calibration',
  },
  {
    match: /^hpet: Lost \d+ RTC interrupts$/,
    why: 'hpet_rtc_interrupt (arch/x86/kernel/hpet.c) counts RTC update interrupts that came late because the vCPU did not run',
  },
];

/** Lines compared as text except for numbers that depend on host load. */
export const LOAD_DEPENDENT_NUMBERS: readonly BootLineRule[] = [
  {
    match:
      /^Calibrating delay loop \(skipped\)(, value calculated using timer frequency| preset value)\.\. \d+\.\d{2} BogoMIPS \(lpj=\d+\)$/,
    mask: (l) => l.replace(/\.\. \d+\.\d{2} BogoMIPS \(lpj=\d+\)$/, '.. N BogoMIPS (lpj=N)'),
    why: 'init/calibrate.c takes lpj_fine = tsc_khz·1000/HZ from the TSC calibration, which depends on load as above (the real-guest test checks the real lpj against the real tsc_khz)',
  },
  {
    match: /^tsc: Refined TSC clocksource calibration: \d+\.\d+ MHz$/,
    mask: () => 'tsc: Refined TSC clocksource calibration: N MHz',
    why: 'tsc_refine_calibration_work reads the TSC and the HPET once at each end of ~1 s; under TCG each read is an emulated instruction whose delay depends on load (the value is compared separately)',
  },
  {
    match: /^clocksource: (tsc|tsc-early): mask: 0xffffffffffffffff max_cycles: 0x[0-9a-f]+, max_idle_ns: \d+ ns$/,
    mask: (l) => l.replace(/max_cycles: \S+ max_idle_ns: \d+ ns/, 'max_cycles: N, max_idle_ns: N ns'),
    why: 'computed from the calibrated TSC frequency (clocks_calc_max_nsecs), which depends on load as above',
  },
  {
    match: /^sched_clock: Marking stable \(-?\d+, -?\d+\)->\(-?\d+, -?\d+\)$/,
    mask: () => 'sched_clock: Marking stable (N, N)->(N, N)',
    why: 'kernel/sched/clock.c prints ktime and sched_clock at late_initcall: how long the boot took under TCG',
  },
  {
    match: /^rtc_cmos \S+ setting system clock to \S+ UTC \(\d+\)$/,
    mask: (l) => l.replace(/to \S+ UTC \(\d+\)$/, 'to T UTC (S)'),
    why: "the second QEMU's RTC showed when rtc_hctosys read it: the host time, plus how long TCG took to get there (the boot offset is compared through QEMU's RTC arithmetic instead)",
  },
];

/**
 * Lines printed by tsc_refine_calibration_work, delayed work queued HZ jiffies after init_tsc_clocksource
 * (device_initcall): where they fall among the later initcalls' lines (rtc_cmos, sched_clock_init_late)
 * depends on how fast TCG runs those initcalls, so they are compared in their own order, after the rest.
 */
export const DELAYED_WORK_LINES: readonly BootLineRule[] = [
  {
    match: /^(tsc: Refined TSC clocksource calibration: |clocksource: tsc: mask: |clocksource: Switched to clocksource tsc$)/,
    why: 'tsc_refine_calibration_work runs one second (HZ jiffies) after device_initcall, concurrently with the remaining initcalls; on a loaded host it ran before sched_clock_init_late (late_initcall) printed, on an idle one after',
  },
];

const stamp = /^\[\s*\d+\.\d+\]\s?/;

/**
 * The lines of a boot log that enter the comparison, stamps removed, load-dependent numbers masked: the
 * boot's own sequence, then the TSC refinement work's lines in their order.
 */
export function comparableBootLines(log: readonly string[]): string[] {
  const boot: string[] = [];
  const delayed: string[] = [];
  for (const raw of log) {
    const l = raw.replace(stamp, '');
    if (!CLOCK_LINE.test(l)) continue;
    if (LOAD_DEPENDENT_LINES.some((r) => r.match.test(l))) continue;
    const m = LOAD_DEPENDENT_NUMBERS.find((r) => r.match.test(l));
    (DELAYED_WORK_LINES.some((r) => r.match.test(l)) ? delayed : boot).push(m?.mask ? m.mask(l) : l);
  }
  return [...boot, ...delayed];
}

export interface BootLogComparison {
  real: string[];
  model: string[];
  equal: boolean;
  /** The first index where they differ, with both lines (null past the end of one). */
  firstDifference: { index: number; real: string | null; model: string | null } | null;
}

export function compareBootLogs(real: readonly string[], model: readonly string[]): BootLogComparison {
  const a = comparableBootLines(real);
  const b = comparableBootLines(model);
  let first: BootLogComparison['firstDifference'] = null;
  for (let i = 0; i < Math.max(a.length, b.length); i++)
    if (a[i] !== b[i]) {
      first = { index: i, real: a[i] ?? null, model: b[i] ?? null };
      break;
    }
  return { real: a, model: b, equal: first === null, firstDifference: first };
}

/** The kHz of a "tsc: Detected N MHz processor" / "Refined … N MHz" line ("2596.136" → 2596136), or null. */
export function tscKhzFromLog(log: readonly string[], which: 'detected' | 'refined'): number | null {
  const re =
    which === 'detected' ? /tsc: Detected (\d+)\.(\d{3}) MHz processor/ : /tsc: Refined TSC clocksource calibration: (\d+)\.(\d{3}) MHz/;
  for (const l of log) {
    const m = re.exec(l);
    if (m) return Number(m[1]) * 1000 + Number(m[2]);
  }
  return null;
}
