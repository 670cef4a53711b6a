// Compiling the small C helpers (UAPI layout check, the C twin of the FFI benchmark) at test or
// bench time into a temporary directory: nothing binary is committed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnavailableError } from '../core/index.ts';

export interface CompiledProgram {
  path: string;
  /** Remove the temporary directory. */
  dispose(): void;
}

/** Why C helpers cannot be built here, or null when gcc and <linux/kvm.h> are present. */
export function cToolchainMissing(): string | null {
  const r = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return 'gcc not found (Debian package gcc)';
  if (!existsSync('/usr/include/linux/kvm.h')) return '<linux/kvm.h> not found (Debian package linux-libc-dev)';
  return null;
}

export function compileC(source: string, name: string, flags: string[] = ['-O2']): CompiledProgram {
  const missing = cToolchainMissing();
  if (missing) throw new UnavailableError(`cannot compile ${source}`, missing);
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-cc-'));
  const out = join(dir, name);
  const r = spawnSync('gcc', ['-Wall', ...flags, '-o', out, source], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new UnavailableError(`gcc failed on ${source}`, (r.stderr || r.error?.message || '').trim().split('\n').slice(0, 5).join(' | '));
  }
  return { path: out, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
