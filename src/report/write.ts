// Output files are written whole or not at all: a temporary file beside the target, renamed into place.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { InputError } from '../core/errors.ts';

export function writeFileAtomic(path: string, body: string | Uint8Array, option: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, body);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new InputError(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, option);
  }
}
