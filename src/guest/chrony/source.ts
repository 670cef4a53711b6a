// One `server` of chronyd: ntp_core.c's client side — the initial delay, iburst's burst, transmit
// scheduling, the four timestamps into offset/delay/dispersion (RFC 5905 as ntp_core.c computes them),
// the reachability register and poll-interval adaptation (adjust_poll / get_poll_adj). The network and
// the server are the caller's: `exchange` sends one request and calls back with the server's
// timestamps if a reply arrives (never, if it is lost).
import type { Scheduler, Timer } from '../../core/index.ts';
import type { Ns } from '../../core/index.ts';
import type { NtpSample } from './sourcestats.ts';
import { SourceStats } from './sourcestats.ts';

// ntp_core.c
export const INITIAL_DELAY = 0.2;
export const MAX_BURST_INTERVAL = 2.0;
export const MAX_BURST_POLL_RATIO = 0.25;
export const IBURST_GOOD_SAMPLES = 4;
export const IBURST_TOTAL_SAMPLES = 8; // SOURCE_REACH_BITS
/** ntp_core.c (4.3): sub-second polls only while the source is reachable and its minimum delay ≤ 10 ms. */
const MIN_NONLAN_POLL = 0;
const MAX_LAN_PEER_DELAY = 0.01;
/** ntp_core.c MIN_POLL, MAX_POLL: the range of minpoll and maxpoll. */
export const MIN_POLL = -7;
export const MAX_POLL = 24;
/** srcparams.h SRC_DEFAULT_POLLTARGET. */
export const DEFAULT_POLL_TARGET = 8;

/** What the server put in its reply (T2, T3 and the header fields ntp_core.c uses). */
export interface NtpServerReply {
  /** T2 and T3, the server's receive and transmit timestamps, ns since the epoch. */
  receiveNs: Ns;
  transmitNs: Ns;
  stratum: number;
  /** Root delay and dispersion in the packet, seconds. */
  rootDelay: number;
  rootDispersion: number;
  /** log2 seconds, e.g. −23. */
  precision: number;
  refId: string;
}

/** A server as the guest reaches it: one request, at most one reply (a callback, later or never). */
export interface NtpServerLink {
  name: string;
  exchange(reply: (r: NtpServerReply) => void): void;
}

export interface NtpSourceOptions {
  minpoll?: number;
  maxpoll?: number;
  iburst?: boolean;
  pollTarget?: number;
  /**
   * Replay: the requests go out at these scheduler instants (ascending) instead of when the poll timer
   * says, e.g. to replay a recorded run's schedule (src/lab/chrony-twin.ts). Poll adaptation still runs.
   */
  transmitTimes?: readonly Ns[];
}

export interface SourceHooks {
  scheduler: Scheduler;
  /** LCL_ReadCookedTime. */
  readCooked: () => Ns;
  /** LCL_GetSysPrecisionAsQuantum, seconds. */
  precision: number;
  /** SRC_AccumulateSample + SRC_SelectSource. */
  onSample: (src: NtpSource) => void;
  isSyncPeer: (src: NtpSource) => boolean;
}

type OpMode = 'online' | 'burst';

const secs = (a: Ns, b: Ns): number => Number(a - b) / 1e9;

export class NtpSource {
  readonly minpoll: number;
  readonly maxpoll: number;
  readonly pollTarget: number;
  readonly stats: SourceStats;
  localPoll: number;
  pollScore = 0;
  reachability = 0;
  reachabilitySize = 0;
  stratum = 0;
  refId = '';
  private opmode: OpMode = 'online';
  private burstGood = 0;
  private burstTotal = 0;
  private txCount = 0;
  private localTx: Ns = 0n;
  /** Local (cooked) time of the last transmission: chronyd measures "time since the last request" on its
   * own clock, so a VM paused under kvm-clock (whose clock stood still) resumes mid-interval. */
  private lastTxLocal: Ns | null = null;
  private readonly timer: Timer;
  /** Transmission times (scheduler ns), for tests and reports. */
  readonly transmits: Ns[] = [];
  samples = 0;
  /** The last sample taken (offset in NTP sign) and the regression right after it (what chronyd's statistics log shows), for reports. */
  lastSample: NtpSample | null = null;
  lastRegression: { n: number; offset: number; frequency: number; stdDev: number; skew: number } | null = null;
  private seq = 0;
  stopped = false;
  private frozenTimeout: { left: Ns; local: Ns } | null = null;

  constructor(
    readonly link: NtpServerLink,
    private readonly o: NtpSourceOptions,
    private readonly h: SourceHooks,
  ) {
    // NCR_CreateInstance: out of range → the default (below MIN_POLL) or MAX_POLL; maxpoll ≥ minpoll
    this.minpoll = o.minpoll === undefined || o.minpoll < MIN_POLL ? 6 : Math.min(o.minpoll, MAX_POLL);
    this.maxpoll = o.maxpoll === undefined || o.maxpoll < MIN_POLL ? 10 : Math.min(o.maxpoll, MAX_POLL);
    if (this.maxpoll < this.minpoll) this.maxpoll = this.minpoll;
    this.pollTarget = o.pollTarget ?? DEFAULT_POLL_TARGET;
    this.localPoll = Math.max(this.minpoll, MIN_NONLAN_POLL);
    this.stats = new SourceStats(h.precision);
    this.timer = h.scheduler.timer(() => this.transmitTimeout());
    if (o.iburst) {
      // NCR_InitiateSampleBurst(inst, IBURST_GOOD_SAMPLES, IBURST_TOTAL_SAMPLES) when the source goes online
      this.opmode = 'burst';
      this.burstGood = IBURST_GOOD_SAMPLES;
      this.burstTotal = IBURST_TOTAL_SAMPLES;
    }
  }

  /**
   * start_initial_timeout: the first request goes out INITIAL_DELAY (0.2 s) after start; after an offline
   * period the delay keeps at least a poll interval since the last request.
   */
  start(): void {
    this.stopped = false;
    let delay = 0;
    if (this.lastTxLocal !== null) {
      const lastTx = Math.max(0, secs(this.h.readCooked(), this.lastTxLocal));
      delay = this.transmitDelay() - lastTx;
    }
    if (delay < INITIAL_DELAY) delay = INITIAL_DELAY;
    this.restart(delay);
  }

  /** The VM stops: chronyd's timeouts no longer fire. */
  stop(): void {
    this.stopped = true;
    const due = this.timer.expires;
    this.frozenTimeout = due === null ? null : { left: due - this.h.scheduler.now, local: this.h.readCooked() };
    this.timer.cancel();
  }

  /**
   * The VM runs again: the transmit timeout is due on chronyd's own clock (sched.c), so what that clock
   * saw of the stop counts — a guest clock that stood still (kvm-clock, TCG's TSC) saw none of it and the
   * request goes out what was left of the interval after the resume; one that ran on, at once.
   */
  resume(): void {
    this.stopped = false;
    const f = this.frozenTimeout;
    this.frozenTimeout = null;
    if (this.o.transmitTimes) this.restart(0);
    else if (f !== null) {
      const left = f.left - (this.h.readCooked() - f.local);
      this.timer.armIn(left > 0n ? left : 0n);
    } else this.start();
  }

  get reachable(): boolean {
    return this.reachability !== 0;
  }

  private restart(delay: number): void {
    const times = this.o.transmitTimes;
    if (times) {
      const now = this.h.scheduler.now;
      const next = times.find((t) => t > now);
      if (next === undefined) this.timer.cancel();
      else this.timer.armAt(next);
      return;
    }
    this.timer.armIn(BigInt(Math.round(delay * 1e9)));
  }

  /**
   * get_transmit_delay (client mode): a poll interval, or a burst's shorter one. In client mode the time
   * already spent is not subtracted (ntp_core.c subtracts it for symmetric peers only), so after a reply
   * the next request goes out a full interval after the reply.
   */
  private transmitDelay(): number {
    let delay = 2 ** this.localPoll;
    if (this.opmode === 'burst') delay = Math.min(MAX_BURST_INTERVAL, MAX_BURST_POLL_RATIO * delay);
    return delay;
  }

  /** adjust_poll. */
  adjustPoll(adj: number): void {
    this.pollScore += adj;
    if (this.pollScore >= 1.0) {
      this.localPoll += Math.trunc(this.pollScore);
      this.pollScore -= Math.trunc(this.pollScore);
    }
    if (this.pollScore < 0.0) {
      this.localPoll += Math.trunc(this.pollScore - 1.0);
      this.pollScore -= Math.trunc(this.pollScore - 1.0);
    }
    if (this.localPoll < this.minpoll) {
      this.localPoll = this.minpoll;
      this.pollScore = 0;
    } else if (this.localPoll > this.maxpoll) {
      this.localPoll = this.maxpoll;
      this.pollScore = 1.0;
    }
    // no sub-second polling unless reachable and on a local network by the measured delay
    if (this.localPoll < MIN_NONLAN_POLL && (!this.reachable || this.stats.minRoundTripDelay() > MAX_LAN_PEER_DELAY))
      this.localPoll = MIN_NONLAN_POLL;
  }

  /** get_poll_adj. */
  private pollAdj(errorInEstimate: number, peerDistance: number): number {
    if (errorInEstimate > peerDistance) return -Math.log(errorInEstimate / peerDistance) / Math.log(2.0);
    const samples = this.stats.nSamples;
    let adj = (samples / this.pollTarget - 1.0) / this.pollTarget;
    if (samples < this.pollTarget) adj *= 2.0;
    return adj;
  }

  private updateReachability(ok: boolean): void {
    this.reachability = ((this.reachability << 1) | (ok ? 1 : 0)) & 0xff;
    if (this.reachabilitySize < 8) this.reachabilitySize++;
  }

  /** transmit_timeout (client mode, no presend, no interleaving). */
  private transmitTimeout(): void {
    if (this.stopped) return;
    if (this.opmode === 'burst' && this.burstTotal <= 1) this.opmode = 'online'; // online burst: online before the last packet
    this.txCount++;
    this.transmits.push(this.h.scheduler.now);
    if (this.txCount >= 2) {
      // at least one response is missing
      this.adjustPoll(this.h.isSyncPeer(this) ? 0.1 : 0.25);
      this.updateReachability(false);
    }
    if (this.opmode === 'burst') this.burstTotal--;
    const t1 = this.h.readCooked();
    this.localTx = t1;
    this.lastTxLocal = t1;
    const seq = ++this.seq;
    this.link.exchange((r) => {
      if (this.stopped || seq !== this.seq) return; // a late reply to an older request is not accepted
      this.receive(t1, r);
    });
    this.restart(this.transmitDelay());
  }

  /** The response half of NCR_ProcessRxKnown for a valid server reply. */
  private receive(t1: Ns, r: NtpServerReply): void {
    const t4 = this.h.readCooked();
    this.seq++; // one response per request
    this.txCount = 0;
    this.stratum = r.stratum;
    this.refId = r.refId;
    // ntp_core.c: intervals and averages of the remote and local timestamp pairs
    const remoteInterval = secs(r.transmitNs, r.receiveNs);
    const localInterval = secs(t4, t1);
    const remoteAverage = r.receiveNs + (r.transmitNs - r.receiveNs) / 2n;
    const localAverage = t1 + (t4 - t1) / 2n;
    const precision = this.h.precision + 2 ** r.precision;
    let peerDelay = Math.abs(localInterval - remoteInterval);
    if (peerDelay < precision) peerDelay = precision;
    const offset = secs(remoteAverage, localAverage); // negative if we are fast of the server
    const skew = this.stats.frequencyRangeSkew();
    const peerDispersion = precision + skew * Math.abs(localInterval);
    const sample: NtpSample = {
      time: localAverage,
      offset,
      peerDelay,
      peerDispersion,
      rootDelay: r.rootDelay + peerDelay,
      rootDispersion: r.rootDispersion + peerDispersion,
    };
    this.updateReachability(true);
    this.samples++;
    this.lastSample = sample;
    // process_sample
    const estimated = this.stats.predictOffset(sample.time);
    const errorInEstimate = Math.abs(-sample.offset - estimated);
    this.stats.accumulate(sample);
    this.stats.doNewRegression();
    const st = this.stats;
    this.lastRegression = {
      n: st.nSamples,
      offset: st.estimatedOffset,
      frequency: st.estimatedFrequency,
      stdDev: st.stdDev,
      skew: st.skew,
    };
    this.h.onSample(this);
    this.adjustPoll(this.pollAdj(errorInEstimate, sample.peerDispersion + 0.5 * sample.peerDelay));
    if (this.opmode === 'burst') {
      this.burstGood--;
      if (this.burstGood <= 0) this.opmode = 'online';
    }
    this.restart(this.transmitDelay());
  }

  /** NCR_SlewTimes: the local timestamps kept follow a clock change (UTI_AdjustTimespec). */
  slewTimes(when: Ns, dfreq: number, doffset: number): void {
    const adjust = (ts: Ns) => ts + BigInt(Math.round((secs(when, ts) * dfreq - doffset) * 1e9));
    if (this.lastTxLocal !== null) this.lastTxLocal = adjust(this.lastTxLocal);
    this.localTx = adjust(this.localTx);
  }

  /** Local time of the last request sent (T1). */
  get lastLocalTx(): Ns {
    return this.localTx;
  }
}
