// The lab's experiments on a real guest, each returning the real result beside its simulated twin.
// Every function that starts QEMU (or the host chronyd) stops it on every path; the `…On` variants run
// on a guest the caller already booted, so a test suite can boot once and run everything on it.
import { InputError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { importFunctionGraph, formatStackCounts } from './ftrace.ts';
import { HostChronyServer } from './host-chrony.ts';
import { buildGuestImage, type GuestImage } from './image.ts';
import type { LabProgress } from './debian.ts';
import { delay, hostRealtimeNs, QemuGuest, type QemuOptions, type TimedSample } from './qemu.ts';
import type { QmpEvent } from './qmp.ts';
import type { SerialMessage } from './protocol.ts';
import { CLOCK_LINE, compareBootLogs, tscKhzFromLog, type BootLogComparison } from './boot-compare.ts';
import { DEFAULT_HOST } from '../vmm/index.ts';
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

export interface LabRunOptions {
  /** Told what the lab is doing at each long step (download, image, boot, waits). */
  progress?: LabProgress;
}

/** Boot a lab guest and wait until its /init serves commands. The caller must `close()` it. */
export async function bootLabGuest(opts: Omit<QemuOptions, 'image'> & { image?: GuestImage } & LabRunOptions = {}): Promise<QemuGuest> {
  const image = opts.image ?? (await buildGuestImage(opts.progress));
  opts.progress?.("booting Debian's kernel under QEMU TCG");
  const guest = new QemuGuest({ ...opts, image });
  try {
    await guest.ready();
    opts.progress?.('guest ready');
    return guest;
  } catch (e) {
    await guest.close();
    throw e;
  }
}

async function withGuest<T>(opts: Omit<QemuOptions, 'image'> & LabRunOptions, fn: (g: QemuGuest) => Promise<T>): Promise<T> {
  const guest = await bootLabGuest(opts);
  try {
    return await fn(guest);
  } finally {
    await guest.close();
  }
}

/** Guest REALTIME − host REALTIME at the sample (host time = midpoint of the serial round trip). */
/** A sysfs text as the kernel wrote it: the guest's init (src/lab/init.ts sysinfo) sends its newlines as '|'. */
function sysfsText(v: string | undefined): string {
  return v === undefined ? '' : v.replaceAll('|', '\n');
}

export function offsetNs(t: TimedSample): Ns {
  return t.guest.realtimeNs - t.hostMidNs;
}

// ---------------------------------------------------------------------------------------------- boot

/** This machine's TSC frequency as its own kernel found it, and where that was read (the CLI reads it). */
export interface HostTsc {
  khz: number;
  source: string;
}

export interface BootResult {
  machine: string;
  kernel: string;
  real: BootSide & { sample_rtt_s: number; rtc_read_guest_s: number | null; rtc_read_host_s: number | null };
  /** The guest model (vmm profile qemu-tcg with this command line's devices, kernel preset debian12). */
  model: BootSide & { boot_wall_clock_source: string; hctosys_host_s: number | null };
  /** The clock lines compared in order (boot-compare.ts says which load-dependent ones are left out or masked). */
  boot_lines: BootLogComparison;
  tsc: {
    /** The TSC kHz the model ran with: this machine's (under TCG the guest's TSC is the host's rdtsc). */
    model_khz: number;
    model_khz_source: string;
    real_detected_khz: number | null;
    real_refined_khz: number | null;
  };
  /** Differences between the real and the model columns that the twin cannot remove, each with its reason. */
  differences: string[];
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

export async function labBootOn(guest: QemuGuest, hostTsc?: HostTsc, progress?: LabProgress): Promise<BootResult> {
  progress?.("measuring the RTC's phase through QMP");
  const tick = await measureRtcTick(guest);
  progress?.('waiting for the TSC refinement (tsc-early → tsc)');
  const sys = await settledSysinfo(guest);
  const sample = await guest.clock();
  const dmesg = await guest.dmesg();
  const bootLog = dmesg.filter((l) => CLOCK_LINE.test(l));
  // The hctosys instant on the guest's monotonic clock, carried over to the host's REALTIME through the sample.
  const readGuestNs = printkToMonotonicNs(dmesg, /^rtc_cmos .*setting system clock/);
  const hostAtReadNs = readGuestNs === null ? sample.hostMidNs : sample.hostMidNs - (sample.guest.monotonicNs - readGuestNs);
  const model = modelBootQemuTcg({ hostStartNs: guest.hostStartNs, qemuArgs: guest.args, ...(hostTsc ? { hostTscKhz: hostTsc.khz } : {}) });
  const modelKhz = hostTsc?.khz ?? DEFAULT_HOST.tscKhz;
  const real_detected_khz = tscKhzFromLog(bootLog, 'detected');
  const real_refined_khz = tscKhzFromLog(bootLog, 'refined');
  const rtcReadHostS = readGuestNs === null ? null : s(hostAtReadNs - guest.hostStartNs);
  const predicted = tick && readGuestNs !== null ? s(rtcBootOffsetNs(tick.tickNs, hostAtReadNs)) : null;
  const differences = bootDifferences({
    hostTsc,
    modelKhz,
    real_detected_khz,
    real_refined_khz,
    realOffset: s(offsetNs(sample)),
    modelOffset: model.boot_offset_s,
    predicted,
    rtcReadHostS,
    modelReadHostS: model.hctosys_host_s,
  });
  return {
    machine: MACHINE,
    kernel: sys.kernel ?? '',
    boot_lines: compareBootLogs(bootLog, model.boot_log),
    tsc: {
      model_khz: modelKhz,
      model_khz_source: hostTsc?.source ?? `not read; the qemu-tcg profile's default host (${DEFAULT_HOST.tscKhz} kHz)`,
      real_detected_khz,
      real_refined_khz,
    },
    differences,
    real: {
      boot_log: bootLog,
      // sysfs texts exactly as the kernel writes them, like `timevisor guest --json`
      available_clocksource: sysfsText(sys.available_clocksource),
      current_clocksource: sysfsText(sys.current_clocksource),
      clockevent_device: sysfsText(sys.clockevent_device),
      boot_offset_s: s(offsetNs(sample)),
      sample_rtt_s: s(sample.hostRecvNs - sample.hostSentNs),
      rtc_read_guest_s: readGuestNs === null ? null : s(readGuestNs),
      rtc_read_host_s: rtcReadHostS,
    },
    model,
    rtc_check: {
      rtc_tick_host_s: tick ? s(tick.tickNs) : null,
      tick_uncertainty_s: tick ? s(tick.uncertaintyNs) : null,
      // how close the boot-time read came to an RTC tick: within a few ms the prediction may round the other way
      read_to_tick_s: tick && readGuestNs !== null ? s(distanceToRtcTickNs(tick.tickNs, hostAtReadNs)) : null,
      predicted_boot_offset_s: predicted,
    },
  };
}

const f3 = (v: number): string => v.toFixed(3);

/** What the twin cannot make equal, measured on this run. */
export function bootDifferences(d: {
  hostTsc: HostTsc | undefined;
  modelKhz: number;
  real_detected_khz: number | null;
  real_refined_khz: number | null;
  realOffset: number;
  modelOffset: number;
  predicted: number | null;
  rtcReadHostS: number | null;
  modelReadHostS: number | null;
}): string[] {
  const out: string[] = [];
  if (!d.hostTsc) out.push(`this machine's TSC frequency could not be read, so the model ran on the profile's ${d.modelKhz} kHz`);
  const ppm = (k: number | null) => (k === null ? null : ((k - d.modelKhz) / d.modelKhz) * 1e6);
  const det = ppm(d.real_detected_khz);
  const ref = ppm(d.real_refined_khz);
  if (det !== null && det !== 0)
    out.push(
      `TSC: the real guest detected ${d.real_detected_khz} kHz (${det.toFixed(1)} ppm from this machine's ${d.modelKhz} kHz): its calibration under TCG measures the host's rdtsc against QEMU's emulated PIT/HPET with emulated-instruction delays that depend on load; the model's calibration is exact`,
    );
  if (ref !== null && ref !== 0)
    out.push(
      `TSC: the real refinement gave ${d.real_refined_khz} kHz (${ref.toFixed(1)} ppm): every real run so far refined 7-8 ppm below the host's rate (docs/fidelity.md), a steady bias of the TCG guest's TSC against QEMU's HPET that the model does not explain; the model refines to the host's rate`,
    );
  if (d.rtcReadHostS !== null && d.modelReadHostS !== null) {
    const why =
      d.predicted !== null
        ? `; QEMU's RTC arithmetic with the real read instant gives ${f3(d.predicted)} s against the real ${f3(d.realOffset)} s`
        : '';
    out.push(
      `boot offset ${f3(d.realOffset)} s real vs ${f3(d.modelOffset)} s model: both are the RTC's whole second + 0.5 s − the host time of the read, and the RTC's phase is QEMU's start in both; the real guest read the RTC ${f3(d.rtcReadHostS)} s after QEMU started, the model at ${f3(d.modelReadHostS)} s (its boot phases are a KVM guest's, not TCG's on this host's load)${why}`,
    );
  }
  return out;
}

export function labBoot(opts: { hostTsc?: HostTsc } & LabRunOptions = {}): Promise<BootResult> {
  return withGuest({ lifetimeMs: 180_000, ...opts }, (g) => labBootOn(g, opts.hostTsc, opts.progress));
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
): Promise<{
  close: () => Promise<void>;
  chrony: HostChronyServer | null /** host time chronyd's start was acknowledged */;
  startedAt?: Ns;
}> {
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
    let startedAt: Ns | undefined;
    try {
      if (!guest.started.has('net')) await guest.ok('net-up');
      guest.started.add('net');
      if (guest.started.has('chrony')) throw new InputError('chronyd already runs in this guest', 'lab pause --sync ntp');
      await guest.ok(`chrony-start 10.0.2.2 ${chrony.port}`);
      startedAt = hostRealtimeNs();
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
    return { close: () => chrony.close(), chrony, ...(startedAt !== undefined ? { startedAt } : {}) };
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

/** What a caller may watch during labPauseOn: chronyd's lines as they are consumed, the pause's host instants. */
export interface PauseHooks {
  chronyLine?: (m: Extract<SerialMessage, { kind: 'line' }>) => void;
  pauseTimes?: (stopNs: Ns, resumeNs: Ns) => void;
}

export async function labPauseOn(guest: QemuGuest, seconds: number, sync: SyncMode, hooks: PauseHooks = {}): Promise<PauseResult> {
  if (!(seconds > 0 && seconds <= 600)) throw new InputError(`--seconds must be in (0, 600], got ${seconds}`, '--seconds');
  const qmp = await guest.qmp();
  const notes: string[] = [];
  for (const m of guest.drain('chrony')) if (m.kind === 'line') hooks.chronyLine?.(m);
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
  hooks.pauseTimes?.(stopNs, resumeNs);
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
    for (const m of guest.drain('chrony'))
      if (m.kind === 'line') {
        hooks.chronyLine?.(m);
        notes.push(`chronyd: ${m.text}`);
      }
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

export async function labPause(seconds: number, sync: SyncMode, opts: LabRunOptions = {}): Promise<PauseResult> {
  return withGuest({ network: sync === 'ntp', lifetimeMs: 240_000 + seconds * 1000, ...opts }, async (g) => {
    if (sync !== 'none')
      opts.progress?.(sync === 'agent' ? 'starting qemu-ga in the guest' : 'starting chronyd on the host and in the guest');
    const prep = await prepareSync(g, sync);
    opts.progress?.(`pausing the guest for ${seconds} s`);
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

export async function labTrace(kind: TraceKind, opts: LabRunOptions = {}): Promise<TraceResult> {
  switch (kind) {
    case 'rtc':
      return withGuest({ append: RTC_TRACE_APPEND, lifetimeMs: 180_000, ...opts }, labTraceRtcOn);
    case 'settime':
      return withGuest({ lifetimeMs: 180_000, ...opts }, labTraceSettimeOn);
    case 'ntp':
      return withGuest({ network: true, lifetimeMs: 180_000, ...opts }, labTraceNtpOn);
  }
}
