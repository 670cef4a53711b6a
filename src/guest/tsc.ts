// TSC frequency determination and the tsc/tsc-early clocksources (arch/x86/kernel/tsc.c).
// The calibration loops are modelled by their outcome: what each method needs from the machine
// (a CPUID leaf, a working PIT channel 2 with its gate on port 0x61, an HPET or PM timer
// reference, port reads fast enough) and what frequency it then reports, computed from the TSC's
// and the reference's true rates with the kernel's integer divisions.
import type { Cycles, TscPlan } from '../core/index.ts';
import { U64_MAX } from '../core/index.ts';
import {
  CLOCK_SOURCE_IS_CONTINUOUS,
  CLOCK_SOURCE_MUST_VERIFY,
  CLOCK_SOURCE_VALID_FOR_HRES,
  CLOCK_SOURCE_VERIFY_PERCPU,
  Clocksource,
} from './clocksource.ts';
import type { GuestPlatform } from './platform.ts';
import { PIT_TICK_RATE } from './jiffies.ts';

export const PMTMR_TICKS_PER_SEC = 3_579_545;
const NSEC_PER_MSEC = 1_000_000;

/** clocksource_tsc_early: rating 299, not valid for high resolution mode until replaced. */
export function tscEarlyClocksource(read: () => Cycles): Clocksource {
  return new Clocksource({
    name: 'tsc-early',
    rating: 299,
    mask: U64_MAX,
    flags: CLOCK_SOURCE_IS_CONTINUOUS | CLOCK_SOURCE_MUST_VERIFY,
    uncertaintyMarginNs: 32n * 1_000_000n,
    vdsoClockMode: 'tsc',
    read,
  });
}

/** clocksource_tsc: rating 300. */
export function tscClocksource(read: () => Cycles, plan?: () => TscPlan | null): Clocksource {
  return new Clocksource({
    name: 'tsc',
    rating: 300,
    mask: U64_MAX,
    flags: CLOCK_SOURCE_IS_CONTINUOUS | CLOCK_SOURCE_VALID_FOR_HRES | CLOCK_SOURCE_MUST_VERIFY | CLOCK_SOURCE_VERIFY_PERCPU,
    vdsoClockMode: 'tsc',
    read,
    ...(plan ? { plan } : {}),
  });
}

/** "%lu.%03lu MHz" as tsc.c prints a kHz value. */
export function mhz(khz: number): string {
  return `${Math.floor(khz / 1000)}.${String(khz % 1000).padStart(3, '0')}`;
}

export interface CalibrationResult {
  khz: number;
  lines: string[];
  /** X86_FEATURE_TSC_KNOWN_FREQ was set (CPUID 0x15 with a crystal, or kvmclock). */
  knownFreq: boolean;
}

/** native_calibrate_tsc(): CPUID 0x15 (Intel only). */
export function nativeCalibrateTsc(p: GuestPlatform, hz: number): CalibrationResult & { lapicTimerPeriod: number } {
  const none = { khz: 0, lines: [], knownFreq: false, lapicTimerPeriod: 0 };
  const l = p.cpuid.leaf15;
  if (p.cpuid.vendor !== 'intel' || !l || l.numerator === 0 || l.denominator === 0) return none;
  let crystalKhz = Math.floor(l.crystalHz / 1000);
  const knownFreq = crystalKhz !== 0;
  if (crystalKhz === 0 && p.cpuid.leaf16BaseMhz) crystalKhz = Math.floor((p.cpuid.leaf16BaseMhz * 1000 * l.denominator) / l.numerator);
  if (crystalKhz === 0) return none;
  return {
    khz: Math.floor((crystalKhz * l.numerator) / l.denominator),
    lines: [],
    knownFreq,
    lapicTimerPeriod: Math.floor((crystalKhz * 1000) / hz),
  };
}

/** MSR the PVM guest reads its TSC frequency from (kHz, low 32 bits). */
export const MSR_PVM_TSC_KHZ = 0x4b564d13;

/**
 * pvm_get_tsc_khz(), the PVM guest's x86_platform.calibrate_tsc and calibrate_cpu (arch/x86/kernel/pvm-pv.c
 * of this workplace's 6.18 kernel; not in any public tree, read from its text): rdmsr_safe(0x4b564d13); on
 * success setup_force_cpu_cap(X86_FEATURE_TSC_KNOWN_FREQ) and (X86_FEATURE_TSC_RELIABLE), and the MSR's
 * low 32 bits are the kHz. kvm-pvm answers with the host's tsc_khz (or the vCPU's virtual_tsc_khz), so
 * the guest prints the host's number exactly — no pvclock round trip (pvclock_tsc_khz gives only even kHz
 * near 2 GHz). TSC_RELIABLE turns off the clocksource watchdog for tsc/tsc-early and the sync check.
 */
export function pvmGetTscKhz(p: GuestPlatform): (CalibrationResult & { reliable: boolean }) | null {
  if (!p.cpuid.pvm) return null; // the MSR read faults: rdmsr_safe fails, 0 is returned
  return { khz: p.cpuid.pvm.tscKhz >>> 0, lines: [], knownFreq: true, reliable: true };
}

/** cpu_khz_from_cpuid(): CPUID 0x16 base frequency (Intel only). */
export function cpuKhzFromCpuid(p: GuestPlatform): number {
  if (p.cpuid.vendor !== 'intel' || !p.cpuid.leaf16BaseMhz) return 0;
  return p.cpuid.leaf16BaseMhz * 1000;
}

/**
 * quick_pit_calibrate(): PIT channel 2 counting down from 0xffff with its gate raised through
 * port 0x61; the TSC is sampled at each MSB change until the read uncertainty (about two port
 * reads) is below 1/2048 of the elapsed time, at most QUICK_PIT_ITERATIONS (50 ms) of MSB steps.
 */
export function quickPitCalibrate(p: GuestPlatform): CalibrationResult {
  const fail = { khz: 0, lines: ['tsc: Fast TSC calibration failed'], knownFreq: false };
  if (!p.devices.pit?.speakerPort) return fail; // gate never rises: MSB never moves
  const QUICK_PIT_ITERATIONS = Math.floor((50 * PIT_TICK_RATE) / 1000 / 256);
  const msbStepNs = (256 / (PIT_TICK_RATE * p.pitRateRatio)) * 1e9;
  const readNs = p.pioReadNs;
  // pit_expect_msb() needs to see the MSB more than 5 times before it changes
  if (readNs * 5 >= msbStepNs) return fail;
  for (let i = 1; i < QUICK_PIT_ITERATIONS; i++) {
    const elapsedNs = i * msbStepNs;
    // d1 + d2 (each about one port read) must be < delta >> 11
    if (2 * readNs < elapsedNs / 2048) {
      // delta counts TSC cycles over i*256 PIT ticks; both ends are seen with the same read latency,
      // so the result is the TSC rate in PIT units; the ±1-cycle quantisation of delta is not modelled
      const khz = Math.floor(p.tscTrueHz() / 1000 / p.pitRateRatio + 1e-6);
      return { khz, lines: ['tsc: Fast TSC calibration using PIT'], knownFreq: false };
    }
  }
  return fail;
}

/**
 * pit_hpet_ptimer_calibrate_cpu(): up to three pit_calibrate_tsc() runs (10 ms with at least 1000
 * port reads, then 50 ms/5000 after two PIT failures) bracketed by HPET or PM-timer reads.
 */
export function pitHpetPtimerCalibrateCpu(p: GuestPlatform, hpetEnabled: boolean, pmTimer: boolean): CalibrationResult {
  const lines: string[] = [];
  const refName = hpetEnabled ? 'HPET' : 'PMTIMER';
  const haveRef = hpetEnabled || pmTimer;
  const trueKhz = p.tscTrueHz() / 1000;
  const refRatio = 1; // HPET and PM timer run from the host's corrected clock in every VMM modelled
  let pitMin = Infinity;
  let refMin = Infinity;
  const pit = p.devices.pit;
  let ms = 10; // CAL_MS, CAL_PIT_LOOPS
  let loopmin = 1000;
  for (let i = 0; i < 3; i++) {
    let pitKhz = Infinity;
    if (pit?.speakerPort) {
      // each loop: inb(0x61) + rdtsc; the loop must run loopmin times within ms
      const loops = Math.floor((ms * NSEC_PER_MSEC) / Math.max(1, p.pioReadNs));
      if (loops >= loopmin) pitKhz = Math.floor(trueKhz / p.pitRateRatio);
    }
    // without the speaker port, inb(0x61) returns a stale byte with OUT2 set: zero loops
    pitMin = Math.min(pitMin, pitKhz);
    if (!haveRef) continue;
    refMin = Math.min(refMin, Math.floor(trueKhz / refRatio));
    const delta = Math.floor((pitMin * 100) / refMin);
    if (delta >= 90 && delta <= 110) {
      lines.push(`tsc: PIT calibration matches ${refName}. ${i + 1} loops`);
      return { khz: refMin, lines, knownFreq: false };
    }
    // PIT failed twice (virtual machines): give it CAL2's longer window
    if (i === 1 && pitMin === Infinity) {
      ms = 50;
      loopmin = 5000;
    }
  }
  if (pitMin === Infinity) {
    lines.push('tsc: Unable to calibrate against PIT');
    if (!haveRef) {
      lines.push('tsc: No reference (HPET/PMTIMER) available');
      return { khz: 0, lines, knownFreq: false };
    }
    if (refMin === Infinity) {
      lines.push('tsc: HPET/PMTIMER calibration failed');
      return { khz: 0, lines, knownFreq: false };
    }
    lines.push(`tsc: using ${refName} reference calibration`);
    return { khz: refMin, lines, knownFreq: false };
  }
  if (!haveRef) {
    lines.push('tsc: Using PIT calibration value');
    return { khz: pitMin, lines, knownFreq: false };
  }
  lines.push(`tsc: PIT calibration deviates from ${refName}: ${pitMin} ${refMin}`);
  lines.push('tsc: Using PIT calibration value');
  return { khz: pitMin, lines, knownFreq: false };
}

/**
 * tsc_refine_calibration_work(): about a second after tsc-early, TSC cycles against the HPET
 * (if enabled) or PM timer. Returns null when there is no reference (the early value is kept).
 */
export function refineCalibration(p: GuestPlatform, hpetEnabled: boolean, pmTimer: boolean): number | null {
  if (!hpetEnabled && !pmTimer) return null;
  return Math.floor(p.tscTrueHz() / 1000);
}
