// The first, simple guest clock: a VM whose guest sets its wall clock once at boot and then free-runs
// on a TSC-based clocksource scaled by the nominal TSC frequency it was told (CPUID 0x40000010 /
// kvmclock). Everything the host's crystal gets wrong, the guest inherits.
//
// This is deliberately a model, not the kernel: no mult/shift accumulation, no NTP, no pause. The guest
// layer's timekeeper (src/guest) replaces it with Linux's own arithmetic; see docs/fidelity.md.
import { NSEC_PER_SEC, type Cycles, type Ns } from '../core/time.ts';
import type { Host } from './host.ts';

export type FirstGuestClocksource = 'kvm-clock' | 'tsc';
export type BootWallClock = 'kvmclock' | 'rtc';

export class FirstGuestClock {
  private bootTsc: Cycles = 0n;
  private wallAtBoot: Ns = 0n;
  private booted = false;
  readonly khz: bigint;

  constructor(
    readonly host: Host,
    readonly clocksource: FirstGuestClocksource,
    readonly wallClock: BootWallClock,
  ) {
    this.khz = BigInt(host.tsc.freqKhz);
  }

  /** Boot at true time t: KVM zeroes the guest TSC (tsc_offset = -host TSC), the guest reads the wall clock. */
  boot(t: Ns): void {
    this.bootTsc = this.host.rdtsc(t);
    const hostRealtime = this.host.realtime(t);
    // kvmclock's wall-clock record has ns precision; the CMOS RTC only whole seconds (Linux sets the
    // clock to the second it reads, so the guest starts up to 1 s behind).
    this.wallAtBoot = this.wallClock === 'kvmclock' ? hostRealtime : (hostRealtime / NSEC_PER_SEC) * NSEC_PER_SEC;
    this.booted = true;
  }

  get isBooted(): boolean {
    return this.booted;
  }

  /** Guest TSC at true time t. */
  guestTsc(t: Ns): Cycles {
    return this.host.rdtsc(t) - this.bootTsc;
  }

  /** Guest CLOCK_MONOTONIC at true time t (ns since boot). */
  monotonic(t: Ns): Ns {
    return (this.guestTsc(t) * 1_000_000n) / this.khz;
  }

  /** Guest CLOCK_REALTIME at true time t. */
  realtime(t: Ns): Ns {
    return this.wallAtBoot + this.monotonic(t);
  }
}
