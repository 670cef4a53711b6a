// The real chronyd after a pause, recorded in full: the guest's chronyd (server 10.0.2.2 iburst minpoll −1
// maxpoll −1, makestep 0.1 −1; init.ts) against the serve-only host chronyd, with its measurements,
// statistics, tracking and selection logs read line by line off the serial port and stamped with host
// time as they arrive. What the twin needs to replay the run — the guest's offset as chronyd starts,
// when it starts, when the pause begins and how long it lasts, the path's delays — comes from the same run.
import { InputError, type Ns } from '../core/index.ts';
import { bootLabGuest, labPauseOn, offsetNs, prepareSync, type LabRunOptions, type PauseResult } from './experiments.ts';
import { delay, hostRealtimeNs, type QemuGuest } from './qemu.ts';

export type ChronyLogName = 'measurements' | 'statistics' | 'tracking' | 'selection';

/** One line of a chronyd log file, `at_s` host seconds after `chrony-start` was acknowledged. */
export interface ChronyLogLine {
  at_s: number;
  log: ChronyLogName;
  text: string;
}

/** A step chronyd logged ("System clock was stepped by X seconds": X > 0 = the clock went forward). */
export interface ChronyStep {
  at_s: number;
  step_s: number;
}

export interface ChronyPauseRecord {
  /** How the record was made (command, chrony.conf, machine). */
  method: string;
  /** Guest REALTIME − host REALTIME just before chronyd started, s. */
  offset_at_start_s: number;
  /** Host seconds from `chrony-start` acknowledged to the pause's STOP and RESUME events (QMP timestamps). */
  stop_at_s: number;
  resume_at_s: number;
  /** Guest REALTIME − host REALTIME just before the pause, s. */
  offset_before_pause_s: number;
  /** Every step chronyd logged, before and after the pause. */
  steps: ChronyStep[];
  /** chronyd's log lines (measurements: one per NTP sample, in order). */
  logs: ChronyLogLine[];
  /** The pause experiment's own result (lag, error after sync, time to sync). */
  pause: PauseResult['real'];
}

const STEP_RE = /System clock was stepped by (-?[0-9.]+) seconds/;

/**
 * Which log a line is from, by its fields (the guest writes all four into one FIFO): chrony 4.3's
 * formats in ntp_core.c (measurements), sourcestats.c (statistics), reference.c (tracking) and
 * sources.c (selection). Banners and headers: null.
 */
export function chronyLogOf(text: string): ChronyLogName | null {
  const f = text.trim().split(/\s+/);
  if (!/^\d{4}-\d\d-\d\d$/.test(f[0] ?? '')) return null;
  if (f.length >= 16 && /^[01]{3}$/.test(f[5]!) && /^[01]{4}$/.test(f[7]!)) return 'measurements';
  if (f.length === 10 && /^[*+\-?xWDSJ~MNTUBPOsLR]$/.test(f[3]!)) return 'selection';
  if (f.length === 13) return 'statistics';
  if (f.length === 14 && /^[N+\-?]$/.test(f[7]!)) return 'tracking';
  return null;
}

/** One run on a booted guest with networking and no chronyd yet: start chronyd, let it sync, pause, let it re-sync. */
export async function labChronyPauseOn(guest: QemuGuest, seconds: number): Promise<ChronyPauseRecord> {
  if (!guest.started.has('net')) await guest.ok('net-up');
  guest.started.add('net');
  guest.drain('chrony');
  guest.drain('chronylog');
  const atStart = await guest.clock();
  const prep = await prepareSync(guest, 'ntp');
  let pause: PauseResult;
  let t0: Ns;
  let stopNs: Ns = 0n;
  let resumeNs: Ns = 0n;
  const lines: { at: bigint; tag: string; text: string }[] = [];
  const keep = (tag: string) => {
    for (const m of guest.drain(tag)) if (m.kind === 'line') lines.push({ at: m.at ?? 0n, tag, text: m.text });
  };
  try {
    t0 = prep.startedAt ?? hostRealtimeNs();
    keep('chrony');
    keep('chronylog');
    pause = await labPauseOn(guest, seconds, 'ntp', {
      chronyLine: (m) => lines.push({ at: m.at ?? 0n, tag: 'chrony', text: m.text }),
      pauseTimes: (stop, resume) => {
        stopNs = stop;
        resumeNs = resume;
      },
    });
    await delay(1_000); // the last lines of the logs
    keep('chrony');
    keep('chronylog');
  } finally {
    await prep.close();
  }
  const rel = (at: bigint) => Number(at - t0) / 1e9;
  const steps: ChronyStep[] = [];
  const logs: ChronyLogLine[] = [];
  for (const l of lines) {
    if (l.tag === 'chrony') {
      const m = STEP_RE.exec(l.text);
      if (m) steps.push({ at_s: rel(l.at), step_s: Number(m[1]) });
    } else {
      const log = chronyLogOf(l.text);
      if (log) logs.push({ at_s: rel(l.at), log, text: l.text });
    }
  }
  return {
    method: `timevisor lab chrony --seconds ${seconds}`,
    offset_at_start_s: Number(offsetNs(atStart)) / 1e9,
    stop_at_s: rel(stopNs),
    resume_at_s: rel(resumeNs),
    offset_before_pause_s: pause.real.offset_before_s,
    steps,
    logs,
    pause: pause.real,
  };
}

/** Boot a guest with networking, record one chrony pause run, stop everything. */
export async function labChronyPause(seconds: number, opts: LabRunOptions = {}): Promise<ChronyPauseRecord> {
  const guest = await bootLabGuest({ network: true, lifetimeMs: 240_000 + seconds * 1000, ...opts });
  try {
    opts.progress?.('starting chronyd on the host and in the guest');
    return await labChronyPauseOn(guest, seconds);
  } finally {
    await guest.close();
  }
}

/**
 * A saved record (`timevisor lab chrony --json`'s `real`, or the record itself), checked field by field;
 * `where` names the file for the error.
 */
export function parseChronyPauseRecord(text: string, where: string): ChronyPauseRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(`not JSON: ${(e as Error).message}`, where);
  }
  const o = (v && typeof v === 'object' && 'real' in v ? (v as { real: unknown }).real : v) as Record<string, unknown> | null;
  if (!o || typeof o !== 'object') throw new InputError('expected a chrony pause record (an object)', where);
  for (const k of ['offset_at_start_s', 'stop_at_s', 'resume_at_s', 'offset_before_pause_s'] as const)
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) throw new InputError(`${k}: expected a number`, where);
  if (!Array.isArray(o.steps) || !o.steps.every((x) => typeof x?.at_s === 'number' && typeof x?.step_s === 'number'))
    throw new InputError('steps: expected [{at_s, step_s}, …]', where);
  if (
    !Array.isArray(o.logs) ||
    !o.logs.every((x) => typeof x?.at_s === 'number' && typeof x?.log === 'string' && typeof x?.text === 'string')
  )
    throw new InputError('logs: expected [{at_s, log, text}, …]', where);
  if (!o.logs.some((x: ChronyLogLine) => x.log === 'measurements')) throw new InputError('logs: no measurements-log line', where);
  if (!((o.resume_at_s as number) > (o.stop_at_s as number))) throw new InputError('resume_at_s: expected after stop_at_s', where);
  return o as unknown as ChronyPauseRecord;
}
