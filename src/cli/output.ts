// Writing results safely: directories created one level at a time (a path under /proc or through a
// file fails at once with its reason, where Node's recursive mkdir can spin), files written to a
// temporary name and renamed into place, and everything a failed or interrupted run made removed again.
import { closeSync, mkdirSync, openSync, renameSync, rmdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError } from '../core/index.ts';

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'not permitted',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  ENOENT: 'no such file or directory',
  EEXIST: 'exists and is not a directory',
  EISDIR: 'is a directory',
};

export function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && REASONS[code]) ?? (e as Error).message;
}

/**
 * `mkdir -p`, one component at a time. Returns the directories it created (deepest last) so that a
 * failed run can remove them again. Errors name `option` and the path.
 */
export function ensureDir(path: string, option: string): string[] {
  if (path === '') throw new InputError('expected a directory, got an empty path', option);
  const abs = resolve(path);
  const missing: string[] = [];
  for (let p = abs; ; p = dirname(p)) {
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new InputError(`cannot use ${p}: ${fsReason(e)}`, option);
    }
    if (st) {
      if (!st.isDirectory()) throw new InputError(`cannot create ${abs}: ${p} is not a directory`, option);
      break;
    }
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  const created: string[] = [];
  for (const p of missing) {
    try {
      mkdirSync(p);
      created.push(p);
    } catch (e) {
      removeDirs(created);
      throw new InputError(`cannot create directory ${p}: ${fsReason(e)}`, option);
    }
  }
  return created;
}

/** Remove directories this run created (deepest first), if they are empty. */
export function removeDirs(created: readonly string[]): void {
  for (const d of [...created].reverse()) {
    try {
      rmdirSync(d);
    } catch {
      // not empty (someone else wrote there) or already gone: leave it
    }
  }
}

/** A file written under a temporary name (buffered, synchronous) and renamed into place by commit(). */
export class AtomicFile {
  private readonly tmp: string;
  private fd: number | null;
  private buf: string[] = [];
  private size = 0;

  constructor(
    readonly path: string,
    private readonly option: string,
  ) {
    this.tmp = AtomicFile.tmpPathFor(path);
    try {
      this.fd = openSync(this.tmp, 'wx');
    } catch (e) {
      throw new InputError(`cannot write ${path}: ${fsReason(e)}`, option);
    }
  }

  /** Where the file stands until commit(): hidden, beside it, named by this process. */
  static tmpPathFor(path: string): string {
    return join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  }

  /** Remove what an interrupted writer of `path` (in this process) left. */
  static discard(path: string): void {
    try {
      unlinkSync(AtomicFile.tmpPathFor(path));
    } catch {
      // nothing left
    }
  }

  /** Raw bytes (written at once, after anything buffered). */
  writeBytes(bytes: Uint8Array): void {
    this.flush();
    if (this.fd === null) return;
    try {
      writeSync(this.fd, bytes);
    } catch (e) {
      this.abort();
      throw new InputError(`cannot write ${this.path}: ${fsReason(e)}`, this.option);
    }
  }

  write(text: string): void {
    this.buf.push(text);
    this.size += text.length;
    if (this.size >= 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.fd === null || this.buf.length === 0) return;
    const chunk = this.buf.join('');
    this.buf = [];
    this.size = 0;
    try {
      writeSync(this.fd, chunk);
    } catch (e) {
      this.abort();
      throw new InputError(`cannot write ${this.path}: ${fsReason(e)}`, this.option);
    }
  }

  commit(): void {
    this.flush();
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    try {
      renameSync(this.tmp, this.path);
    } catch (e) {
      this.abort();
      throw new InputError(`cannot write ${this.path}: ${fsReason(e)}`, this.option);
    }
  }

  /** Drop the temporary file; the destination is left as it was. */
  abort(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = null;
    }
    try {
      unlinkSync(this.tmp);
    } catch {
      // never created or already renamed
    }
  }
}

/** Write a whole file atomically; errors name `option` and the path. */
export function writeFileAtomic(path: string, body: string, option: string): void {
  if (path === '') throw new InputError('expected a file name, got an empty path', option);
  const f = new AtomicFile(resolve(path), option);
  f.write(body);
  f.commit();
}
