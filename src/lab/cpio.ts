// The "newc" cpio format the kernel unpacks an initramfs from (Documentation/driver-api/early-userspace/
// buffer-format.rst, init/initramfs.c): a 110-byte ASCII header of 8-digit hex fields, the NUL-terminated
// name, padding to 4 bytes, the data, padding to 4 bytes; the archive ends with "TRAILER!!!".

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Uint8Array; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const MAGIC = '070701';

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function modeOf(e: CpioEntry): number {
  switch (e.kind) {
    case 'dir':
      return S_IFDIR | (e.mode ?? 0o755);
    case 'file':
      return S_IFREG | (e.mode ?? 0o644);
    case 'symlink':
      return S_IFLNK | 0o777;
    case 'chardev':
      return S_IFCHR | (e.mode ?? 0o600);
  }
}

function header(ino: number, name: string, mode: number, size: number, nlink: number, rdev: [number, number]): Buffer {
  const fields = [
    ino,
    mode,
    0 /* uid */,
    0 /* gid */,
    nlink,
    0 /* mtime */,
    size,
    0,
    0 /* dev major/minor */,
    rdev[0],
    rdev[1],
    Buffer.byteLength(name) + 1,
    0 /* check */,
  ];
  const text = MAGIC + fields.map(hex8).join('');
  const nameBytes = Buffer.from(name + '\0');
  return Buffer.concat([Buffer.from(text, 'ascii'), nameBytes, Buffer.alloc(pad4(110 + nameBytes.length))]);
}

/** Pack entries into a newc archive. Paths are relative ("bin/sh"); parents must be listed before children. */
export function packNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (!name) throw new RangeError('cpio entry with an empty path');
    let data: Uint8Array = new Uint8Array(0);
    if (e.kind === 'file') data = e.data;
    else if (e.kind === 'symlink') data = Buffer.from(e.target);
    const rdev: [number, number] = e.kind === 'chardev' ? [e.major, e.minor] : [0, 0];
    parts.push(header(ino++, name, modeOf(e), data.length, e.kind === 'dir' ? 2 : 1, rdev));
    parts.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(pad4(data.length)));
  }
  parts.push(header(0, 'TRAILER!!!', 0, 0, 1, [0, 0]));
  return Buffer.concat(parts);
}

/** Read a newc archive back (used by tests and to check what an image holds). */
export function unpackNewc(buf: Buffer): { path: string; mode: number; data: Buffer; rdev: [number, number] }[] {
  const out: { path: string; mode: number; data: Buffer; rdev: [number, number] }[] = [];
  let off = 0;
  for (;;) {
    const magic = buf.toString('ascii', off, off + 6);
    if (magic !== MAGIC) throw new RangeError(`bad cpio magic at ${off}: ${JSON.stringify(magic)}`);
    const field = (i: number) => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const rdev: [number, number] = [field(9), field(10)];
    const nameSize = field(11);
    const name = buf.toString('utf8', off + 110, off + 110 + nameSize - 1);
    off += 110 + nameSize;
    off += pad4(off);
    const data = buf.subarray(off, off + size);
    off += size;
    off += pad4(off);
    if (name === 'TRAILER!!!') return out;
    out.push({ path: name, mode, data, rdev });
  }
}
