// `lab migrate`: live migration of the real guest between two QEMU processes on this machine, over a
// unix socket: the destination starts with the source's command line plus `-incoming unix:PATH`, the
// source gets `migrate-set-parameters downtime-limit` and `migrate unix:PATH`. QEMU copies RAM while the
// guest runs, then stops it (migration_completion → vm_stop_force_state: the STOP event), sends the rest
// and the device state, and the destination starts it (the source was running: autostart, RESUME). Under
// TCG the guest's clocks stand still over that stop-and-copy, as over a pause (snapshot.ts explains the
// stream's timer and RTC state); the downtime-limit is only QEMU's target for it, the twin takes the
// measured STOP → RESUME interval.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, UnavailableError } from '../core/index.ts';
import { MACHINE, bootLabGuest, offsetNs, type LabRunOptions } from './experiments.ts';
import { delay, QemuGuest } from './qemu.ts';
import {
  bestClockSample,
  eventTimeNs,
  privateDir,
  realMoveSide,
  rtcMinusHostNs,
  waitIncoming,
  waitMigration,
  twinMoveQemuTcg,
  type MoveModel,
  type MoveSide,
} from './snapshot.ts';

const s = (ns: bigint): number => Number(ns) / 1e9;

/** The lab accepts 1 ms … 60 s (QEMU itself takes 0 … 2,000,000 ms: migration/options.c; 0 never converges). */
export const MAX_DOWNTIME_LIMIT_MS = 60_000;

export interface MigrateResult {
  machine: string;
  method: string;
  downtime_limit_ms: number;
  real: MoveSide & {
    /** QEMU's STOP (source) → RESUME (destination), host time: the guest's real downtime, given to the twin. */
    downtime_host_s: number;
    /** query-migrate on the source: its own downtime figure (stop → end of sending), total time, bytes. */
    qemu_downtime_ms: number | null;
    total_time_ms: number | null;
    transferred_bytes: number | null;
    dirty_syncs: number | null;
    offset_before_s: number;
    rtc_uncertainty_s: number;
    sample_rtt_s: number;
    notes: string[];
  };
  model: MoveModel;
}

/**
 * Live-migrate the booted `guest` to a new QEMU and compare the guest's clocks across it. The caller
 * keeps owning `guest` (already quit here) and owns the returned destination; on an error any
 * destination started here is closed.
 */
export async function labMigrateOn(
  guest: QemuGuest,
  downtimeLimitMs: number,
  opts: { destLifetimeMs?: number } & LabRunOptions = {},
): Promise<{ result: MigrateResult; guest: QemuGuest }> {
  if (!(Number.isInteger(downtimeLimitMs) && downtimeLimitMs >= 1 && downtimeLimitMs <= MAX_DOWNTIME_LIMIT_MS))
    throw new InputError(`expected an integer number of ms in [1, ${MAX_DOWNTIME_LIMIT_MS}], got ${downtimeLimitMs}`, '--downtime');
  const tmp = privateDir('timevisor-migrate-');
  let dest: QemuGuest | null = null;
  try {
    const sock = join(tmp.dir, 'migrate.sock');
    const notes: string[] = [];
    opts.progress?.('starting the destination QEMU (-incoming unix:SOCK)');
    dest = new QemuGuest({ ...guest.options, incoming: `unix:${sock}`, lifetimeMs: opts.destLifetimeMs ?? 180_000 });
    for (const x of guest.started) dest.started.add(x);
    const dq = await dest.qmp(); // connected before the migration, so its RESUME event is seen
    for (let i = 0; !existsSync(sock); i++) {
      if (i > 200 || !dest.running)
        throw new UnavailableError('the destination QEMU is not listening', dest.stderr.join('').trim() || sock);
      await delay(50);
    }

    const qmp = await guest.qmp();
    const rtcBefore = await rtcMinusHostNs(guest);
    const before = await bestClockSample(guest);
    const nEvents = qmp.events.length;
    opts.progress?.(`migrating (downtime-limit ${downtimeLimitMs} ms)`);
    await qmp.execute('migrate-set-parameters', { 'downtime-limit': downtimeLimitMs });
    await qmp.execute('migrate', { uri: `unix:${sock}` });
    const mig = await waitMigration(qmp, 120_000, 'live migration');
    const status = await waitIncoming(dest, 30_000);
    if (status !== 'running') notes.push(`destination status after migration: ${status}`);
    const after = await bestClockSample(dest);
    const stopNs = eventTimeNs(qmp.events, 'STOP', nEvents);
    const resumeNs = eventTimeNs(dq.events, 'RESUME');
    if (stopNs === null || resumeNs === null) throw new UnavailableError('QEMU sent no STOP/RESUME event', 'cannot time the downtime');
    const downNs = resumeNs - stopNs;
    await guest.close();
    const rtcAfter = await rtcMinusHostNs(dest);
    const rtt = [before, after].map((t) => t.hostRecvNs - t.hostSentNs).reduce((a, b) => (a > b ? a : b));
    return {
      guest: dest,
      result: {
        machine: MACHINE,
        method: 'destination -incoming unix:SOCK; source migrate-set-parameters downtime-limit, migrate unix:SOCK',
        downtime_limit_ms: downtimeLimitMs,
        real: {
          ...realMoveSide(before, after, downNs, rtcAfter.ns - rtcBefore.ns, after, null),
          downtime_host_s: s(downNs),
          qemu_downtime_ms: mig.downtime ?? null,
          total_time_ms: mig['total-time'] ?? null,
          transferred_bytes: mig.ram?.transferred ?? null,
          dirty_syncs: mig.ram?.['dirty-sync-count'] ?? null,
          offset_before_s: s(offsetNs(before)),
          rtc_uncertainty_s: s(rtcBefore.uncertaintyNs + rtcAfter.uncertaintyNs),
          sample_rtt_s: s(rtt),
          notes,
        },
        model: twinMoveQemuTcg({ kind: 'migration', gapNs: downNs, offsetBeforeNs: offsetNs(before), sync: 'none' }),
      },
    };
  } catch (e) {
    await dest?.close();
    throw e;
  } finally {
    tmp.remove();
  }
}

/** Boot a guest, live-migrate it to a second QEMU, and stop both on every path. */
export async function labMigrate(downtimeLimitMs: number, opts: LabRunOptions = {}): Promise<MigrateResult> {
  const src = await bootLabGuest({ lifetimeMs: 240_000, ...opts });
  let dest: QemuGuest | null = null;
  try {
    const r = await labMigrateOn(src, downtimeLimitMs, opts);
    dest = r.guest;
    return r.result;
  } finally {
    await src.close();
    await dest?.close();
  }
}
