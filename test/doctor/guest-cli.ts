// Test helper: boot a scenario file through the guest model's own CLI (`timevisor guest --scenario FILE
// --json`), the contract the doctor's twin is written for.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { GuestView } from '../../src/doctor/twin.ts';

const BIN = join(import.meta.dirname, '../../bin/timevisor.js');

export function guestCli(file: string): { ok: true; guest: GuestView } | { ok: false; reason: string } {
  const p = spawnSync(process.execPath, [BIN, 'guest', '--scenario', file, '--json'], { encoding: 'utf8', timeout: 120_000 });
  if (p.error) return { ok: false, reason: p.error.message };
  if (p.status !== 0)
    return { ok: false, reason: `timevisor guest --scenario failed (exit ${p.status}): ${(p.stderr || p.stdout).trim().split('\n')[0]}` };
  try {
    const j = JSON.parse(p.stdout) as Record<string, unknown>;
    for (const k of ['boot_log', 'available_clocksource', 'current_clocksource', 'clockevent_device']) {
      if (!(k in j)) return { ok: false, reason: `timevisor guest --json has no "${k}"` };
    }
    return { ok: true, guest: j as unknown as GuestView };
  } catch (e) {
    return { ok: false, reason: `timevisor guest --json printed no JSON: ${(e as Error).message}` };
  }
}
