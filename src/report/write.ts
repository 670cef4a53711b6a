// Output files are written whole or not at all: temporary files beside the targets, renamed into place
// only once every one of them has been written.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { InputError } from '../core/index.ts';

export interface OutputFile {
  path: string;
  body: string | Uint8Array;
  /** The option that named the file, for the error message. */
  option: string;
}

export function writeFilesAtomic(files: readonly OutputFile[]): void {
  const tmps: string[] = [];
  for (const f of files) {
    const tmp = `${f.path}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, f.body);
      tmps.push(tmp);
    } catch (e) {
      for (const t of [...tmps, tmp]) rmSync(t, { force: true });
      throw new InputError(`cannot write ${f.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, f.option);
    }
  }
  files.forEach((f, i) => renameSync(tmps[i]!, f.path));
}

export function writeFileAtomic(path: string, body: string | Uint8Array, option: string): void {
  writeFilesAtomic([{ path, body, option }]);
}
