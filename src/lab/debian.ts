// Fetching the guest's programs from Debian: `apt-get download` into a cache directory, then extraction
// with `dpkg-deb`, each step asynchronous (signals stay handled) and written under a temporary name first.
// Nothing here is committed; everything is rebuilt from the archive on a fresh machine.
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UnavailableError } from '../core/index.ts';
import { cacheSource, discard, ensureDir, labCacheDir, settle, temporaryBeside } from './cache.ts';
import { run, runPipeline } from './children.ts';

export { labCacheDir } from './cache.ts';

/**
 * A named prerequisite of the lab is missing: a program (QEMU, apt, dpkg-deb, …), Debian's package lists, or
 * the network to download packages. The only lab failure a test may turn into a skip; every other error
 * (a package of unexpected layout, a failing ldd or extraction, a bug) is a failure.
 */
export class MissingPrerequisiteError extends UnavailableError {
  override name = 'MissingPrerequisiteError';
  constructor(
    message: string,
    reason: string,
    /** What is missing, e.g. "qemu-system-x86_64 (Debian package qemu-system-x86)". */
    readonly prerequisite: string,
  ) {
    super(message, reason);
  }
}

/**
 * Why `apt-get download` failed, from its messages: no network to the archive, no package lists (apt-get
 * update never ran), or something else (null: an error, not a missing prerequisite).
 */
export function aptMissingPrerequisite(aptOutput: string, listsPresent: boolean): string | null {
  if (
    /Temporary failure resolving|Could not resolve|Failed to fetch|Unable to connect|Network is unreachable|Connection (timed out|refused)|ETIMEDOUT/i.test(
      aptOutput,
    )
  )
    return 'network access to the Debian archive';
  if (/Unable to locate package|has no installation candidate/.test(aptOutput) && !listsPresent)
    return "Debian's package lists (run apt-get update)";
  return null;
}

/** Whether apt has package lists (apt-get update ran). */
export function aptListsPresent(dir = '/var/lib/apt/lists'): boolean {
  try {
    return readdirSync(dir).some((f) => f.endsWith('_Packages') || f.endsWith('_Packages.lz4'));
  } catch {
    return false;
  }
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
  if (!p)
    throw new MissingPrerequisiteError(
      `${program} is needed for the real-guest lab`,
      `install the Debian package ${debianPackage}`,
      `${program} (Debian package ${debianPackage})`,
    );
  return p;
}

/** The versioned kernel package that the `linux-image-amd64` metapackage points at (or $TIMEVISOR_LAB_KERNEL_PKG). */
export async function kernelPackageName(): Promise<string> {
  const forced = process.env.TIMEVISOR_LAB_KERNEL_PKG;
  if (forced) return forced;
  const r = await run(requireTool('apt-cache', 'apt'), ['depends', 'linux-image-amd64'], { timeoutMs: 60_000 });
  const m = /Depends:\s+(linux-image-\S+-amd64)/.exec(r.stdout);
  if (r.status !== 0 || !m) {
    const said = `apt-cache said: ${(r.stderr || r.stdout || r.error?.message || '').trim().split('\n')[0] ?? ''}`;
    if (!aptListsPresent())
      throw new MissingPrerequisiteError(
        'cannot resolve the Debian kernel package linux-image-amd64',
        `${said} (run apt-get update)`,
        "Debian's package lists",
      );
    throw new UnavailableError('cannot resolve the Debian kernel package linux-image-amd64', said);
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

/** What a step of the lab is doing, for a progress line (the CLI shows it on a terminal). */
export type LabProgress = (step: string) => void;

/**
 * Path of the .deb for `pkg` in the cache, downloading it with `apt-get download` when absent: into a
 * temporary directory beside the cache's debs/, then renamed in, so an interrupted download leaves no .deb.
 */
export async function fetchDeb(pkg: string, progress?: LabProgress): Promise<string> {
  const dir = ensureDir(join(labCacheDir(), 'debs'), cacheSource());
  const cached = findDeb(dir, pkg);
  if (cached) return cached;
  const apt = requireTool('apt-get', 'apt');
  progress?.(`downloading the Debian package ${pkg}`);
  const tmp = temporaryBeside(join(dir, pkg));
  try {
    mkdirSync(tmp);
    const r = await run(apt, ['download', '-q', pkg], { cwd: tmp, timeoutMs: 300_000 });
    const got = findDeb(tmp, pkg);
    if (r.status !== 0 || !got) {
      const why =
        (r.stderr || r.stdout || r.error?.message || '')
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('W:'))
          .pop() ?? '';
      const missing = aptMissingPrerequisite(`${r.stderr}\n${r.stdout}\n${r.error?.message ?? ''}`, aptListsPresent());
      const reason = why || `apt-get download exited ${r.status ?? r.signal}`;
      if (missing) throw new MissingPrerequisiteError(`cannot download the Debian package ${pkg}`, reason, missing);
      throw new UnavailableError(`cannot download the Debian package ${pkg}`, reason);
    }
    const final = join(dir, basename(got));
    renameSync(got, final);
    return final;
  } finally {
    discard(tmp);
  }
}

/** Extract into a temporary tree beside `dest`, then rename it into place; returns `dest`. */
async function extractInto(dest: string, what: string, extract: (tmp: string) => Promise<void>): Promise<string> {
  if (existsSync(dest)) return dest;
  ensureDir(dirname(dest), cacheSource());
  const tmp = temporaryBeside(dest);
  try {
    mkdirSync(tmp);
    await extract(tmp);
    settle(tmp, dest);
    return dest;
  } catch (e) {
    discard(tmp);
    if (e instanceof UnavailableError) throw e;
    throw new UnavailableError(`cannot extract ${what}`, (e as Error).message);
  }
}

/** Extract a whole package into cache/root/<pkg>, once. Returns the tree's root. */
export async function extractDeb(pkg: string, progress?: LabProgress): Promise<string> {
  const deb = await fetchDeb(pkg, progress);
  const dest = join(labCacheDir(), 'root', basename(deb, '.deb'));
  if (existsSync(dest)) return dest;
  const dpkgDeb = requireTool('dpkg-deb', 'dpkg');
  progress?.(`extracting ${pkg}`);
  return extractInto(dest, pkg, async (tmp) => {
    const r = await run(dpkgDeb, ['-x', deb, tmp], { timeoutMs: 300_000 });
    if (r.status !== 0)
      throw new UnavailableError(
        `cannot extract ${pkg}`,
        (r.stderr || r.error?.message || `dpkg-deb exited ${r.status ?? r.signal}`).trim(),
      );
  });
}

/**
 * Extract only the members matching `patterns` (tar wildcards such as './boot/vmlinuz-*') from a package:
 * the kernel package is 70 MB of modules of which the lab needs one or two files.
 */
export async function extractDebMembers(pkg: string, patterns: readonly string[], progress?: LabProgress): Promise<string> {
  const deb = await fetchDeb(pkg, progress);
  const key = Buffer.from(patterns.join('|')).toString('base64url').slice(0, 40);
  const dest = join(labCacheDir(), 'root', `${basename(deb, '.deb')}@${key}`);
  if (existsSync(dest)) return dest;
  const tar = requireTool('tar', 'tar');
  const dpkgDeb = requireTool('dpkg-deb', 'dpkg');
  progress?.(`extracting ${patterns.length} members of ${pkg}`);
  return extractInto(dest, `${patterns.join(' ')} from ${pkg}`, async (tmp) => {
    const r = await runPipeline(
      { cmd: dpkgDeb, args: ['--fsys-tarfile', deb] },
      { cmd: tar, args: ['-x', '-C', tmp, '--wildcards', ...patterns] },
      300_000,
    );
    if (r.status !== 0)
      throw new UnavailableError(`cannot extract ${patterns.join(' ')} from ${pkg}`, (r.stderr || `exit ${r.status ?? r.signal}`).trim());
  });
}

/**
 * Shared libraries a dynamically linked program needs, as (path the loader looks up, file to copy), from
 * `ldd`. The libraries come from this (Debian) host's installed packages, which are the same release as the
 * downloaded program; a library the host lacks is a clear error naming it.
 */
export async function sharedLibraries(binary: string): Promise<{ path: string; source: string }[]> {
  const r = await run(requireTool('ldd', 'libc-bin'), [binary], { timeoutMs: 60_000 });
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
