// The few libc calls the live backend makes, through koffi: open/close, ioctl, mmap/munmap,
// sched_setaffinity/sched_getcpu. Loaded lazily so that importing the live layer on a machine
// without libc.so.6 or koffi's native module does not fail before a command needs it.
import { createRequire } from 'node:module';
import { UnavailableError } from '../core/index.ts';

const require = createRequire(import.meta.url);

export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;

/** A pointer as koffi returns it; opaque to callers. */
export type NativePointer = unknown;

export interface Libc {
  open(path: string, flags: number): number;
  close(fd: number): number;
  /** ioctl(fd, req, void *arg): the argument is a byte buffer (a struct) or null. */
  ioctlPtr(fd: number, req: number, arg: Uint8Array | null): number;
  /** ioctl(fd, req, unsigned long arg): for _IO requests taking an integer. */
  ioctlInt(fd: number, req: number, arg: number): number;
  mmap(len: number, prot: number, flags: number, fd: number, offset: number): NativePointer;
  munmap(ptr: NativePointer, len: number): number;
  sched_setaffinity(pid: number, size: number, mask: Uint8Array): number;
  sched_getaffinity(pid: number, size: number, mask: Uint8Array): number;
  sched_getcpu(): number;
  /** adjtimex(2) on a 208-byte struct timex; callers pass modes = 0 only (a pure query). */
  adjtimex(buf: Uint8Array): number;
  /** syscall(2) with up to three integer arguments (gettid, tgkill). */
  syscall0(nr: number): number;
  syscall3(nr: number, a: number, b: number, c: number): number;
  errno(): number;
  address(ptr: NativePointer): bigint;
  view(ptr: NativePointer, len: number): ArrayBuffer;
}

let cached: Libc | null = null;

/** libc through koffi, or UnavailableError naming what is missing. */
export function libc(): Libc {
  if (cached) return cached;
  let koffi: typeof import('koffi');
  try {
    koffi = require('koffi') as typeof import('koffi');
  } catch (err) {
    throw new UnavailableError('the koffi FFI module cannot be loaded', String((err as Error).message));
  }
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load('libc.so.6');
  } catch (err) {
    throw new UnavailableError('libc.so.6 cannot be loaded', String((err as Error).message));
  }
  // ioctl is variadic in C; declaring fixed prototypes is sound on x86-64 SysV (glibc's ioctl only
  // reads the one extra argument register) and avoids koffi's slower variadic call path.
  const open = lib.func('int open(const char *path, int flags)');
  const close = lib.func('int close(int fd)');
  const ioctlPtr = lib.func('ioctl', 'int', ['int', 'unsigned long', 'void *']);
  const ioctlInt = lib.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']);
  const mmap = lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)');
  const munmap = lib.func('int munmap(void *addr, size_t len)');
  const setaff = lib.func('int sched_setaffinity(int pid, size_t size, void *mask)');
  const getaff = lib.func('int sched_getaffinity(int pid, size_t size, void *mask)');
  const getcpu = lib.func('int sched_getcpu(void)');
  const adjtimex = lib.func('int adjtimex(void *buf)');
  const syscall = lib.func('syscall', 'long', ['long', 'long', 'long', 'long']);
  cached = {
    open: (p, f) => open(p, f) as number,
    close: (fd) => close(fd) as number,
    ioctlPtr: (fd, req, arg) => ioctlPtr(fd, req, arg) as number,
    ioctlInt: (fd, req, arg) => ioctlInt(fd, req, arg) as number,
    mmap: (len, prot, flags, fd, off) => mmap(null, len, prot, flags, fd, off),
    munmap: (ptr, len) => munmap(ptr, len) as number,
    sched_setaffinity: (pid, size, mask) => setaff(pid, size, mask) as number,
    sched_getaffinity: (pid, size, mask) => getaff(pid, size, mask) as number,
    sched_getcpu: () => getcpu() as number,
    adjtimex: (buf) => adjtimex(buf) as number,
    syscall0: (nr) => Number(syscall(nr, 0, 0, 0)),
    syscall3: (nr, a, b, c) => Number(syscall(nr, a, b, c)),
    errno: () => koffi.errno(),
    address: (ptr) => koffi.address(ptr),
    view: (ptr, len) => koffi.view(ptr, len),
  };
  return cached;
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  4: 'EINTR',
  9: 'EBADF',
  12: 'ENOMEM',
  13: 'EACCES',
  14: 'EFAULT',
  16: 'EBUSY',
  17: 'EEXIST',
  19: 'ENODEV',
  22: 'EINVAL',
  25: 'ENOTTY',
  95: 'EOPNOTSUPP',
  6: 'ENXIO',
};

export function errnoName(e: number): string {
  return ERRNO_NAMES[e] ?? `errno ${e}`;
}

/** Pin the calling thread to one CPU; returns the previous mask to restore. */
export function pinCurrentThread(cpu: number): Uint8Array {
  const c = libc();
  const old = new Uint8Array(128);
  c.sched_getaffinity(0, old.length, old);
  const mask = new Uint8Array(128);
  mask[cpu >> 3] = 1 << (cpu & 7);
  if (c.sched_setaffinity(0, mask.length, mask) !== 0) throw new UnavailableError(`cannot pin to CPU ${cpu}`, errnoName(c.errno()));
  return old;
}

export function restoreAffinity(mask: Uint8Array): void {
  libc().sched_setaffinity(0, mask.length, mask);
}

/**
 * The host's NTP frequency state, read with adjtimex(modes = 0), which changes nothing
 * (kernel/time/ntp.c). freq is scaled ppm (ppm << 16); tick is µs per USER_HZ tick (10000 nominal).
 */
export function hostNtpState(): { freq: bigint; tick: bigint; status: number } {
  const buf = new Uint8Array(208); // struct timex, all zero: modes = 0
  if (libc().adjtimex(buf) < 0) throw new UnavailableError('adjtimex failed', errnoName(libc().errno()));
  const dv = new DataView(buf.buffer);
  return { freq: dv.getBigInt64(16, true), tick: dv.getBigInt64(88, true), status: dv.getInt32(40, true) };
}
