// Assembling the real guest: Debian's kernel, and an initramfs the project packs itself (cpio.ts) from
// busybox-static, qemu-guest-agent, chrony, the shared libraries those two need, the e1000 NIC module and
// the lab's own /init (init.ts). Built once per set of package versions and cached.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UnavailableError } from '../core/index.ts';
import { cacheSource, ensureDir, labCacheDir, writeFileAtomic } from './cache.ts';
import { run } from './children.ts';
import { packNewc, type CpioEntry } from './cpio.ts';
import { extractDeb, extractDebMembers, fetchDeb, kernelPackageName, sharedLibraries, type LabProgress } from './debian.ts';
import { initScript } from './init.ts';

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** e.g. "6.1.0-56-amd64" */
  kernelRelease: string;
  /** The Debian packages the image was built from (file names, with versions). */
  packages: string[];
}

const E1000_IN_IMAGE = '/lib/modules/e1000.ko';

class ImageTree {
  private readonly entries = new Map<string, CpioEntry>();

  dir(path: string): void {
    const parts = path.replace(/^\/+/, '').split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (!this.entries.has(p)) this.entries.set(p, { kind: 'dir', path: p });
    }
  }

  file(path: string, data: Uint8Array, mode = 0o644): void {
    const p = path.replace(/^\/+/, '');
    this.dir(dirname(p));
    this.entries.set(p, { kind: 'file', path: p, data, mode });
  }

  symlink(path: string, target: string): void {
    const p = path.replace(/^\/+/, '');
    this.dir(dirname(p));
    if (!this.entries.has(p)) this.entries.set(p, { kind: 'symlink', path: p, target });
  }

  chardev(path: string, major: number, minor: number): void {
    const p = path.replace(/^\/+/, '');
    this.dir(dirname(p));
    this.entries.set(p, { kind: 'chardev', path: p, major, minor, mode: 0o600 });
  }

  /** A dynamically linked program plus every shared library `ldd` says it loads. */
  async program(path: string, binary: string): Promise<void> {
    this.file(path, readFileSync(binary), 0o755);
    for (const lib of await sharedLibraries(binary)) this.file(lib.path, readFileSync(lib.source), 0o755);
  }

  pack(): Buffer {
    // Parents sort before their children, so the kernel can create each directory before its contents.
    const sorted = [...this.entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return packNewc(sorted.filter((e) => e.path !== '.'));
  }
}

async function busyboxApplets(busybox: string): Promise<string[]> {
  const r = await run(busybox, ['--list-full'], { timeoutMs: 30_000 });
  if (r.status !== 0) throw new UnavailableError('cannot list busybox applets', r.stderr.trim() || String(r.error?.message));
  return r.stdout.split('\n').filter(Boolean);
}

/**
 * Build (or reuse from the cache) the lab's guest kernel and initramfs. The first run downloads four Debian
 * packages (about 97 MB, most of it the kernel package) and packs the initramfs.
 */
export async function buildGuestImage(progress?: LabProgress): Promise<GuestImage> {
  const kernelPkg = await kernelPackageName();
  const pkgs = [kernelPkg, 'busybox-static', 'qemu-guest-agent', 'chrony'];
  const debs: string[] = [];
  for (const p of pkgs) debs.push(basename(await fetchDeb(p, progress)));
  const init = initScript({ modules: [E1000_IN_IMAGE] });
  const key = createHash('sha256')
    .update(JSON.stringify({ debs, init, v: 1 }))
    .digest('hex')
    .slice(0, 16);
  const out = join(labCacheDir(), 'images', key);
  const kernelRoot = await extractDebMembers(
    kernelPkg,
    ['./boot/vmlinuz-*', './lib/modules/*/kernel/drivers/net/ethernet/intel/e1000/e1000.ko'],
    progress,
  );
  const vmlinuz = readdirSync(join(kernelRoot, 'boot')).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new UnavailableError(`no vmlinuz in ${kernelPkg}`, 'the package layout is not the expected one');
  const kernelRelease = vmlinuz.slice('vmlinuz-'.length);
  const image: GuestImage = { kernel: join(kernelRoot, 'boot', vmlinuz), initrd: join(out, 'initrd.cpio'), kernelRelease, packages: debs };
  if (existsSync(image.initrd)) return image;
  progress?.('building the guest image (initramfs)');

  const tree = new ImageTree();
  for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'etc', 'var/lib/chrony', 'root']) tree.dir(d);
  tree.symlink('var/run', '../run');
  tree.chardev('dev/console', 5, 1);
  tree.chardev('dev/null', 1, 3);

  const bb = join(await extractDeb('busybox-static', progress), 'bin', 'busybox');
  tree.file('bin/busybox', readFileSync(bb), 0o755);
  for (const applet of await busyboxApplets(bb)) if (applet !== 'bin/busybox') tree.symlink(applet, '/bin/busybox');

  await tree.program('usr/sbin/qemu-ga', join(await extractDeb('qemu-guest-agent', progress), 'usr', 'sbin', 'qemu-ga'));
  await tree.program('usr/sbin/chronyd', join(await extractDeb('chrony', progress), 'usr', 'sbin', 'chronyd'));
  tree.file(
    E1000_IN_IMAGE,
    readFileSync(join(kernelRoot, 'lib', 'modules', kernelRelease, 'kernel/drivers/net/ethernet/intel/e1000/e1000.ko')),
  );
  tree.file('etc/passwd', Buffer.from('root:x:0:0:root:/root:/bin/sh\n'));
  tree.file('etc/group', Buffer.from('root:x:0:\n'));
  tree.file('init', Buffer.from(initScript({ modules: [E1000_IN_IMAGE] })), 0o755);

  ensureDir(out, cacheSource());
  writeFileAtomic(image.initrd, tree.pack());
  return image;
}

/** The host path of the chronyd from the downloaded chrony package (used as the loopback NTP server). */
export async function chronydBinary(): Promise<string> {
  return join(await extractDeb('chrony'), 'usr', 'sbin', 'chronyd');
}
