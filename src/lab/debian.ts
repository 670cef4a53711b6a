// Fetching the guest's programs from Debian: `apt-get download` into a cache directory, then extraction
// with `dpkg-deb`. Nothing here is committed; everything is rebuilt from the archive on a fresh machine.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UnavailableError } from '../core/errors.ts';

/** Where downloaded packages, extracted trees and built images live: $TIMEVISOR_CACHE or ~/.cache/timevisor. */
export function labCacheDir(): string {
  const base = process.env.TIMEVISOR_CACHE ?? join(homedir(), '.cache', 'timevisor');
  const dir = join(base, 'lab');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Absolute path of a program on $PATH, or null. */
export function which(program: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = join(dir, program);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not in this directory
    }
  }
  return null;
}

export function requireTool(program: string, debianPackage: string): string {
  const p = which(program);
  if (!p) throw new UnavailableError(`${program} is needed for the real-guest lab`, `install the Debian package ${debianPackage}`);
  return p;
}

/** The versioned kernel package that the `linux-image-amd64` metapackage points at (or $TIMEVISOR_LAB_KERNEL_PKG). */
export function kernelPackageName(): string {
  const forced = process.env.TIMEVISOR_LAB_KERNEL_PKG;
  if (forced) return forced;
  requireTool('apt-cache', 'apt');
  const r = spawnSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
  const m = /Depends:\s+(linux-image-\S+-amd64)/.exec(r.stdout ?? '');
  if (r.status !== 0 || !m) {
    throw new UnavailableError(
      'cannot resolve the Debian kernel package linux-image-amd64',
      `apt-cache said: ${(r.stderr || r.stdout || '').trim().split('\n')[0] ?? ''} (run apt-get update?)`,
    );
  }
  return m[1]!;
}

function findDeb(dir: string, pkg: string): string | null {
  // apt-get names files <pkg>_<version with ':' as %3a>_<arch>.deb
  const hit = readdirSync(dir)
    .filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))
    .sort();
  return hit.length ? join(dir, hit[hit.length - 1]!) : null;
}

/** Path of the .deb for `pkg` in the cache, downloading it with `apt-get download` when absent. */
export function fetchDeb(pkg: string): string {
  const dir = join(labCacheDir(), 'debs');
  mkdirSync(dir, { recursive: true });
  const cached = findDeb(dir, pkg);
  if (cached) return cached;
  requireTool('apt-get', 'apt');
  const r = spawnSync('apt-get', ['download', '-q', pkg], { cwd: dir, encoding: 'utf8', timeout: 300_000 });
  const got = findDeb(dir, pkg);
  if (r.status !== 0 || !got) {
    const why =
      (r.stderr || r.stdout || r.error?.message || '')
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('W:'))
        .pop() ?? '';
    throw new UnavailableError(`cannot download the Debian package ${pkg}`, why || `apt-get download exited ${r.status}`);
  }
  return got;
}

/** Extract a package into cache/root/<pkg> (whole package), once. Returns the tree's root. */
export function extractDeb(pkg: string): string {
  const deb = fetchDeb(pkg);
  const dest = join(labCacheDir(), 'root', pkg);
  const stamp = join(dest, '.extracted');
  if (existsSync(stamp)) return dest;
  requireTool('dpkg-deb', 'dpkg');
  mkdirSync(dest, { recursive: true });
  execFileSync('dpkg-deb', ['-x', deb, dest]);
  execFileSync('touch', [stamp]);
  return dest;
}

/**
 * Extract only the members matching `patterns` (tar wildcards such as './boot/vmlinuz-*') from a package:
 * the kernel package is 70 MB of modules of which the lab needs one or two files.
 */
export function extractDebMembers(pkg: string, patterns: readonly string[]): string {
  const deb = fetchDeb(pkg);
  const dest = join(labCacheDir(), 'root', pkg);
  const stamp = join(dest, '.extracted-' + Buffer.from(patterns.join('|')).toString('base64url').slice(0, 40));
  if (existsSync(stamp)) return dest;
  requireTool('tar', 'tar');
  mkdirSync(dest, { recursive: true });
  const r = spawnSync(
    'sh',
    ['-c', 'd="$1"; shift; dpkg-deb --fsys-tarfile "$0" | tar -x -C "$d" --wildcards "$@"', deb, dest, ...patterns],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new UnavailableError(`cannot extract ${patterns.join(' ')} from ${pkg}`, r.stderr.trim());
  execFileSync('touch', [stamp]);
  return dest;
}

/**
 * Shared libraries a dynamically linked program needs, as (path the loader looks up, file to copy), from
 * `ldd`. The libraries come from this (Debian) host's installed packages, which are the same release as the
 * downloaded program; a library the host lacks is a clear error naming it.
 */
export function sharedLibraries(binary: string): { path: string; source: string }[] {
  requireTool('ldd', 'libc-bin');
  const r = spawnSync('ldd', [binary], { encoding: 'utf8' });
  if (r.status !== 0) throw new UnavailableError(`ldd failed on ${binary}`, r.stderr.trim() || r.stdout.trim());
  const out: { path: string; source: string }[] = [];
  for (const line of r.stdout.split('\n')) {
    const missing = /^\s*(\S+) => not found/.exec(line);
    if (missing)
      throw new UnavailableError(
        `${binary} needs ${missing[1]}, which this host does not have`,
        'install the Debian package that provides it',
      );
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) out.push({ path: m[1]!, source: realpathSync(m[1]!) });
  }
  return out;
}
