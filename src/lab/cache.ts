// The lab's cache directory ($TIMEVISOR_CACHE/lab or ~/.cache/timevisor/lab) and the two rules for writing
// into it: directories are made one component at a time (Node's recursive mkdir loops for ever on a path
// under /proc, where mkdir answers ENOENT although the parent exists), and every file or tree is written
// under a temporary name and renamed into place, so an interrupted run leaves nothing half-written that a
// later run would take for finished work.
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { InputError } from '../core/index.ts';

/** Temporary names currently being written, removed if the process ends before they are renamed. */
const pending = new Set<string>();
let exitHook = false;

function track(path: string): void {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', removePendingTemporaries);
  }
  pending.add(path);
}

/** Remove every temporary file or tree still being written (also runs at process exit). */
export function removePendingTemporaries(): void {
  for (const p of pending) rmSync(p, { recursive: true, force: true });
  pending.clear();
}

const errText = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException;
  return err.code ? `${err.code}: ${err.message.replace(/^\w+: /, '').replace(/, \w+ '.*'$/, '')}` : String(e);
};

/**
 * mkdir -p, one component at a time, so that every failure names the component and the work is bounded
 * by the number of components. `what` names the input the path came from (an environment variable).
 */
export function ensureDir(path: string, what: string): string {
  const abs = resolve(path);
  const parts = abs.split(sep).filter(Boolean);
  let cur: string = sep;
  for (const part of parts) {
    cur = join(cur, part);
    let isDir: boolean | null = null;
    try {
      isDir = statSync(cur).isDirectory();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new InputError(`cannot use ${cur} (${errText(e)}); expected a directory the lab can create and write`, what);
    }
    if (isDir === false) throw new InputError(`${cur} is not a directory; expected a directory the lab can create and write`, what);
    if (isDir === null) {
      try {
        mkdirSync(cur);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new InputError(`cannot create ${cur} (${errText(e)}); expected a directory the lab can create and write`, what);
      }
    }
  }
  return abs;
}

/** The input the cache directory comes from, for messages. */
export function cacheSource(): string {
  return process.env.TIMEVISOR_CACHE ? 'TIMEVISOR_CACHE' : 'the lab cache (~/.cache/timevisor)';
}

/** Where downloaded packages, extracted trees and built images live: $TIMEVISOR_CACHE/lab or ~/.cache/timevisor/lab. */
export function labCacheDir(): string {
  const base = process.env.TIMEVISOR_CACHE ?? join(homedir(), '.cache', 'timevisor');
  if (base === '') throw new InputError('the value is empty; expected a directory the lab can create and write', 'TIMEVISOR_CACHE');
  return ensureDir(join(base, 'lab'), cacheSource());
}

/** A fresh temporary name beside `finalPath` (same directory, so the rename is atomic), tracked until settled. */
export function temporaryBeside(finalPath: string): string {
  const tmp = join(dirname(finalPath), `.tmp-${process.pid}-${randomBytes(4).toString('hex')}-${finalPath.split(sep).pop()}`);
  track(tmp);
  return tmp;
}

/** Rename a finished temporary into place (or drop it if another run finished first) and stop tracking it. */
export function settle(tmp: string, finalPath: string): void {
  try {
    renameSync(tmp, finalPath);
  } catch (e) {
    // a directory another run already renamed into place: keep theirs
    if (!['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    rmSync(tmp, { recursive: true, force: true });
  }
  pending.delete(tmp);
}

/** Abandon a temporary (on an error path). */
export function discard(tmp: string): void {
  rmSync(tmp, { recursive: true, force: true });
  pending.delete(tmp);
}

/** Write a file under a temporary name and rename it into place. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = temporaryBeside(path);
  try {
    writeFileSync(tmp, data);
    settle(tmp, path);
  } catch (e) {
    discard(tmp);
    throw e;
  }
}
