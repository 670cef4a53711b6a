// What one clock_gettime() costs on this machine: through the vDSO (libc's clock_gettime, which the
// vDSO serves in userspace when the current clocksource allows it) and as a real system call
// (syscall(SYS_clock_gettime)), both called through koffi. A third call of the same shape (an int and a
// buffer in, a word out) that does no work — memchr(buf, 0, 0) — measures koffi's own overhead, which is
// subtracted; raw figures are kept too.
//
// Which clocksources the vDSO can read: arch/x86/include/asm/vdso/gettimeofday.h (VDSO_CLOCKMODE_TSC,
// _PVCLOCK for kvm-clock with the stable bit, _HVCLOCK for the Hyper-V TSC page); others fall back to
// the system call. The COARSE clocks never read the clocksource (lib/vdso/gettimeofday.c).
import { createRequire } from 'node:module';
import { got, missing, type Reading } from './source.ts';

/** clockid_t values (include/uapi/linux/time.h). */
export const CLOCK_IDS = {
  CLOCK_REALTIME: 0,
  CLOCK_MONOTONIC: 1,
  CLOCK_MONOTONIC_RAW: 4,
  CLOCK_REALTIME_COARSE: 5,
  CLOCK_MONOTONIC_COARSE: 6,
  CLOCK_BOOTTIME: 7,
  CLOCK_TAI: 11,
} as const;

/** __NR_clock_gettime on x86-64 (arch/x86/entry/syscalls/syscall_64.tbl). */
export const NR_CLOCK_GETTIME_X86_64 = 228;

export type ClockName = keyof typeof CLOCK_IDS;

export interface ClockCost {
  clock: ClockName;
  /** ns per call through libc/vDSO, koffi overhead subtracted (floored at 0). */
  vdsoNs: number;
  /** ns per call as a real system call, koffi overhead subtracted. */
  syscallNs: number;
  rawVdsoNs: number;
  rawSyscallNs: number;
  /** True when the vDSO path is clearly cheaper than the system call: served in userspace. */
  servedInUserspace: boolean;
}

export interface VdsoCost {
  /** ns per koffi call of a no-op libc function of the same shape (memchr with length 0): the floor subtracted above. */
  ffiOverheadNs: number;
  iterations: number;
  clocks: ClockCost[];
}

type TimeFn = (clk: number, ts: Buffer) => number;
type SysFn = (nr: number, clk: number, ts: Buffer) => number;

interface Bindings {
  clockGettime: TimeFn;
  syscall: SysFn;
  noop: (buf: Buffer, c: number, n: number) => number;
}

let bindings: Bindings | null | undefined;

function load(): Bindings | null {
  if (bindings !== undefined) return bindings;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    const libc = koffi.load('libc.so.6');
    bindings = {
      clockGettime: libc.func('int clock_gettime(int clk, void *ts)') as TimeFn,
      syscall: libc.func('long syscall(long nr, long clk, void *ts)') as SysFn,
      noop: libc.func('long memchr(void *s, int c, long n)') as Bindings['noop'],
    };
  } catch {
    bindings = null;
  }
  return bindings;
}

/** ns per call for one round of `n` calls. */
function perCall(n: number, call: () => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) call();
  return Number(process.hrtime.bigint() - t0) / n;
}

/**
 * Rounds interleave every series (floor, then each clock through the vDSO and as a system call), and each
 * series keeps its best round: load from other processes then hits all series alike instead of one block.
 */
export function measureClockCost(iterations = 2000, rounds = 5): Reading<VdsoCost> {
  if (process.platform !== 'linux') return missing(`clock_gettime cost is measured on Linux only (this is ${process.platform})`);
  if (process.arch !== 'x64') return missing(`the system call number is recorded for x86-64 only (this is ${process.arch})`);
  const b = load();
  if (!b) return missing('koffi could not load libc.so.6');
  const ts = Buffer.alloc(16);
  const ids = (Object.entries(CLOCK_IDS) as [ClockName, number][]).filter(([, id]) => b.clockGettime(id, ts) === 0);
  let ffi = Infinity;
  const best = ids.map(() => ({ vdso: Infinity, sys: Infinity }));
  for (let r = 0; r < rounds; r++) {
    ffi = Math.min(
      ffi,
      perCall(iterations, () => b.noop(ts, 0, 0)),
    );
    ids.forEach(([, id], i) => {
      best[i]!.vdso = Math.min(
        best[i]!.vdso,
        perCall(iterations, () => b.clockGettime(id, ts)),
      );
      best[i]!.sys = Math.min(
        best[i]!.sys,
        perCall(iterations, () => b.syscall(NR_CLOCK_GETTIME_X86_64, id, ts)),
      );
    });
  }
  const clocks = ids.map(([name], i): ClockCost => {
    const { vdso, sys } = best[i]!;
    const vdsoNs = Math.max(0, vdso - ffi);
    const syscallNs = Math.max(0, sys - ffi);
    return {
      clock: name,
      vdsoNs: round1(vdsoNs),
      syscallNs: round1(syscallNs),
      rawVdsoNs: round1(vdso),
      rawSyscallNs: round1(sys),
      servedInUserspace: vdsoNs * 2 < syscallNs,
    };
  });
  return got({ ffiOverheadNs: round1(ffi), iterations: iterations * rounds, clocks });
}

const round1 = (x: number) => Math.round(x * 10) / 10;
