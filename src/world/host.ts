// A physical host: its oscillator, its TSC and its clocks.
//
// The TSC counts at its nominal frequency in the oscillator's time: tsc = tsc0 + phase·kHz/10^6 (the
// error of the crystal shows up as a TSC that runs fast or slow against true time, which is what a guest
// scaling the TSC by the nominal frequency inherits). Host clocks follow Linux's definitions:
// CLOCK_MONOTONIC_RAW is the clocksource scaled by its nominal frequency, never adjusted; CLOCK_MONOTONIC
// is slewed by NTP (when the host runs an NTP client it is modelled as tracking true time's rate);
// CLOCK_REALTIME = MONOTONIC + the wall-clock offset set at boot (exact true time when NTP-synced).
import type { Cycles, Ns } from '../core/index.ts';
import { NSEC_PER_SEC } from '../core/index.ts';
import type { Prng } from '../core/index.ts';
import { Oscillator, type OscillatorConfig, TscCounter, type TscPlan } from '../core/index.ts';

export interface TscConfig {
  /** Nominal TSC frequency, kHz (what CPUID 0x15/0x16 or calibration reports). */
  freqKhz: number;
  /** constant_tsc: rate does not change with P-states. */
  constant: boolean;
  /** nonstop_tsc: keeps counting in deep C-states. */
  nonstop: boolean;
  /** Invariant TSC, CPUID 0x80000007 EDX bit 8 (constant and nonstop). */
  invariant: boolean;
  /** TSC value at true time 0. */
  initial?: Cycles;
}

export interface HostConfig {
  name: string;
  oscillator: OscillatorConfig;
  tsc: TscConfig;
  /** Whether the host's own clock is NTP-disciplined (REALTIME then equals true time). */
  ntp: boolean;
  /** REALTIME at true time 0 minus true UTC at true time 0, ns (an initially wrong host clock). */
  initialRealtimeErrorNs?: Ns;
}

export class Host {
  readonly name: string;
  readonly oscillator: Oscillator;
  readonly tsc: Readonly<TscConfig>;
  readonly ntp: boolean;
  private readonly tsc0: Cycles;
  private readonly khz: bigint;
  private readonly counter: TscCounter;
  private readonly realtimeError: Ns;

  constructor(
    cfg: HostConfig,
    prng: Prng,
    /** True UTC (ns since the Unix epoch) at true time 0. */
    private readonly epochNs: Ns,
  ) {
    if (!(cfg.tsc.freqKhz > 0) || !Number.isInteger(cfg.tsc.freqKhz))
      throw new RangeError(`TSC frequency must be a positive integer kHz, got ${cfg.tsc.freqKhz}`);
    this.name = cfg.name;
    this.tsc = cfg.tsc;
    this.ntp = cfg.ntp;
    this.oscillator = new Oscillator(cfg.oscillator, prng.fork(`host:${cfg.name}:oscillator`));
    this.tsc0 = cfg.tsc.initial ?? 0n;
    this.khz = BigInt(cfg.tsc.freqKhz);
    this.counter = new TscCounter(this.khz);
    this.realtimeError = cfg.initialRealtimeErrorNs ?? 0n;
  }

  /** Host TSC reading at true time t (rdtsc on the host). */
  rdtsc(t: Ns): Cycles {
    const cycles = this.counter.cyclesAt(this.oscillator.phaseAt(t));
    return this.tsc0 === 0n ? cycles : this.tsc0 + cycles;
  }

  /** rdtsc(t) as a TscPlan over the oscillator's current segment (null: the segment allows none). */
  tscPlan(): TscPlan | null {
    return this.oscillator.tscPlan(this.counter, this.tsc0);
  }

  /** CLOCK_MONOTONIC_RAW: the TSC scaled by its nominal frequency. */
  monotonicRaw(t: Ns): Ns {
    return ((this.rdtsc(t) - this.tsc0) * 1_000_000n) / this.khz;
  }

  /** CLOCK_MONOTONIC: NTP-slewed to true rate when the host is synced, else equal to RAW. */
  monotonic(t: Ns): Ns {
    return this.ntp ? t : this.monotonicRaw(t);
  }

  /** CLOCK_REALTIME, ns since the Unix epoch. */
  realtime(t: Ns): Ns {
    return this.ntp ? this.epochNs + t : this.epochNs + this.realtimeError + this.stepsNs + this.monotonic(t);
  }

  /** The sum of the steps made to CLOCK_REALTIME so far (settimeofday on the host). */
  get realtimeStepsNs(): Ns {
    return this.stepsNs;
  }

  /** Step CLOCK_REALTIME by `by` ns (settimeofday on the host): MONOTONIC and RAW do not move. */
  stepRealtime(by: Ns): void {
    this.stepsNs += by;
  }

  private stepsNs: Ns = 0n;

  /** Whole seconds of REALTIME, as a CMOS RTC kept by the host would show them. */
  realtimeSeconds(t: Ns): bigint {
    return this.realtime(t) / NSEC_PER_SEC;
  }
}
