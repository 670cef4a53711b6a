// The twin of one recorded chrony pause run (chrony-pause.ts): the chronyd model (src/guest/chrony) with
// the lab guest's chrony.conf (server iburst minpoll −1 maxpoll −1, makestep 0.1 −1), on a guest
// timekeeper whose clocksource counter stands still while QEMU is stopped (under TCG vm_stop →
// cpu_disable_ticks freezes the guest TSC: softmmu/cpu-timers.c), against a server on the host's clock.
// The run's own facts drive it: the guest's offset as chronyd starts, when chronyd starts, the STOP and
// RESUME instants, and the round-trip delay of each exchange (the k-th request of the twin crosses the
// path in the k-th measured delay, half each way). Everything else is the model's own doing.
import { Engine, NSEC_PER_SEC, type Ns } from '../core/index.ts';
import { Chronyd, standaloneTimekeeper, type NtpServerLink } from '../guest/index.ts';
import type { ChronyPauseRecord, ChronyStep } from './chrony-pause.ts';

/** The lab guest's chrony.conf (src/lab/init.ts chrony_start). */
export const LAB_CHRONY = { iburst: true, minpoll: -1, maxpoll: -1, makestep: { threshold: 0.1, limit: -1 } } as const;
/** chronyd's INITIAL_DELAY (ntp_core.c): its first request goes out 0.2 s after it starts. */
const INITIAL_DELAY_S = 0.2;
/** iburst: 4 good samples at MIN(2 s, 2^poll / 4) apart (ntp_core.c; the lab's polls are under 8 s). */
const BURST_POLL_RATIO = 0.25;
const IBURST_GOOD = 4;
/** An arbitrary epoch for the twin's host clock (2026-01-01). */
const EPOCH = 1_767_225_600n * NSEC_PER_SEC;

export interface ChronyTwinInput {
  /** Guest REALTIME − host REALTIME as chronyd starts, s. */
  offset_at_start_s: number;
  /** Host seconds (from `chrony-start` acknowledged) at which chronyd starts. */
  start_s: number;
  stop_at_s: number;
  resume_at_s: number;
  /** Round-trip delay of each exchange in order, s. */
  delays_s: number[];
  /** Replay: host seconds each request went out (the twin's poll timer decides when absent). */
  requests_s?: number[];
  /**
   * Replay: the offset chronyd measured in each exchange (NTP sign), s. The path's asymmetry is then
   * chosen so the twin measures the same offset as far as a path can make it: the request leg longer or
   * shorter than half the delay by at most half the delay (an offset error beyond δ/2 is impossible).
   */
  offsets_s?: number[];
  /** Run until this host second. */
  until_s: number;
  /** The guest clock's rate error against the host, ppm (0: none). */
  ppm?: number;
}

/** One sample as the twin's chronyd took it, with its regression after it (a statistics-log line's figures). */
export interface ChronyTwinSample {
  at_s: number;
  /** The offset chronyd measured (NTP sign: + = guest slow), s. */
  offset_s: number;
  delay_s: number;
  /** The regression after the sample: samples kept, estimated offset (+ = guest fast), frequency, sd. */
  n: number;
  est_offset_s: number;
  freq: number;
  std_dev_s: number;
}

export interface ChronyTwinResult {
  steps: ChronyStep[];
  samples: ChronyTwinSample[];
  /** Guest REALTIME − host REALTIME at the end, s. */
  final_offset_s: number;
}

/** A measurements-log line: date time IP L St tests tests tests LP RP score offset delay disp … */
export function parseMeasurement(text: string): { offset_s: number; delay_s: number; dispersion_s: number; local_poll: number } | null {
  const f = text.trim().split(/\s+/);
  if (f.length < 16 || !/^\d{4}-\d\d-\d\d$/.test(f[0]!)) return null;
  return { offset_s: Number(f[11]), delay_s: Number(f[12]), dispersion_s: Number(f[13]), local_poll: Number(f[8]) };
}

/**
 * The twin's input from a record. chronyd writes a tracking line ("0.0.0.0", unsynchronised) as it starts:
 * that is its start; without it, INITIAL_DELAY + a round trip before its first sample. Each sample's
 * lines come in chronyd's order (statistics, selection, tracking, then its measurements line): the first
 * of them arrived closest to the reply, so the request went out one round trip before it.
 */
export function twinInput(r: ChronyPauseRecord, replaySchedule = true, lateness = 1): ChronyTwinInput {
  const rows: { at: number; m: NonNullable<ReturnType<typeof parseMeasurement>> }[] = [];
  let startAt: number | null = null;
  let firstAt: number | null = null;
  for (const l of r.logs) {
    if (startAt === null && rows.length === 0 && l.log === 'tracking' && / 0\.0\.0\.0 /.test(l.text)) {
      startAt = l.at_s;
      continue;
    }
    firstAt ??= l.at_s;
    if (l.log !== 'measurements') continue;
    const m = parseMeasurement(l.text);
    if (m) rows.push({ at: firstAt, m });
    firstAt = null;
  }
  if (rows.length === 0) throw new Error('the record holds no measurements-log lines');
  const first = rows[0]!;
  const start = startAt ?? first.at - first.m.delay_s - INITIAL_DELAY_S;
  // When each request went out. chronyd's schedule puts request k + 1 at least an interval after reply k:
  // the interval of the poll it logged (LP), 2^LP / 4 during iburst's 4 good samples, else 2^LP — a
  // timeout on the guest clock, so it stretches by the pause when it runs across it — and the first
  // INITIAL_DELAY after the start. A sample's lines reach the host a few ms after its reply, or later when
  // the guest stalls or its lines queue on the serial port (under TCG, up to ~1 s for the first samples),
  // so `arrival − delay` only bounds the request from above, and so does the next request less this
  // interval. `lateness` places each request between the earliest instant chronyd's schedule allowed (0)
  // and the latest the arrivals allow (1).
  const pause = r.resume_at_s - r.stop_at_s;
  const gap = (k: number, reply: number) => {
    const m = rows[k]!.m;
    const interval = 2 ** m.local_poll * (k + 1 < IBURST_GOOD ? BURST_POLL_RATIO : 1);
    return reply < r.stop_at_s && reply + interval > r.stop_at_s ? interval + pause : interval;
  };
  const upper = rows.map((x) => x.at - x.m.delay_s);
  for (let k = rows.length - 2; k >= 0; k--) {
    const reply = upper[k]! + rows[k]!.m.delay_s;
    upper[k] = Math.min(upper[k]!, upper[k + 1]! - gap(k, reply) - rows[k]!.m.delay_s);
  }
  const requests: number[] = [];
  for (let k = 0; k < rows.length; k++) {
    const reply = k > 0 ? requests[k - 1]! + rows[k - 1]!.m.delay_s : 0;
    const lower = k === 0 ? start + INITIAL_DELAY_S : reply + gap(k - 1, reply);
    requests.push(lower + lateness * Math.max(0, upper[k]! - lower));
  }
  return {
    offset_at_start_s: r.offset_at_start_s,
    start_s: start,
    stop_at_s: r.stop_at_s,
    resume_at_s: r.resume_at_s,
    delays_s: rows.map((x) => x.m.delay_s),
    ...(replaySchedule ? { requests_s: requests, offsets_s: rows.map((x) => x.m.offset_s) } : {}),
    until_s: rows[rows.length - 1]!.at + 0.25,
  };
}

const ns = (s: number): Ns => BigInt(Math.round(s * 1e9));

export function chronyPauseTwin(inp: ChronyTwinInput): ChronyTwinResult {
  const engine = new Engine();
  const stop = ns(inp.stop_at_s);
  const resume = ns(inp.resume_at_s);
  const ppb = BigInt(Math.round((inp.ppm ?? 0) * 1000));
  // the guest's counter: host time minus the time QEMU was stopped, at the guest's rate error
  const counter = (t: Ns): Ns => {
    const run = t <= stop ? t : t < resume ? stop : t - (resume - stop);
    return run + (run * ppb) / 1_000_000_000n;
  };
  const tk = standaloneTimekeeper({
    name: 'tsc',
    read: () => counter(engine.now),
    freq: 1_000_000_000,
    wallNs: EPOCH + ns(inp.offset_at_start_s),
  });
  const tick = engine.timer(() => {
    tk.advance();
    tick.armIn(4_000_000n); // HZ 250
  });
  tick.armIn(4_000_000n);

  const median = [...inp.delays_s].sort((a, b) => a - b)[inp.delays_s.length >> 1] ?? 0.001;
  const samples: ChronyTwinSample[] = [];
  let k = 0;
  let chronyd: Chronyd | null = null;
  const link: NtpServerLink = {
    name: 'host',
    exchange(reply) {
      const i = k++;
      const delay = inp.delays_s[i] ?? median;
      // the request and reply legs: half the delay each, or split to replay the real measurement
      let asym = 0;
      const want = inp.offsets_s?.[i];
      if (want !== undefined && chronyd) {
        const trueOffset = Number(EPOCH + engine.now - chronyd.local.readCooked()) / 1e9;
        asym = Math.max(-delay / 2, Math.min(delay / 2, want - trueOffset));
      }
      const leg1 = ns(delay / 2 + asym);
      const leg2 = ns(delay / 2 - asym);
      const send = () =>
        engine.after(leg1, () => {
          const t2 = EPOCH + engine.now;
          // a reply to a stopped VM waits in QEMU's net queue until the resume (net/net.c qemu_can_send_packet)
          const deliver = () => {
            reply({ receiveNs: t2, transmitNs: t2, stratum: 8, rootDelay: 0, rootDispersion: 0, precision: -25, refId: '7F7F0101' });
            const src = chronyd?.sources[0];
            if (!src?.lastSample || !src.lastRegression || src.samples === samples.length) return; // not taken (stopped, or a late reply)
            const g = src.lastRegression;
            samples.push({
              at_s: Number(engine.now) / 1e9,
              offset_s: src.lastSample.offset,
              delay_s: src.lastSample.peerDelay,
              n: g.n,
              est_offset_s: g.offset,
              freq: g.frequency,
              std_dev_s: g.stdDev,
            });
          };
          engine.after(leg2, () => (engine.now > stop && engine.now < resume ? engine.at(resume, deliver) : deliver()));
        });
      send();
    },
  };
  engine.at(ns(inp.start_s), () => {
    chronyd = new Chronyd({
      scheduler: engine,
      adjtimex: (txc) => tk.adjtimex(txc),
      readRaw: () => tk.get('realtime'),
      servers: [link],
      iburst: LAB_CHRONY.iburst,
      minpoll: LAB_CHRONY.minpoll,
      maxpoll: LAB_CHRONY.maxpoll,
      makestep: LAB_CHRONY.makestep,
      precision: 2 ** -23,
      ...(inp.requests_s ? { transmitTimes: [inp.requests_s.map(ns)] } : {}),
    });
    chronyd.start();
  });
  engine.at(stop, () => chronyd?.stop());
  engine.at(resume, () => chronyd?.resume());
  engine.run(ns(inp.until_s));
  const c = chronyd as Chronyd | null;
  const steps = (c?.adjustments ?? [])
    .filter((a) => a.kind === 'step')
    .map((a) => ({ at_s: Number(a.sinceStart) + inp.start_s, step_s: -a.offset }));
  return { steps, samples, final_offset_s: Number(tk.get('realtime') - EPOCH - engine.now) / 1e9 };
}

// ------------------------------------------------------------------------------------- real vs twin

/**
 * Tolerances of the real-vs-twin comparison, from 13 runs of `lab chrony --seconds 3` (8 kept in
 * test/lab/fixtures/chrony-pause, README there; 5 more at load average 13–18). Between real runs the same
 * quantity spreads widely — the first step after the pause was 0.13…3.02 s, the number of steps 3…6 —
 * because it hangs on how many samples chronyd held and where the pause fell between its polls. The twin
 * replays exactly that, and its first two steps came within 0.000…0.116 s of the real ones: the
 * tolerance is that worst case with a margin. It cannot be much tighter: the record pins each request
 * only between chronyd's schedule and its log line's arrival (twinInput), and moving the requests within
 * that range moves the steps by up to 0.1 s and more. From the third step on, real and twin part where one
 * of them steps a correction just above makestep's 0.1 s and the other slews it, so the number of steps
 * may differ by two (seen: 6 real, 4 twin) and the last step come up to 3 polls apart (1.04 s seen); the
 * sum of the steps after the pause — what was stepped rather than slewed — stays within 0.04 s.
 */
export const CHRONY_STEP_TOLERANCE_S = 0.15;
export const CHRONY_STEP_SUM_TOLERANCE_S = 0.1;
export const CHRONY_STEP_COUNT_TOLERANCE = 2;
export const CHRONY_LAST_STEP_TOLERANCE_S = 1.5;
/** The first steps after the pause compared one by one. */
export const CHRONY_STEPS_COMPARED = 2;

export interface ChronyCheck {
  quantity: string;
  real: number;
  twin: number;
  tolerance: number;
  ok: boolean;
}

export interface ChronyPauseComparison {
  /** Steps after the resume, s (+ = the clock went forward), and when (s after the resume). */
  real_steps: ChronyStep[];
  twin_steps: ChronyStep[];
  checks: ChronyCheck[];
  ok: boolean;
  twin: ChronyTwinResult;
}

export function compareChronyPause(r: ChronyPauseRecord): ChronyPauseComparison {
  const twin = chronyPauseTwin(twinInput(r));
  const after = (s: ChronyStep[]) =>
    s.filter((x) => x.at_s > r.resume_at_s).map((x) => ({ at_s: x.at_s - r.resume_at_s, step_s: x.step_s }));
  const real = after(r.steps);
  const tw = after(twin.steps);
  const checks: ChronyCheck[] = [];
  const check = (quantity: string, a: number, b: number, tolerance: number) =>
    checks.push({ quantity, real: a, twin: b, tolerance, ok: Math.abs(a - b) <= tolerance });
  check('steps after the pause', real.length, tw.length, CHRONY_STEP_COUNT_TOLERANCE);
  for (let i = 0; i < CHRONY_STEPS_COMPARED && i < real.length && i < tw.length; i++)
    check(`step ${i + 1}, s`, real[i]!.step_s, tw[i]!.step_s, CHRONY_STEP_TOLERANCE_S);
  const sum = (s: ChronyStep[]) => s.reduce((a, x) => a + x.step_s, 0);
  check('sum of the steps, s', sum(real), sum(tw), CHRONY_STEP_SUM_TOLERANCE_S);
  check('last step, s after the resume', real.at(-1)?.at_s ?? 0, tw.at(-1)?.at_s ?? 0, CHRONY_LAST_STEP_TOLERANCE_S);
  return { real_steps: real, twin_steps: tw, checks, ok: checks.every((c) => c.ok), twin };
}
