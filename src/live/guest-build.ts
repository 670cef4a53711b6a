// Building the micro-guests from their sources in src/live/guests/ at run time. The assembler is GNU as
// from binutils: it comes with gcc, which the project's CI already installs for the UAPI check, so no
// new package is needed; `as --32` with `.code16` assembles real-mode code, and `ld --oformat binary`
// lays it out flat at the load address. Builds go to a temporary directory keyed by the sources' hash,
// so nothing binary is committed and a changed source is rebuilt.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnavailableError } from '../core/index.ts';

export const GUEST_DIR = fileURLToPath(new URL('./guests/', import.meta.url));
/** Where every micro-guest is loaded and entered (CS:IP = 0:0x1000). */
export const GUEST_LOAD_GPA = 0x1000;

export type GuestName = 'pit' | 'rtc' | 'lapic' | 'kvmclock' | 'pio' | 'devices';

/** Why the micro-guests cannot be assembled here, or null. */
export function assemblerMissing(): string | null {
  for (const tool of ['as', 'ld']) {
    const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) return `GNU ${tool} not found (Debian package binutils, installed with gcc)`;
  }
  return null;
}

function run(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    throw new UnavailableError(
      `cannot build micro-guest ${what}`,
      (r.stderr || r.error?.message || `${cmd} failed`).trim().split('\n')[0]!,
    );
}

/** The flat binary of micro-guest `name`, assembled (or taken from the build cache). */
export function buildGuest(name: GuestName): Uint8Array {
  const src = join(GUEST_DIR, `${name}.S`);
  const inc = join(GUEST_DIR, 'common.inc');
  const hash = createHash('sha256').update(readFileSync(src)).update(readFileSync(inc)).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'timevisor-guests');
  const out = join(dir, `${name}-${hash}.bin`);
  if (!existsSync(out)) {
    const missing = assemblerMissing();
    if (missing) throw new UnavailableError(`cannot build micro-guest ${name}`, missing);
    mkdirSync(dir, { recursive: true });
    const tmp = `${out}.${process.pid}`;
    try {
      run('as', ['--32', '-I', GUEST_DIR, '-o', `${tmp}.o`, src], name);
      run(
        'ld',
        ['-m', 'elf_i386', `-Ttext=0x${GUEST_LOAD_GPA.toString(16)}`, '--oformat', 'binary', '-e', '_start', '-o', tmp, `${tmp}.o`],
        name,
      );
      renameSync(tmp, out); // atomic: a concurrent build never sees half a file
    } finally {
      rmSync(`${tmp}.o`, { force: true });
      rmSync(tmp, { force: true });
    }
  }
  return new Uint8Array(readFileSync(out));
}
