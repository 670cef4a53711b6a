// A minimal ntpd-style client in kernel-discipline mode (ntpd's ntp_loopfilter.c with the kernel
// PLL): every poll it measures the offset to a server, steps the clock when the offset exceeds the
// step threshold (128 ms, via ADJ_SETOFFSET), and otherwise hands the offset to the kernel PLL with
// ADJ_OFFSET | ADJ_STATUS (STA_PLL | STA_NANO) and the poll exponent as time constant. The
// measurement itself (network, server) is the caller's: the world model or a test.
import type { Scheduler, Timer } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import {
  ADJ_MAXERROR,
  ADJ_ESTERROR,
  ADJ_NANO,
  ADJ_OFFSET,
  ADJ_SETOFFSET,
  ADJ_STATUS,
  ADJ_TIMECONST,
  STA_NANO,
  STA_PLL,
  type Timex,
  type TimexResult,
} from './ntp.ts';

export interface NtpMeasurement {
  /** Server time minus guest CLOCK_REALTIME, ns (what the client should add). */
  offsetNs: Ns;
  /** Round-trip delay, ns. */
  delayNs: Ns;
}

export interface NtpClientOptions {
  scheduler: Scheduler;
  /** adjtimex(2) of the guest kernel; like the syscall it must not keep `txc` (the client reuses it). */
  adjtimex: (txc: Timex) => TimexResult;
  /** One client/server exchange now; null when no reply came (this poll does nothing). */
  measure: () => NtpMeasurement | null;
  /** log2 of the poll interval in seconds (ntpd minpoll 6 = 64 s); default 6. */
  pollExp?: number;
  /** Step threshold, ns (ntpd's 128 ms). */
  stepThresholdNs?: Ns;
}

export class NtpKernelClient {
  private readonly timer: Timer;
  readonly pollExp: number;
  steps = 0;
  polls = 0;
  lastOffsetNs: Ns = 0n;

  /** The poll interval, ns (2^pollExp s). */
  private readonly pollNs: Ns;
  private readonly stepThresholdNs: Ns;
  private readonly minusStepThresholdNs: Ns;
  /** A poll's ADJ_OFFSET call, filled in each time (adjtimex(2) copies the struct: it keeps nothing of it). */
  private readonly offsetTxc: Timex = {
    modes: ADJ_OFFSET | ADJ_NANO | ADJ_MAXERROR | ADJ_ESTERROR,
    offset: 0n,
    maxerror: 0n,
    esterror: 0n,
  };
  /** The last round-trip delay and its maxerror/esterror, µs (a server's delay often repeats). */
  private errorDelayNs: Ns = -1n;
  private errorUs: bigint = 0n;

  constructor(private readonly o: NtpClientOptions) {
    this.pollExp = o.pollExp ?? 6;
    this.pollNs = BigInt(2 ** this.pollExp) * 1_000_000_000n;
    this.stepThresholdNs = o.stepThresholdNs ?? 128_000_000n;
    this.minusStepThresholdNs = -this.stepThresholdNs;
    this.timer = o.scheduler.timer(() => this.poll());
  }

  /** The poll timer: a poll only measures and calls adjtimex, so a quiet span may run it (Engine.quietParticipant). */
  get pollTimer(): Timer {
    return this.timer;
  }

  /** When the poll that runs at `at` polls next (the last answer kept: a span asks more than once per poll). */
  readonly nextPollAt = (at: Ns): Ns => {
    if (at !== this.askedAt) {
      this.askedAt = at;
      this.nextAt = at + this.pollNs;
    }
    return this.nextAt;
  };
  private askedAt: Ns = -1n;
  private nextAt: Ns = 0n;

  start(): void {
    this.o.adjtimex({ modes: ADJ_STATUS | ADJ_NANO | ADJ_TIMECONST, status: STA_PLL | STA_NANO, constant: this.pollExp }); // ntpd: ntv.constant = sys_poll with a nanosecond kernel
    this.poll();
  }

  stop(): void {
    this.timer.cancel();
  }

  private poll(): void {
    this.polls++;
    const m = this.o.measure();
    if (m === null) {
      this.timer.armIn(this.pollNs);
      return;
    }
    const off = m.offsetNs;
    this.lastOffsetNs = off;
    if (off > this.stepThresholdNs || off < this.minusStepThresholdNs) {
      this.o.adjtimex({ modes: ADJ_SETOFFSET | ADJ_NANO, setOffsetNs: off });
      this.steps++;
    } else {
      // maxerror = esterror = delay / 2 in µs: (d / 2) / 1000 is d / 2000 (both round toward zero)
      if (m.delayNs !== this.errorDelayNs) {
        this.errorDelayNs = m.delayNs;
        this.errorUs = m.delayNs / 2000n;
      }
      const txc = this.offsetTxc;
      txc.offset = off;
      txc.maxerror = this.errorUs;
      txc.esterror = this.errorUs;
      this.o.adjtimex(txc);
    }
    this.timer.armIn(this.pollNs);
  }
}
