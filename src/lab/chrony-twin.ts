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
/** chronyd's timer latency under TCG (its 0.5 s polls come 0.52 s apart), and a gap between serial lines that means queueing. */
const REPLAY_SLACK_S = 0.02;
const QUEUED_S = 0.05;
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
export function twinInput(r: ChronyPauseRecord, replaySchedule = true): ChronyTwinInput {
  const rows: { at: number; lastAt: number; m: NonNullable<ReturnType<typeof parseMeasurement>> }[] = [];
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
    if (m) rows.push({ at: firstAt, lastAt: l.at_s, m });
    firstAt = null;
  }
  if (rows.length === 0) throw new Error('the record holds no measurements-log lines');
  const first = rows[0]!;
  const start = startAt ?? first.at - first.m.delay_s - INITIAL_DELAY_S;
  // chronyd's schedule bounds each request from below: INITIAL_DELAY after the start, then after each
  // reply the interval of the poll it logged (LP): 2^LP / 4 during iburst's 4 good samples, else 2^LP — a
  // timeout on the guest clock, so one due during the pause comes due that much later. A sample's first
  // line arrives a few ms after its reply (`arrival − delay` is the request), unless it queued behind the
  // previous sample's lines on the serial port (it arrives within QUEUED_S of them; the first samples
  // under TCG, by up to 0.3 s): then the request is taken REPLAY_SLACK_S after the lower bound.
  const pause = r.resume_at_s - r.stop_at_s;
  const requests: number[] = [];
  for (let k = 0; k < rows.length; k++) {
    let lower = start + INITIAL_DELAY_S;
    if (k > 0) {
      const prev = rows[k - 1]!.m;
      const interval = 2 ** prev.local_poll * (k < IBURST_GOOD ? BURST_POLL_RATIO : 1);
      const reply = requests[k - 1]! + prev.delay_s;
      lower = reply + interval;
      if (reply < r.stop_at_s && lower > r.stop_at_s) lower += pause;
    }
    const upper = rows[k]!.at - rows[k]!.m.delay_s;
    const queued = k === 0 || rows[k]!.at - rows[k - 1]!.lastAt < QUEUED_S;
    requests.push(queued ? Math.min(Math.max(lower, upper), lower + REPLAY_SLACK_S) : Math.max(lower, upper));
  }
  return {
    offset_at_start_s: r.offset_at_start_s,
    start_s: start,
    stop_at_s: r.stop_at_s,
    resume_at_s: r.resume_at_s,
    delays_s: rows.map((x) => x.m.delay_s),
    ...(replaySchedule ? { requests_s: requests } : {}),
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
      const half = ns((inp.delays_s[k++] ?? median) / 2);
      const send = () =>
        engine.after(half, () => {
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
          engine.after(half, () => (engine.now > stop && engine.now < resume ? engine.at(resume, deliver) : deliver()));
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
 * Tolerances of the real-vs-twin comparison, from the recorded runs in test/lab/fixtures/chrony-pause
 * (README there). Between real runs the same quantity spreads widely — the first step after a 3 s pause
 * was 0.22…3.02 s, the number of steps 4…6 — because it hangs on how many samples chronyd held and where
 * the pause fell between its polls; the twin replays exactly that, and its first three steps came within
 * 0.003…0.115 s of the real ones. The step tolerance is that worst case with a margin for timing the
 * requests from serial-line arrivals (a few ms, times chronyd's post-pause frequency estimate of up to
 * 3.3 s/s: ±0.03 s). The sum of the steps after the pause (what was not slewed) is tighter; the count may
 * differ by one where one real step was just above makestep's 0.1 s and the twin slewed it (b6); the
 * last step may come a poll or two apart (the real polls come 0.5 + 0.00…0.21 s apart under TCG).
 */
export const CHRONY_STEP_TOLERANCE_S = 0.15;
export const CHRONY_STEP_SUM_TOLERANCE_S = 0.1;
export const CHRONY_STEP_COUNT_TOLERANCE = 1;
export const CHRONY_LAST_STEP_TOLERANCE_S = 1.0;
/** The first steps after the pause compared one by one (after them the runs diverge through sub-ms noise). */
export const CHRONY_STEPS_COMPARED = 3;

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
