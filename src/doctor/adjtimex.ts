// The kernel's NTP discipline state, read with adjtimex(2) and modes = 0 — a pure query
// (kernel/time/ntp.c: __do_adjtimex changes nothing when txc->modes is 0).
//
// Read-only by construction: the only buffer ever handed to the kernel comes from timexQuery(), whose
// modes word is 0, and this module exports no way to pass another. The struct layout is the x86-64 one of
// include/uapi/linux/timex.h (LP64: __kernel_long_t is 8 bytes); test/doctor checks every offset against
// the header compiled with the system's C compiler.
import { createRequire } from 'node:module';
import { got, missing, type Reading } from './source.ts';

/** Byte offsets in struct timex on x86-64 (include/uapi/linux/timex.h). */
export const TIMEX_LAYOUT = {
  modes: 0, // unsigned int
  offset: 8,
  freq: 16,
  maxerror: 24,
  esterror: 32,
  status: 40, // int
  constant: 48,
  precision: 56,
  tolerance: 64,
  time_sec: 72, // struct timeval
  time_usec: 80,
  tick: 88,
  ppsfreq: 96,
  jitter: 104,
  shift: 112, // int
  stabil: 120,
  jitcnt: 128,
  calcnt: 136,
  errcnt: 144,
  stbcnt: 152,
  tai: 160, // int
  size: 208,
} as const;

/** STA_* status bits (include/uapi/linux/timex.h). */
export const STA = {
  PLL: 0x0001,
  PPSFREQ: 0x0002,
  PPSTIME: 0x0004,
  FLL: 0x0008,
  INS: 0x0010,
  DEL: 0x0020,
  UNSYNC: 0x0040,
  FREQHOLD: 0x0080,
  PPSSIGNAL: 0x0100,
  PPSJITTER: 0x0200,
  PPSWANDER: 0x0400,
  PPSERROR: 0x0800,
  CLOCKERR: 0x1000,
  NANO: 0x2000,
  MODE: 0x4000,
  CLK: 0x8000,
} as const;

/** adjtimex return values: the clock state (TIME_OK ... TIME_ERROR). */
export const CLOCK_STATES = ['TIME_OK', 'TIME_INS', 'TIME_DEL', 'TIME_OOP', 'TIME_WAIT', 'TIME_ERROR'] as const;

export interface Timex {
  /** Clock state returned by adjtimex (TIME_ERROR means "not synchronized"). */
  state: string;
  status: number;
  statusFlags: string[];
  /** Remaining offset being slewed, ns (the kernel reports µs unless STA_NANO). */
  offsetNs: string;
  /** Frequency correction, ppm (freq is ppm << 16). */
  freqPpm: number;
  maxerrorUs: string;
  esterrorUs: string;
  constant: string;
  precisionUs: string;
  toleranceScaledPpm: string;
  /** µs between ticks (10000 at HZ=100 USER_HZ convention). */
  tick: string;
  tai: number;
  /** Whether the kernel counts the clock as synchronized (STA_UNSYNC clear). */
  synchronized: boolean;
}

/** The request buffer: all zero, so modes = 0 (query only). The sole input ever passed to adjtimex. */
export function timexQuery(): Buffer {
  return Buffer.alloc(TIMEX_LAYOUT.size);
}

/** Decode a struct timex filled by the kernel. Pure: tests feed it hand-built buffers. */
export function decodeTimex(buf: Buffer, ret: number): Timex {
  const L = TIMEX_LAYOUT;
  const status = buf.readInt32LE(L.status);
  const nano = (status & STA.NANO) !== 0;
  const offset = buf.readBigInt64LE(L.offset);
  const freq = buf.readBigInt64LE(L.freq);
  return {
    state: CLOCK_STATES[ret] ?? `unknown (${ret})`,
    status,
    statusFlags: Object.entries(STA)
      .filter(([, bit]) => (status & bit) !== 0)
      .map(([name]) => `STA_${name}`),
    offsetNs: (nano ? offset : offset * 1000n).toString(),
    freqPpm: Number(freq) / 65536,
    maxerrorUs: buf.readBigInt64LE(L.maxerror).toString(),
    esterrorUs: buf.readBigInt64LE(L.esterror).toString(),
    constant: buf.readBigInt64LE(L.constant).toString(),
    precisionUs: buf.readBigInt64LE(L.precision).toString(),
    toleranceScaledPpm: buf.readBigInt64LE(L.tolerance).toString(),
    tick: buf.readBigInt64LE(L.tick).toString(),
    tai: buf.readInt32LE(L.tai),
    synchronized: (status & STA.UNSYNC) === 0,
  };
}

type AdjtimexFn = (buf: Buffer) => number;
let binding: AdjtimexFn | undefined | null;

function loadBinding(): AdjtimexFn | null {
  if (binding !== undefined) return binding;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    const libc = koffi.load('libc.so.6');
    binding = libc.func('int adjtimex(void *buf)') as AdjtimexFn;
  } catch {
    binding = null;
  }
  return binding;
}

/** Query the kernel's NTP state. Never changes it: the buffer passed always has modes = 0. */
export function readAdjtimex(): Reading<Timex> {
  if (process.platform !== 'linux') return missing(`adjtimex(2) is Linux-only (this is ${process.platform})`);
  if (process.arch !== 'x64') return missing(`struct timex layout is recorded for x86-64 only (this is ${process.arch})`);
  const fn = loadBinding();
  if (!fn) return missing('koffi could not load libc.so.6 (non-glibc system or koffi unavailable)');
  const buf = timexQuery();
  const ret = fn(buf);
  if (ret < 0) return missing('adjtimex(2) failed');
  return got(decodeTimex(buf, ret));
}
