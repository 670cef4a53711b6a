// The lab's experiments on a real guest, each returning the real result beside its simulated twin.
// Every function that starts QEMU (or the host chronyd) stops it on every path; the `…On` variants run
// on a guest the caller already booted, so a test suite can boot once and run everything on it.
import { InputError } from '../core/errors.ts';
import type { Ns } from '../core/time.ts';
import { importFunctionGraph, formatStackCounts } from './ftrace.ts';
import { HostChronyServer } from './host-chrony.ts';
import { buildGuestImage, type GuestImage } from './image.ts';
import { delay, hostRealtimeNs, QemuGuest, type QemuOptions, type TimedSample } from './qemu.ts';
import type { QmpEvent } from './qmp.ts';
import {
  distanceToRtcTickNs,
  modelBootQemuTcg,
  modelPause,
  rtcBootOffsetNs,
  type BootSide,
  type PauseSide,
  type SyncMode,
} from './twin.ts';

export const MACHINE = 'qemu-system-x86_64 -machine pc -accel tcg -cpu qemu64 -smp 1';

const s = (ns: bigint): number => Number(ns) / 1e9;

/** Boot a lab guest and wait until its /init serves commands. The caller must `close()` it. */
export async function bootLabGuest(opts: Omit<QemuOptions, 'image'> & { image?: GuestImage } = {}): Promise<QemuGuest> {
  const image = opts.image ?? buildGuestImage();
  const guest = new QemuGuest({ ...opts, image });
  try {
    await guest.ready();
    return guest;
  } catch (e) {
    await guest.close();
    throw e;
  }
}

async function withGuest<T>(opts: Omit<QemuOptions, 'image'>, fn: (g: QemuGuest) => Promise<T>): Promise<T> {
  const guest = await bootLabGuest(opts);
  try {
    return await fn(guest);
  } finally {
    await guest.close();
  }
}

/** Guest REALTIME − host REALTIME at the sample (host time = midpoint of the serial round trip). */
export function offsetNs(t: TimedSample): Ns {
  return t.guest.realtimeNs - t.hostMidNs;
}

// ---------------------------------------------------------------------------------------------- boot

const BOOT_LOG = /clocksource|tsc:|rtc_cmos|hpet|acpi_pm|PM-Timer|\.\.TIMER|clockevent|kvm-clock|sched_clock|Calibrating delay/i;

export interface BootResult {
  machine: string;
  kernel: string;
  real: BootSide & { sample_rtt_s: number; rtc_read_guest_s: number | null };
  /** The guest model (vmm profile qemu-tcg, kernel preset debian12). */
  model: BootSide & { boot_wall_clock_source: string };
  /**
   * QEMU's RTC arithmetic (twin.ts rtcBootOffsetNs) fed the RTC phase measured through QMP and the host
   * instant of the guest's hctosys read: checks the mechanism behind boot_offset_s to the millisecond.
   */
  rtc_check: {
    rtc_tick_host_s: number | null;
    tick_uncertainty_s: number | null;
    read_to_tick_s: number | null;
    predicted_boot_offset_s: number | null;
  };
}

/**
 * The TSC's refined calibration (arch/x86/kernel/tsc.c tsc_refine_calibration_work) runs about a second
 * after boot and only then replaces tsc-early with tsc: read the clocksource once it has settled.
 */
async function settledSysinfo(guest: QemuGuest, timeoutMs = 20_000): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sys = await guest.sysinfo();
    if (sys.current_clocksource !== 'tsc-early' || Date.now() > deadline) return sys;
    await delay(500);
  }
}

/**
 * Guest CLOCK_MONOTONIC of a dmesg line. printk stamps with local_clock(); kernel/sched/clock.c keeps
 * "ktime_get_ns() + gtod_offset == sched_clock() + raw_offset" and prints gtod_offset in its
 * "sched_clock: Marking stable (tick_gtod, gtod_offset)->(tick_raw, raw_offset)" line.
 */
export function printkToMonotonicNs(dmesg: readonly string[], pattern: RegExp): bigint | null {
  const hit = dmesg.map((l) => /^\[\s*(\d+)\.(\d+)\]\s?(.*)$/.exec(l)).find((m) => m !== null && pattern.test(m[3]!));
  if (!hit) return null;
  const printkNs = BigInt(hit[1]!) * 1_000_000_000n + BigInt(hit[2]!.padEnd(9, '0'));
  const stable = dmesg.map((l) => /sched_clock: Marking stable \((-?\d+), (-?\d+)\)/.exec(l)).find(Boolean);
  return printkNs - (stable ? BigInt(stable[2]!) : 0n);
}

/**
 * A host instant at which QEMU's RTC ticked to its next second, found by polling the pc machine's
 * "rtc-time" property (hw/i386/pc.c aliases it to the mc146818 "date") through QMP. Must run before
 * anything in the guest writes the RTC (hwclock -w moves its phase).
 */
export async function measureRtcTick(guest: QemuGuest, timeoutMs = 1_500): Promise<{ tickNs: bigint; uncertaintyNs: bigint } | null> {
  const qmp = await guest.qmp();
  const deadline = Date.now() + timeoutMs;
  let prev: { sec: number; after: bigint } | null = null;
  while (Date.now() < deadline) {
    const before = hostRealtimeNs();
    const r = (await qmp.execute('qom-get', { path: '/machine', property: 'rtc-time' })) as { tm_sec: number };
    const after = hostRealtimeNs();
    if (prev && r.tm_sec !== prev.sec) return { tickNs: (prev.after + before) / 2n, uncertaintyNs: (after - prev.after) / 2n };
    prev = { sec: r.tm_sec, after };
  }
  return null;
}

export async function labBootOn(guest: QemuGuest): Promise<BootResult> {
  const tick = await measureRtcTick(guest);
  const sys = await settledSysinfo(guest);
  const sample = await guest.clock();
  const dmesg = await guest.dmesg();
  const bootLog = dmesg.filter((l) => BOOT_LOG.test(l));
  // The hctosys instant on the guest's monotonic clock, carried over to the host's REALTIME through the sample.
  const readGuestNs = printkToMonotonicNs(dmesg, /^rtc_cmos .*setting system clock/);
  const hostAtReadNs = readGuestNs === null ? sample.hostMidNs : sample.hostMidNs - (sample.guest.monotonicNs - readGuestNs);
  return {
    machine: MACHINE,
    kernel: sys.kernel ?? '',
    real: {
      boot_log: bootLog,
      available_clocksource: sys.available_clocksource ?? '',
      current_clocksource: sys.current_clocksource ?? '',
      clockevent_device: sys.clockevent_device ?? '',
      boot_offset_s: s(offsetNs(sample)),
      sample_rtt_s: s(sample.hostRecvNs - sample.hostSentNs),
      rtc_read_guest_s: readGuestNs === null ? null : s(readGuestNs),
    },
    model: modelBootQemuTcg(guest.hostStartNs),
    rtc_check: {
      rtc_tick_host_s: tick ? s(tick.tickNs) : null,
      tick_uncertainty_s: tick ? s(tick.uncertaintyNs) : null,
      // how close the boot-time read came to an RTC tick: within a few ms the prediction may round the other way
      read_to_tick_s: tick && readGuestNs !== null ? s(distanceToRtcTickNs(tick.tickNs, hostAtReadNs)) : null,
      predicted_boot_offset_s: tick && readGuestNs !== null ? s(rtcBootOffsetNs(tick.tickNs, hostAtReadNs)) : null,
    },
  };
}

export function labBoot(): Promise<BootResult> {
  return withGuest({ lifetimeMs: 180_000 }, labBootOn);
}

// --------------------------------------------------------------------------------------------- pause

export interface PauseResult {
  machine: string;
  seconds: number;
  sync: SyncMode;
  real: PauseSide & { pause_host_s: number; offset_before_s: number; sample_rtt_s: number; notes: string[] };
  model: PauseSide;
}

function eventNs(e: QmpEvent | undefined): bigint | null {
  if (!e?.timestamp) return null;
  return BigInt(e.timestamp.seconds) * 1_000_000_000n + BigInt(e.timestamp.microseconds) * 1_000n;
}

/** Prepare the chosen sync mechanism on a booted guest; returns a cleanup. */
export async function prepareSync(
  guest: QemuGuest,
  sync: SyncMode,
): Promise<{ close: () => Promise<void>; chrony: HostChronyServer | null }> {
  if (sync === 'agent') {
    if (!guest.started.has('agent')) await guest.ok('agent-start');
    guest.started.add('agent');
    const qga = await guest.qga();
    await qga.sync(60_000);
    await qga.ping();
    return { close: async () => undefined, chrony: null };
  }
  if (sync === 'ntp') {
    const chrony = await HostChronyServer.start();
    try {
      if (!guest.started.has('net')) await guest.ok('net-up');
      guest.started.add('net');
      if (guest.started.has('chrony')) throw new InputError('chronyd already runs in this guest', 'lab pause --sync ntp');
      await guest.ok(`chrony-start 10.0.2.2 ${chrony.port}`);
      guest.started.add('chrony');
      // chronyd has disciplined the clock once it has written adjtimex (maxerror below the kernel's initial
      // NTP_PHASE_LIMIT, 16 s) and the offset is within its 0.1 s makestep threshold (the boot offset, up to
      // 1.5 s, is stepped away at its first update).
      await waitNtpSynced(guest, 90_000);
      await delay(1_000); // chronyd logs a step after making it: let that line arrive before an experiment drains the log
    } catch (e) {
      await chrony.close();
      throw e;
    }
    return { close: () => chrony.close(), chrony };
  }
  return { close: async () => undefined, chrony: null };
}

const NTP_SYNCED_S = 0.1;
/** kernel/time/ntp.c: time_maxerror starts at NTP_PHASE_LIMIT (16,000,000 µs) until an NTP daemon sets it. */
const NTP_PHASE_LIMIT_US = 16_000_000;

export async function waitNtpSynced(guest: QemuGuest, timeoutMs: number, consecutive = 1): Promise<TimedSample> {
  const deadline = Date.now() + timeoutMs;
  let first: TimedSample | null = null;
  let inRow = 0;
  for (;;) {
    const t = await guest.clock();
    const ok = t.guest.adjtimex.maxerror < NTP_PHASE_LIMIT_US && Math.abs(s(offsetNs(t))) < NTP_SYNCED_S;
    inRow = ok ? inRow + 1 : 0;
    if (inRow === 1) first = t;
    if (inRow >= consecutive) return first!;
    if (Date.now() > deadline)
      throw new InputError(
        `the guest's chronyd did not keep its clock within ${NTP_SYNCED_S} s of the host for ${consecutive} samples in ${timeoutMs} ms (last offset ${s(offsetNs(t)).toFixed(3)} s)`,
        'lab pause --sync ntp',
      );
    await delay(consecutive > 1 ? 500 : 200);
  }
}

export async function labPauseOn(guest: QemuGuest, seconds: number, sync: SyncMode): Promise<PauseResult> {
  if (!(seconds > 0 && seconds <= 600)) throw new InputError(`--seconds must be in (0, 600], got ${seconds}`, '--seconds');
  const qmp = await guest.qmp();
  const notes: string[] = [];
  guest.drain('chrony');
  const before = await guest.clock();
  const nEvents = qmp.events.length;
  const stopSent = hostRealtimeNs();
  await qmp.stop();
  const stopAck = hostRealtimeNs();
  await delay(seconds * 1000);
  const contSent = hostRealtimeNs();
  await qmp.cont();
  const contAck = hostRealtimeNs();
  const status = await qmp.queryStatus();
  if (!status.running) notes.push(`query-status after cont: ${status.status}`);
  const after = await guest.clock();
  // Pause length: QEMU's own STOP/RESUME event timestamps (host REALTIME, µs), else the QMP round trips.
  const evs = qmp.events.slice(nEvents);
  const stopNs = eventNs(evs.find((e) => e.event === 'STOP')) ?? (stopSent + stopAck) / 2n;
  const resumeNs = eventNs(evs.find((e) => e.event === 'RESUME')) ?? (contSent + contAck) / 2n;
  const pauseNs = resumeNs - stopNs;
  const hostElapsed = after.hostMidNs - before.hostMidNs;
  const running = hostElapsed - pauseNs;
  const monoAdvance = after.guest.monotonicNs - before.guest.monotonicNs - running;
  const bootAdvance = after.guest.boottimeNs - before.guest.boottimeNs - running;
  const lag = offsetNs(before) - offsetNs(after);

  let final = after;
  let doneAt: number | null = null;
  if (sync === 'agent') {
    const qga = await guest.qga();
    await qga.setTime(hostRealtimeNs());
    doneAt = s(hostRealtimeNs() - resumeNs);
    final = await guest.clock();
  } else if (sync === 'ntp') {
    // chronyd (makestep 0.1 -1) corrects once its samples show the new offset, possibly in several steps
    // (docs/fidelity.md): done = the first of 4 samples in a row (≥ 1.5 s) within 0.1 s of the host.
    final = await waitNtpSynced(guest, 90_000, 4);
    doneAt = s(final.hostMidNs - resumeNs);
    for (const m of guest.drain('chrony')) if (m.kind === 'line') notes.push(`chronyd: ${m.text}`);
    notes.push(
      `guest adjtimex after sync: freq ${(final.guest.adjtimex.freq / 65536).toFixed(3)} ppm, status 0x${final.guest.adjtimex.status.toString(16)}`,
    );
  }
  const rtt = [before, after, final].map((t) => t.hostRecvNs - t.hostSentNs).reduce((a, b) => (a > b ? a : b));
  return {
    machine: MACHINE,
    seconds,
    sync,
    real: {
      realtime_lag_after_resume_s: s(lag),
      monotonic_advance_during_pause_s: s(monoAdvance),
      boottime_advance_during_pause_s: s(bootAdvance),
      error_after_sync_s: s(offsetNs(final)),
      sync_done_at_s: doneAt,
      pause_host_s: s(pauseNs),
      offset_before_s: s(offsetNs(before)),
      sample_rtt_s: s(rtt),
      notes,
    },
    model: modelPause({ pauseNs, offsetBeforeNs: offsetNs(before), sync }),
  };
}

export async function labPause(seconds: number, sync: SyncMode): Promise<PauseResult> {
  return withGuest({ network: sync === 'ntp', lifetimeMs: 240_000 + seconds * 1000 }, async (g) => {
    const prep = await prepareSync(g, sync);
    try {
      return await labPauseOn(g, seconds, sync);
    } finally {
      await prep.close();
    }
  });
}

// --------------------------------------------------------------------------------------------- trace

export type TraceKind = 'rtc' | 'settime' | 'ntp';

export interface TraceResult {
  kind: TraceKind;
  machine: string;
  graph_functions: string[];
  real: { stacks: string[]; calls: number; skipped_lines: number; raw_lines: number };
  model: { stacks: string[]; source: string };
}

// Kernel call paths each operation takes in Linux 6.1, as the twin's trace events would be named.
const MODEL_PATHS: Record<TraceKind, { stacks: string[]; source: string }> = {
  rtc: {
    // drivers/rtc/class.c rtc_hctosys → drivers/rtc/interface.c rtc_read_time → __rtc_read_time →
    // drivers/rtc/rtc-cmos.c cmos_read_time → drivers/rtc/rtc-mc146818-lib.c mc146818_get_time
    stacks: ['rtc_read_time;__rtc_read_time;cmos_read_time;mc146818_get_time', 'do_settimeofday64'],
    source: 'drivers/rtc/{class.c,interface.c,rtc-cmos.c,rtc-mc146818-lib.c}, kernel/time/timekeeping.c',
  },
  settime: {
    // qemu-ga's settimeofday() is glibc's, which (since 2.31) issues clock_settime(CLOCK_REALTIME):
    // kernel/time/posix-timers.c posix_clock_realtime_set → kernel/time/time.c do_sys_settimeofday64 →
    // kernel/time/timekeeping.c do_settimeofday64 (→ clock_was_set); then qemu-ga's `hwclock -w`:
    // drivers/rtc/dev.c rtc_dev_ioctl → interface.c rtc_set_time → rtc-cmos.c cmos_set_time → mc146818_set_time
    stacks: [
      '__x64_sys_clock_settime;posix_clock_realtime_set;do_sys_settimeofday64;do_settimeofday64',
      '__x64_sys_clock_settime;posix_clock_realtime_set;do_sys_settimeofday64;do_settimeofday64;clock_was_set',
      'rtc_set_time;cmos_set_time;mc146818_set_time',
    ],
    source: 'kernel/time/{posix-timers.c,time.c,timekeeping.c}, drivers/rtc/{dev.c,interface.c,rtc-cmos.c,rtc-mc146818-lib.c}',
  },
  ntp: {
    // chronyd's ntp_adjtime() is glibc's clock_adjtime(CLOCK_REALTIME): kernel/time/posix-timers.c
    // posix_clock_realtime_adj → kernel/time/timekeeping.c do_adjtimex → kernel/time/ntp.c __do_adjtimex;
    // a step (ADJ_SETOFFSET) goes through timekeeping_inject_offset
    stacks: [
      '__x64_sys_clock_adjtime;posix_clock_realtime_adj;do_adjtimex;__do_adjtimex',
      '__x64_sys_clock_adjtime;posix_clock_realtime_adj;do_adjtimex;timekeeping_inject_offset',
    ],
    source: 'kernel/time/{posix-timers.c,timekeeping.c,ntp.c}',
  },
};

export const GRAPH_FUNCTIONS: Record<TraceKind, string[]> = {
  rtc: ['rtc_read_time', 'do_settimeofday64'],
  settime: ['__x64_sys_clock_settime', '__x64_sys_settimeofday', 'rtc_set_time'],
  ntp: ['__x64_sys_clock_adjtime', '__x64_sys_adjtimex'],
};

export function traceResult(kind: TraceKind, lines: readonly string[]): TraceResult {
  const imp = importFunctionGraph(lines);
  return {
    kind,
    machine: MACHINE,
    graph_functions: GRAPH_FUNCTIONS[kind],
    real: {
      stacks: formatStackCounts(imp.recorder.stackCounts()),
      calls: imp.calls,
      skipped_lines: imp.skipped.length,
      raw_lines: lines.length,
    },
    model: MODEL_PATHS[kind],
  };
}

/** settimeofday through the real agent, traced in the guest. The guest must have nothing else tracing. */
export async function labTraceSettimeOn(guest: QemuGuest): Promise<TraceResult> {
  const prep = await prepareSync(guest, 'agent');
  try {
    await guest.ok(`trace-start ${GRAPH_FUNCTIONS.settime.join(' ')}`);
    await (await guest.qga()).setTime(hostRealtimeNs());
    const lines = await guest.block('trace-dump', 'trace', 60_000);
    return traceResult('settime', lines);
  } finally {
    await prep.close();
  }
}

export async function labTraceNtpOn(guest: QemuGuest): Promise<TraceResult> {
  const chrony = await HostChronyServer.start();
  try {
    if (!guest.started.has('net')) await guest.ok('net-up');
    guest.started.add('net');
    await guest.ok(`trace-start ${GRAPH_FUNCTIONS.ntp.join(' ')}`);
    await guest.ok(`chrony-start 10.0.2.2 ${chrony.port}`);
    guest.started.add('chrony');
    await waitNtpSynced(guest, 90_000);
    await delay(1_500); // a few more polls (0.5 s each) so regular adjtimex calls are in the trace too
    const lines = await guest.block('trace-dump', 'trace', 60_000);
    return traceResult('ntp', lines);
  } finally {
    await chrony.close();
  }
}

/** The boot-time RTC read, traced from the kernel command line (ftrace= / ftrace_graph_filter=). */
export const RTC_TRACE_APPEND = ['ftrace=function_graph', `ftrace_graph_filter=${GRAPH_FUNCTIONS.rtc.join(',')}`, 'trace_buf_size=1M'];

export async function labTraceRtcOn(guest: QemuGuest): Promise<TraceResult> {
  const lines = await guest.block('trace-dump', 'trace', 60_000);
  return traceResult('rtc', lines);
}

export async function labTrace(kind: TraceKind): Promise<TraceResult> {
  switch (kind) {
    case 'rtc':
      return withGuest({ append: RTC_TRACE_APPEND, lifetimeMs: 180_000 }, labTraceRtcOn);
    case 'settime':
      return withGuest({ lifetimeMs: 180_000 }, labTraceSettimeOn);
    case 'ntp':
      return withGuest({ network: true, lifetimeMs: 180_000 }, labTraceNtpOn);
  }
}
