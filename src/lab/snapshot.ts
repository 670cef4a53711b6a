// `lab snapshot`: the real guest saved to a file, QEMU gone for N s, a new QEMU restoring it — and the
// measurements `lab migrate` shares: guest clocks on both sides of a move, QEMU's RTC against the host.
//
// How the state is saved (QEMU 7.2): QMP `stop`, then `migrate` to `exec:cat > FILE` (QEMU 7.2 has no
// `file:` URI — it answers "Parameter 'uri' expects a valid migration protocol"; migration/file.c came in
// 8.2), `quit`; later a new QEMU with the same command line and `-incoming exec:cat FILE`, then `cont`. This
// is libvirt's `virsh save`/`restore`: pause, migrate the stream into a file, a new process loads it. It
// goes through the same code as live migration (vmstate + migration/ram.c), needs no disk (the lab guest
// runs from an initramfs: `savevm` would need a qcow2 drive only to hold the state), and the restore is a
// new process, as the issue asks. What the stream carries for time, under TCG:
// - softmmu/cpu-timers.c `vmstate_timers`: cpu_ticks_offset (the guest TSC: cpu_get_tsc → cpu_get_ticks,
//   target/i386/tcg/misc_helper.c helper_rdtsc) and cpu_clock_offset (QEMU_CLOCK_VIRTUAL: HPET, PIT, LAPIC
//   timer), frozen by cpu_disable_ticks at the stop; the destination's vm_start → cpu_enable_ticks resumes
//   them from those values. So every guest clocksource stands still from the source's STOP to the
//   destination's RESUME, exactly as across a pause.
// - hw/rtc/mc146818rtc.c `vmstate_rtc` v3: base_rtc and last_update (on rtc_clock = QEMU_CLOCK_HOST, the
//   `-rtc clock=host` default); rtc_post_load recomputes nothing for version 3 on the host clock, so the
//   RTC keeps following the host's REALTIME through the gap, with the same phase.
import { mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, UnavailableError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { MACHINE, bootLabGuest, offsetNs, prepareSync, waitNtpSynced, type LabRunOptions } from './experiments.ts';
import { delay, hostRealtimeNs, QemuGuest, type TimedSample } from './qemu.ts';
import type { QmpClient, QmpEvent } from './qmp.ts';
import { parseScenarioText, simulate } from '../world/index.ts';
import { modelPause, type SyncMode } from './twin.ts';

const NS = 1_000_000_000n;
const s = (ns: bigint): number => Number(ns) / 1e9;

// ---------------------------------------------------------------------------------- shared measurement

/** What the guest saw across a move (snapshot gap or migration downtime): one side, real or model. */
export interface MoveSide {
  /** Guest REALTIME − host REALTIME before the move minus the same right after it. */
  realtime_lag_after_resume_s: number;
  /** Guest CLOCK_MONOTONIC advance while the VM was not running (host STOP → RESUME). */
  monotonic_advance_during_gap_s: number;
  boottime_advance_during_gap_s: number;
  /** Change of QEMU's RTC − host REALTIME across the move (0: the RTC kept following the host). */
  rtc_change_s: number;
  error_after_sync_s: number;
  sync_done_at_s: number | null;
}

/** The twin's answer with the world scenario it simulated (YAML, so a user can run it: `timevisor run`). */
export interface MoveModel extends MoveSide {
  scenario: string;
  verdicts: string[];
}

/**
 * The twin: the world simulation (`simulate()`, vmm profile `qemu-tcg`, kernel preset `debian12`) of the
 * same move — `vms[].snapshots` with `restore_after` = QEMU's measured STOP → RESUME interval, or
 * `vms[].migrations` with that `downtime` (to the same host: both QEMUs run on this machine). The twin's
 * guest starts from the real guest's offset (`initial_offset`), so its verdicts read the same numbers.
 * Filled in beside it:
 * - BOOTTIME: MONOTONIC + offs_boot, which only a suspend inside the guest moves (none here).
 * - the RTC: the summary has no RTC; QEMU's mc146818 vmstate v3 on the host clock keeps base_rtc and
 *   last_update (hw/rtc/mc146818rtc.c rtc_post_load), so RTC − host does not change.
 * - `ntp`: the pause twin's rule stands in (one step at the first 0.5 s poll after the resume, twin.ts
 *   modelPause); the chrony model itself, replaying a run, is `lab chrony` (chrony-twin.ts).
 * `agent` runs the world's agent sync with agent_delay 0 (the lab sends guest-set-time at once).
 */
export function twinMoveQemuTcg(inp: { kind: 'snapshot' | 'migration'; gapNs: Ns; offsetBeforeNs: Ns; sync: SyncMode }): MoveModel {
  const AT_S = 30; // the lab guest has run about this long when it is moved; the TCG freeze does not depend on it
  const move =
    inp.kind === 'snapshot'
      ? `snapshots: [{ at: ${AT_S}s, restore_after: ${inp.gapNs}ns }]`
      : `migrations: [{ at: ${AT_S}s, to: lab, downtime: ${inp.gapNs}ns }]`;
  const scenario = [
    `name: lab-${inp.kind}-twin`,
    `duration: ${BigInt(AT_S + 10) * NS + inp.gapNs}ns`,
    'sample_interval: 10s',
    'hosts:',
    '  - { name: lab, tsc: { freq_khz: 2596136 } }',
    'vms:',
    '  - name: guest',
    '    host: lab',
    '    profile: qemu-tcg',
    '    kernel: debian12',
    `    initial_offset: "${inp.offsetBeforeNs < 0n ? '-' : '+'}${inp.offsetBeforeNs < 0n ? -inp.offsetBeforeNs : inp.offsetBeforeNs}ns"`,
    `    ${move}`,
    `    sync: { method: ${inp.sync === 'agent' ? 'agent, agent_delay: 0s' : 'none'} }`,
    '',
  ].join('\n');
  const vm = simulate(parseScenarioText(scenario, `lab ${inp.kind} twin`)).summary.vms[0]!;
  const moved = vm.events.find((e) => e.kind === (inp.kind === 'snapshot' ? 'restore' : 'migration'));
  if (!moved || moved.offset_after_ns === null || moved.monotonic_advance_ns === null)
    throw new Error(`the ${inp.kind} twin reported no ${inp.kind === 'snapshot' ? 'restore' : 'migration'} event`);
  const changeNs = BigInt(moved.offset_after_ns) - BigInt(moved.offset_before_ns);
  const mono = Number(moved.monotonic_advance_ns) / 1e9;
  const sync = vm.events.find((e) => e.kind === 'sync' && e.at_s >= moved.at_s);
  let error = s(BigInt(moved.offset_after_ns));
  let doneAt: number | null = null;
  if (inp.sync === 'agent') {
    if (!sync || sync.offset_after_ns === null) throw new Error('the snapshot twin reported no agent sync');
    error = s(BigInt(sync.offset_after_ns));
    doneAt = Math.round((sync.at_s - moved.at_s) * 1e6) / 1e6;
  } else if (inp.sync === 'ntp') {
    const p = modelPause({ pauseNs: inp.gapNs, offsetBeforeNs: inp.offsetBeforeNs, sync: 'ntp' });
    error = p.error_after_sync_s;
    doneAt = p.sync_done_at_s;
  }
  return {
    realtime_lag_after_resume_s: s(-changeNs),
    monotonic_advance_during_gap_s: mono,
    boottime_advance_during_gap_s: mono,
    rtc_change_s: 0,
    error_after_sync_s: error,
    sync_done_at_s: doneAt,
    scenario,
    verdicts: vm.events.filter((e) => e.at_s >= AT_S).map((e) => `${e.kind} at ${e.at_s} s: ${e.verdict}`),
  };
}

/**
 * The clock sample with the shortest serial round trip of `n`: its host time is the best known. After a
 * restore the new QEMU's translation cache is empty and the guest's first answers are slow (measured:
 * tens of ms), which would put the read late in its round trip.
 */
export async function bestClockSample(guest: QemuGuest, n = 3): Promise<TimedSample> {
  let best: TimedSample | null = null;
  for (let i = 0; i < n; i++) {
    const t = await guest.clock();
    if (!best || t.hostRecvNs - t.hostSentNs < best.hostRecvNs - best.hostSentNs) best = t;
  }
  return best!;
}

/** QMP `qom-get /machine rtc-time` (hw/i386/pc.c aliases it to the mc146818 "date": a struct tm, UTC). */
async function rtcSeconds(qmp: QmpClient): Promise<bigint> {
  const tm = (await qmp.execute('qom-get', { path: '/machine', property: 'rtc-time' })) as Record<string, number>;
  const ms = Date.UTC(tm.tm_year! + 1900, tm.tm_mon!, tm.tm_mday!, tm.tm_hour!, tm.tm_min!, tm.tm_sec!);
  return BigInt(ms / 1000);
}

/**
 * QEMU's RTC − host REALTIME, ns, at an instant the RTC's seconds ticked over (found by polling rtc-time:
 * at the tick the RTC shows exactly its new second). The tick lies between the start of the last read
 * showing the old second and the end of the first showing the new one: its uncertainty is half that
 * window. A loaded host can stretch the window to tens of ms, so up to `attempts` ticks are timed and
 * the tightest kept. Reads the device through QMP only: nothing runs in the guest, which never writes
 * its RTC here.
 */
export async function rtcMinusHostNs(
  guest: QemuGuest,
  { attempts = 3, goodEnoughNs = 2_000_000n } = {},
): Promise<{ ns: bigint; uncertaintyNs: bigint }> {
  const qmp = await guest.qmp();
  let best: { ns: bigint; uncertaintyNs: bigint } | null = null;
  for (let i = 0; i < attempts && !(best && best.uncertaintyNs <= goodEnoughNs); i++) {
    const deadline = Date.now() + 2_500;
    let prev: { sec: bigint; before: bigint } | null = null;
    while (Date.now() < deadline) {
      const before = hostRealtimeNs();
      const sec = await rtcSeconds(qmp);
      const after = hostRealtimeNs();
      if (prev && sec === prev.sec + 1n) {
        const tick = (prev.before + after) / 2n;
        const m = { ns: sec * NS - tick, uncertaintyNs: (after - prev.before) / 2n };
        if (!best || m.uncertaintyNs < best.uncertaintyNs) best = m;
        break;
      }
      prev = { sec, before }; // (after a read slower than a second, a jump of 2 s: start over from here)
    }
  }
  if (!best) throw new UnavailableError("QEMU's RTC did not tick", 'rtc-time unchanged for 2.5 s');
  return best;
}

/** A QMP event's timestamp (host REALTIME, µs) in ns, or null. */
export function eventTimeNs(events: readonly QmpEvent[], name: string, from = 0): bigint | null {
  const e = events.slice(from).find((x) => x.event === name);
  if (!e?.timestamp) return null;
  return BigInt(e.timestamp.seconds) * NS + BigInt(e.timestamp.microseconds) * 1_000n;
}

export interface MigrateStatus {
  status: string;
  'error-desc'?: string;
  'total-time'?: number;
  downtime?: number;
  'setup-time'?: number;
  ram?: { transferred?: number; total?: number; 'dirty-sync-count'?: number };
}

/** Poll query-migrate on the source until it completes; a failure is thrown with QEMU's reason. */
export async function waitMigration(qmp: QmpClient, timeoutMs: number, what: string): Promise<MigrateStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = (await qmp.execute('query-migrate')) as MigrateStatus;
    if (m.status === 'completed') return m;
    if (m.status === 'failed' || m.status === 'cancelled')
      throw new UnavailableError(`${what} ${m.status}`, m['error-desc'] ?? 'QEMU gave no reason');
    if (Date.now() > deadline) throw new UnavailableError(`${what} did not complete`, `status ${m.status} after ${timeoutMs} ms`);
    await delay(50);
  }
}

/** Wait until an incoming QEMU has loaded the stream (query-status leaves "inmigrate"). */
export async function waitIncoming(dest: QemuGuest, timeoutMs: number): Promise<string> {
  const qmp = await dest.qmp();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await qmp.queryStatus();
    if (st.status !== 'inmigrate') return st.status;
    if (!dest.running || Date.now() > deadline)
      throw new UnavailableError('the destination QEMU did not load the migration stream', dest.stderr.join('').trim() || 'no stderr');
    await delay(50);
  }
}

/** A private temp dir, removed on every path (also at process exit, e.g. after SIGINT). */
export function privateDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', remove);
  return {
    dir,
    remove: () => {
      process.removeListener('exit', remove);
      remove();
    },
  };
}

/** A guest sample pair around a move, reduced to the quantities of MoveSide. */
export function clocksAcross(before: TimedSample, after: TimedSample, gapNs: Ns) {
  const running = after.hostMidNs - before.hostMidNs - gapNs;
  return {
    lagNs: offsetNs(before) - offsetNs(after),
    monoAdvanceNs: after.guest.monotonicNs - before.guest.monotonicNs - running,
    bootAdvanceNs: after.guest.boottimeNs - before.guest.boottimeNs - running,
  };
}

/** The real side of a move: the samples around it, the RTC's change, and the guest's error once synced (`final`). */
export function realMoveSide(
  before: TimedSample,
  after: TimedSample,
  gapNs: Ns,
  rtcChangeNs: Ns,
  final: TimedSample,
  syncDoneAt: number | null,
): MoveSide {
  const across = clocksAcross(before, after, gapNs);
  return {
    realtime_lag_after_resume_s: s(across.lagNs),
    monotonic_advance_during_gap_s: s(across.monoAdvanceNs),
    boottime_advance_during_gap_s: s(across.bootAdvanceNs),
    rtc_change_s: s(rtcChangeNs),
    error_after_sync_s: s(offsetNs(final)),
    sync_done_at_s: syncDoneAt,
  };
}

// ------------------------------------------------------------------------------------------- snapshot

export interface SnapshotResult {
  machine: string;
  method: string;
  /** Requested time with no QEMU running: from the source's exit to the new QEMU's start. */
  seconds: number;
  sync: SyncMode;
  real: MoveSide & {
    /** QEMU's STOP (source) → RESUME (destination), host time: what the twin is given. */
    gap_host_s: number;
    save_s: number;
    load_s: number;
    state_bytes: number;
    offset_before_s: number;
    rtc_uncertainty_s: number;
    sample_rtt_s: number;
    notes: string[];
  };
  model: MoveModel;
}

/** Where `exec:` hands the path to /bin/sh: keep it to characters that need no quoting beyond '…'. */
function shellPath(p: string): string {
  if (p.includes("'")) throw new InputError(`the temp dir path ${p} contains a quote`, 'TMPDIR');
  return `'${p}'`;
}

/**
 * Save the booted `guest` to a file, quit its QEMU, wait `seconds`, restore it in a new QEMU and compare
 * the guest's clocks. The caller keeps owning `guest` (close() is safe after the quit here) and owns the
 * returned destination; on an error any destination started here is closed.
 */
export async function labSnapshotOn(
  guest: QemuGuest,
  seconds: number,
  sync: SyncMode,
  opts: { destLifetimeMs?: number } & LabRunOptions = {},
): Promise<{ result: SnapshotResult; guest: QemuGuest }> {
  if (!(seconds > 0 && seconds <= 600)) throw new InputError(`--seconds must be in (0, 600], got ${seconds}`, '--seconds');
  const tmp = privateDir('timevisor-snapshot-');
  let dest: QemuGuest | null = null;
  try {
    const file = join(tmp.dir, 'vm.state');
    const notes: string[] = [];
    guest.drain('chrony');
    const qmp = await guest.qmp();
    const rtcBefore = await rtcMinusHostNs(guest);
    const before = await bestClockSample(guest);
    const nEvents = qmp.events.length;
    opts.progress?.('saving the VM state (QMP stop, migrate exec:cat > FILE)');
    await qmp.stop();
    const saveStart = hostRealtimeNs();
    // Written under a temporary name and renamed once QEMU reports the stream complete.
    await qmp.execute('migrate', { uri: `exec:cat > ${shellPath(file + '.part')}` });
    const mig = await waitMigration(qmp, 120_000, 'saving the VM state');
    const saveNs = hostRealtimeNs() - saveStart;
    renameSync(file + '.part', file);
    const stateBytes = statSync(file).size;
    const stopNs = eventTimeNs(qmp.events, 'STOP', nEvents);
    await guest.close();
    opts.progress?.(`no QEMU for ${seconds} s`);
    await delay(seconds * 1000);
    opts.progress?.('restoring in a new QEMU (-incoming exec:cat FILE)');

    const loadStart = hostRealtimeNs();
    dest = new QemuGuest({ ...guest.options, incoming: `exec:cat ${shellPath(file)}`, lifetimeMs: opts.destLifetimeMs ?? 240_000 });
    for (const x of guest.started) dest.started.add(x);
    const dq = await dest.qmp();
    const status = await waitIncoming(dest, 120_000);
    const loadNs = hostRealtimeNs() - loadStart;
    // The state says "paused" (global_state: the source was stopped), so the destination waits for cont.
    if (status !== 'paused') notes.push(`destination status after load: ${status}`);
    await dq.cont();
    const after = await bestClockSample(dest);
    const resumeNs = eventTimeNs(dq.events, 'RESUME');
    if (stopNs === null || resumeNs === null) throw new UnavailableError('QEMU sent no STOP/RESUME event', 'cannot time the gap');
    const gapNs = resumeNs - stopNs;
    const rtcAfter = await rtcMinusHostNs(dest);

    let final = after;
    let doneAt: number | null = null;
    if (sync === 'agent') {
      const qga = await dest.qga(); // a new socket to the same qemu-ga: resynchronise the stream first
      await qga.sync(30_000);
      await qga.setTime(hostRealtimeNs());
      doneAt = s(hostRealtimeNs() - resumeNs);
      final = await dest.clock();
    } else if (sync === 'ntp') {
      final = await waitNtpSynced(dest, 90_000, 4);
      doneAt = s(final.hostMidNs - resumeNs);
      for (const m of dest.drain('chrony')) if (m.kind === 'line') notes.push(`chronyd: ${m.text}`);
    }
    notes.push(
      `QEMU: migrate total ${mig['total-time'] ?? '?'} ms, ${mig.ram?.transferred ?? '?'} bytes of RAM stream, ${mig.ram?.['dirty-sync-count'] ?? '?'} dirty syncs`,
    );
    const rtt = [before, after, final].map((t) => t.hostRecvNs - t.hostSentNs).reduce((a, b) => (a > b ? a : b));
    return {
      guest: dest,
      result: {
        machine: MACHINE,
        method: 'QMP stop; migrate exec:cat > FILE; quit — N s later a new QEMU -incoming exec:cat FILE; cont',
        seconds,
        sync,
        real: {
          ...realMoveSide(before, after, gapNs, rtcAfter.ns - rtcBefore.ns, final, doneAt),
          gap_host_s: s(gapNs),
          save_s: s(saveNs),
          load_s: s(loadNs),
          state_bytes: stateBytes,
          offset_before_s: s(offsetNs(before)),
          rtc_uncertainty_s: s(rtcBefore.uncertaintyNs + rtcAfter.uncertaintyNs),
          sample_rtt_s: s(rtt),
          notes,
        },
        model: twinMoveQemuTcg({ kind: 'snapshot', gapNs, offsetBeforeNs: offsetNs(before), sync }),
      },
    };
  } catch (e) {
    await dest?.close();
    throw e;
  } finally {
    tmp.remove();
  }
}

/** Boot a guest, prepare the sync, snapshot it for `seconds`, and stop every process on every path. */
export async function labSnapshot(seconds: number, sync: SyncMode, opts: LabRunOptions = {}): Promise<SnapshotResult> {
  const lifetimeMs = 240_000 + seconds * 1000;
  const src = await bootLabGuest({ network: sync === 'ntp', lifetimeMs, ...opts });
  let dest: QemuGuest | null = null;
  try {
    const prep = await prepareSync(src, sync);
    try {
      const r = await labSnapshotOn(src, seconds, sync, { destLifetimeMs: 240_000, ...opts });
      dest = r.guest;
      return r.result;
    } finally {
      await prep.close();
    }
  } finally {
    await src.close();
    await dest?.close();
  }
}
