// Where doctor's raw text comes from: the running system, or a recorded tree of the same files (the
// fixtures under test/fixtures/doctor, or `timevisor doctor --root DIR`). Every read answers with a
// value or with the reason it could not be read, so a report can say exactly what was missing and why.
//
// Read-only by construction: this module imports only reading functions from node:fs (a test scans
// src/doctor for write APIs), and /dev/kmsg is opened O_RDONLY|O_NONBLOCK.
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { InputError } from '../core/index.ts';

/** A reading: the value, or why there is none. */
export type Reading<T> = { ok: true; value: T } | { ok: false; reason: string };

export const got = <T>(value: T): Reading<T> => ({ ok: true, value });
export const missing = <T = never>(reason: string): Reading<T> => ({ ok: false, reason });

export function mapReading<T, U>(r: Reading<T>, f: (v: T) => U): Reading<U> {
  return r.ok ? got(f(r.value)) : r;
}

/** What doctor reads. Paths are absolute Linux paths ("/proc/cmdline"). */
export interface SystemSource {
  /** "live" for this machine, or a description of a recorded tree. */
  readonly origin: string;
  /** process.platform for live, 'linux' for recorded trees. */
  readonly platform: string;
  /** Whether live-only measurements (adjtimex, vDSO timing, steal interval) make sense. */
  readonly live: boolean;
  readText(path: string): Reading<string>;
  listDir(path: string): Reading<string[]>;
  exists(path: string): boolean;
  /** The kernel log in `dmesg` format ("[    0.000000] text" per line). */
  kernelLog(): Reading<string>;
  /** `chronyc -n tracking` or `chronyc -n sources`: chronyd's monitoring reports (they change nothing). */
  chronyc(report: ChronycReport): Reading<string>;
}

export type ChronycReport = 'tracking' | 'sources';

function errReason(e: unknown, permissionHint = 'readable by root only'): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT':
      return 'does not exist on this kernel';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${err.code}): ${permissionHint}`;
    default:
      return err.code ? `${err.code}: ${err.message}` : String(e);
  }
}

/** Read /dev/kmsg records until EAGAIN and render them the way dmesg does. */
function readKmsg(): Reading<string> {
  let fd: number;
  try {
    fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    return missing(`/dev/kmsg: ${errReason(e, 'needs root or CAP_SYSLOG while kernel.dmesg_restrict=1')}`);
  }
  const lines: string[] = [];
  const buf = Buffer.alloc(8192);
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break;
        if (code === 'EPIPE') continue; // record overwritten while reading: the next read resyncs
        return missing(`/dev/kmsg: ${errReason(e)}`);
      }
      if (n <= 0) break;
      lines.push(...kmsgRecordToDmesg(buf.toString('utf8', 0, n)));
    }
  } finally {
    closeSync(fd);
  }
  return got(lines.join('\n') + (lines.length ? '\n' : ''));
}

/**
 * One /dev/kmsg record ("prio,seq,usec,flags;text\n continuation lines") in dmesg's format. The format is
 * Documentation/ABI/testing/dev-kmsg; continuation lines (" KEY=value") are dictionary entries, dropped.
 */
export function kmsgRecordToDmesg(record: string): string[] {
  const semi = record.indexOf(';');
  if (semi < 0) return [];
  const fields = record.slice(0, semi).split(',');
  const usec = Number(fields[2] ?? 0);
  const body = record.slice(semi + 1).split('\n')[0] ?? '';
  const text = body.replace(/\\x([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  const secs = Math.floor(usec / 1e6);
  const stamp = `[${String(secs).padStart(5)}.${String(usec % 1e6).padStart(6, '0')}]`;
  return [`${stamp} ${text}`];
}

export function liveSource(): SystemSource {
  return {
    origin: 'live',
    platform: process.platform,
    live: true,
    readText(path) {
      try {
        return got(readFileSync(path, 'utf8'));
      } catch (e) {
        return missing(`${path}: ${errReason(e)}`);
      }
    },
    listDir(path) {
      try {
        return got(readdirSync(path).sort());
      } catch (e) {
        return missing(`${path}: ${errReason(e)}`);
      }
    },
    exists: (path) => existsSync(path),
    kernelLog() {
      if (process.platform !== 'linux') return missing(`no Linux kernel log on ${process.platform}`);
      const kmsg = readKmsg();
      if (kmsg.ok && kmsg.value.length > 0) return kmsg;
      // dmesg(1) may hold CAP_SYSLOG where this process does not, or read the syslog(2) buffer.
      try {
        const text = execFileSync('dmesg', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
        return got(text);
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { stderr?: string };
        const why = err.code === 'ENOENT' ? 'dmesg(1) is not installed' : `dmesg(1) failed: ${(err.stderr ?? err.message).trim()}`;
        return missing(`${kmsg.ok ? '/dev/kmsg was empty' : kmsg.reason}; ${why}`);
      }
    },
    chronyc(report) {
      try {
        // monitoring commands only: -n (no DNS lookups), "tracking" or "sources"; nothing that needs chronyd's auth
        if (report === 'tracking') return got(execFileSync('chronyc', ['-n', 'tracking'], CHRONYC_OPTS));
        return got(execFileSync('chronyc', ['-n', 'sources'], CHRONYC_OPTS));
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { stderr?: string };
        return missing(
          err.code === 'ENOENT' ? 'chronyc is not installed' : `chronyc ${report} failed: ${(err.stderr ?? err.message).trim()}`,
        );
      }
    },
  };
}

const CHRONYC_OPTS: { encoding: 'utf8'; stdio: ('ignore' | 'pipe')[]; timeout: number } = {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
  timeout: 5000,
};

/** What a recorded tree holds at its top: at least one of these. */
export const RECORDED_TREE_ENTRIES = ['proc', 'sys', 'dmesg.txt'] as const;

/**
 * A recorded tree must be a readable directory holding proc/, sys/ or dmesg.txt: a missing path, a file,
 * or a directory with none of them is bad input (one line naming the option and the path), never a report
 * that finds "no risks" in nothing.
 */
export function checkRecordedTree(dir: string, option = '--root'): void {
  const expected = `expected a recorded tree: a directory holding ${RECORDED_TREE_ENTRIES.join(', ')} (the layout test/fixtures/doctor/record.sh writes)`;
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new InputError(`${JSON.stringify(dir)} is not a directory; ${expected}`, option);
    entries = readdirSync(dir);
  } catch (e) {
    if (e instanceof InputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES' || code === 'EPERM'
          ? `cannot be read (${code})`
          : `cannot be read (${code ?? (e as Error).message})`;
    throw new InputError(`${JSON.stringify(dir)} ${why}; ${expected}`, option);
  }
  if (!RECORDED_TREE_ENTRIES.some((n) => entries.includes(n)))
    throw new InputError(`${JSON.stringify(dir)} holds none of ${RECORDED_TREE_ENTRIES.join(', ')}; ${expected}`, option);
}

/**
 * A recorded tree: `<dir>/proc/cmdline`, `<dir>/sys/...`, and the kernel log as `<dir>/dmesg.txt`. A file
 * absent from the recording reads as "not recorded", so partial recordings (a published boot log and
 * nothing else) work.
 */
export function recordedSource(dir: string, option = '--root'): SystemSource {
  checkRecordedTree(dir, option);
  const at = (path: string) => join(dir, path);
  return {
    origin: `recorded tree ${dir}`,
    platform: 'linux',
    live: false,
    readText(path) {
      try {
        return got(readFileSync(at(path), 'utf8'));
      } catch (e) {
        return missing(`${path}: ${recordedReason(e)}`);
      }
    },
    listDir(path) {
      try {
        return got(readdirSync(at(path)).sort());
      } catch (e) {
        return missing(`${path}: ${recordedReason(e)}`);
      }
    },
    exists: (path) => existsSync(at(path)),
    kernelLog() {
      try {
        return got(readFileSync(at('dmesg.txt'), 'utf8'));
      } catch (e) {
        return missing(`kernel log: ${recordedReason(e)}`);
      }
    },
    chronyc(report) {
      try {
        return got(readFileSync(at(`chronyc-${report}.txt`), 'utf8'));
      } catch (e) {
        return missing(`chronyc ${report}: ${recordedReason(e)}`);
      }
    },
  };
}

/** Absent from the recording, or there but unreadable (a directory where a file belongs, no permission). */
function recordedReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR'
    ? 'not in the recording'
    : `in the recording but unreadable (${code ?? (e as Error).message})`;
}
