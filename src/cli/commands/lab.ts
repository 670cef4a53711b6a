// `timevisor lab boot|pause|trace`: experiments on a real Linux guest under real QEMU (TCG), each printed
// beside its simulated twin. QEMU and any host chronyd (serve-only, -x) are stopped on every path.
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import { clockFacts, liveSource, mhzTextToKhz, parseCpuinfo, parseKernelLog, type SystemSource } from '../../doctor/index.ts';
import {
  killChildren,
  labBoot,
  labCacheDir,
  labPause,
  labTrace,
  removePendingTemporaries,
  type BootResult,
  type HostTsc,
  type LabProgress,
  type PauseResult,
  type TraceResult,
} from '../../lab/index.ts';
import type { SyncMode } from '../../lab/index.ts';
import type { TraceKind } from '../../lab/index.ts';
import { labMigrate, MAX_DOWNTIME_LIMIT_MS, type MigrateResult } from '../../lab/index.ts';
import { labSnapshot, type MoveSide, type SnapshotResult } from '../../lab/index.ts';
import {
  compareChronyPause,
  labChronyPause,
  parseChronyPauseRecord,
  type ChronyPauseComparison,
  type ChronyPauseRecord,
} from '../../lab/index.ts';
import { readFileSync } from 'node:fs';

const fmt = (v: number | null): string => (v === null ? '—' : `${v.toFixed(6)} s`);

function printBoot(r: BootResult): void {
  const out: string[] = [`machine: ${r.machine}`, `kernel:  ${r.kernel}`, ''];
  const rows: [string, string, string][] = [
    ['available_clocksource', r.real.available_clocksource, r.model.available_clocksource],
    ['current_clocksource', r.real.current_clocksource, r.model.current_clocksource],
    ['clockevent_device', r.real.clockevent_device, r.model.clockevent_device],
    ['boot_offset_s', fmt(r.real.boot_offset_s), fmt(r.model.boot_offset_s)],
  ];
  out.push(`${'quantity'.padEnd(24)}${'real'.padEnd(28)}model`);
  for (const [k, a, b] of rows) out.push(`${k.padEnd(24)}${a.trimEnd().padEnd(28)}${b.trimEnd()}`);
  out.push('', `model TSC: ${r.tsc.model_khz} kHz (${r.tsc.model_khz_source})`);
  const c = r.boot_lines;
  out.push(
    c.firstDifference === null
      ? `clock lines: the ${c.real.length} that do not depend on host load are the same text in the same order`
      : `clock lines: differ at line ${c.firstDifference.index + 1} of those compared: real "${c.firstDifference.real ?? '(none)'}", model "${c.firstDifference.model ?? '(none)'}"`,
  );
  if (r.rtc_check.predicted_boot_offset_s !== null) {
    out.push(
      '',
      `QEMU RTC arithmetic with the RTC phase measured through QMP: boot offset ${fmt(r.rtc_check.predicted_boot_offset_s)} (read ${fmt(r.rtc_check.read_to_tick_s)} from an RTC tick)`,
    );
  }
  if (r.differences.length) out.push('', 'differences the twin cannot remove:', ...r.differences.map((d) => `  - ${d}`));
  out.push('', 'real boot log (clock lines):', ...r.real.boot_log.map((l) => '  ' + l));
  out.push('', 'model boot log:', ...r.model.boot_log.map((l) => '  ' + l));
  process.stdout.write(out.join('\n') + '\n');
}

function printPause(r: PauseResult): void {
  const keys = [
    'realtime_lag_after_resume_s',
    'monotonic_advance_during_pause_s',
    'boottime_advance_during_pause_s',
    'error_after_sync_s',
    'sync_done_at_s',
  ] as const;
  const out = [`machine: ${r.machine}`, `pause: ${r.seconds} s (host measured ${r.real.pause_host_s.toFixed(6)} s), sync: ${r.sync}`, ''];
  out.push(`${'quantity'.padEnd(36)}${'real'.padEnd(20)}model`);
  for (const k of keys) out.push(`${k.padEnd(36)}${fmt(r.real[k]).padEnd(20)}${fmt(r.model[k])}`);
  out.push('', `serial sample round trip ≤ ${r.real.sample_rtt_s.toFixed(3)} s`, ...r.real.notes);
  process.stdout.write(out.join('\n') + '\n');
}

function printTrace(r: TraceResult): void {
  const out = [`machine: ${r.machine}`, `function_graph on: ${r.graph_functions.join(', ')}`, '', 'real (in-guest ftrace, stack counts):'];
  out.push(...r.real.stacks.map((l) => '  ' + l), '', `model (call paths, ${r.model.source}):`, ...r.model.stacks.map((l) => '  ' + l));
  process.stdout.write(out.join('\n') + '\n');
}

function printChrony(r: ChronyPauseRecord, c: ChronyPauseComparison): void {
  const sgn = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)} s`;
  const out = [
    `${r.method}: chronyd in the guest (server iburst minpoll -1 maxpoll -1, makestep 0.1 -1) against a serve-only chronyd on the host`,
    `chronyd started ${sgn(r.offset_at_start_s)} off; QEMU stopped ${r.stop_at_s.toFixed(3)} s after its start, for ${(r.resume_at_s - r.stop_at_s).toFixed(3)} s`,
    "twin: the chronyd model (src/guest/chrony) on this run's timeline, path delays and request times",
    '',
    `${'steps after the resume'.padEnd(24)}${'real'.padEnd(26)}twin`,
  ];
  const n = Math.max(c.real_steps.length, c.twin_steps.length);
  const cell = (x: { at_s: number; step_s: number } | undefined) => (x ? `${sgn(x.step_s)} at ${x.at_s.toFixed(2)} s` : '—');
  for (let i = 0; i < n; i++) out.push(`${`  ${i + 1}`.padEnd(24)}${cell(c.real_steps[i]).padEnd(26)}${cell(c.twin_steps[i])}`);
  out.push('', `${'quantity'.padEnd(34)}${'real'.padEnd(10)}${'twin'.padEnd(10)}${'tolerance'.padEnd(11)}`);
  for (const k of c.checks)
    out.push(
      `${k.quantity.padEnd(34)}${String(+k.real.toFixed(3)).padEnd(10)}${String(+k.twin.toFixed(3)).padEnd(10)}${`±${k.tolerance}`.padEnd(11)}${k.ok ? 'ok' : 'OUTSIDE'}`,
    );
  out.push('', c.ok ? 'the twin is within every tolerance' : 'the twin is outside a tolerance', ...r.pause.notes);
  process.stdout.write(out.join('\n') + '\n');
}

const MOVE_KEYS = [
  'realtime_lag_after_resume_s',
  'monotonic_advance_during_gap_s',
  'boottime_advance_during_gap_s',
  'rtc_change_s',
  'error_after_sync_s',
  'sync_done_at_s',
] as const;

function moveTable(real: MoveSide, model: MoveSide): string[] {
  const out = [`${'quantity'.padEnd(36)}${'real'.padEnd(20)}model`];
  for (const k of MOVE_KEYS) out.push(`${k.padEnd(36)}${fmt(real[k]).padEnd(20)}${fmt(model[k])}`);
  return out;
}

function printSnapshot(r: SnapshotResult): void {
  const out = [
    `machine: ${r.machine}`,
    `snapshot: ${r.method}`,
    `no QEMU for ${r.seconds} s; STOP → RESUME ${r.real.gap_host_s.toFixed(6)} s (save ${r.real.save_s.toFixed(3)} s, ${r.real.state_bytes} bytes; load ${r.real.load_s.toFixed(3)} s), sync: ${r.sync}`,
    '',
    ...moveTable(r.real, r.model),
    '',
    `serial sample round trip ≤ ${r.real.sample_rtt_s.toFixed(3)} s; RTC tick timing ± ${r.real.rtc_uncertainty_s.toFixed(3)} s`,
    ...r.real.notes,
    '',
    'model: the world simulation, profile qemu-tcg (its scenario is in --json):',
    ...r.model.verdicts.map((v) => '  ' + v),
  ];
  process.stdout.write(out.join('\n') + '\n');
}

function printMigrate(r: MigrateResult): void {
  const q = r.real;
  const out = [
    `machine: ${r.machine}`,
    `migration: ${r.method}`,
    `downtime-limit ${r.downtime_limit_ms} ms; STOP → RESUME ${(q.downtime_host_s * 1000).toFixed(3)} ms (QEMU's own figure ${q.qemu_downtime_ms ?? '—'} ms), total ${q.total_time_ms ?? '—'} ms, ${q.transferred_bytes ?? '—'} bytes`,
    '',
    ...moveTable(r.real, r.model),
    '',
    `serial sample round trip ≤ ${q.sample_rtt_s.toFixed(3)} s; RTC tick timing ± ${q.rtc_uncertainty_s.toFixed(3)} s`,
    ...q.notes,
    '',
    'model: the world simulation, profile qemu-tcg (its scenario is in --json):',
    ...r.model.verdicts.map((v) => '  ' + v),
  ];
  process.stdout.write(out.join('\n') + '\n');
}

function json(v: unknown): void {
  process.stdout.write(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2) + '\n');
}

/**
 * Ctrl-C or a TERM ends the run at once: every lab step is asynchronous, so the handler runs while QEMU,
 * apt-get, dpkg-deb or tar still work; it ends them (QEMU through timeout(1), which passes the signal on),
 * removes the temporaries being written into the cache, and exits 128 + the signal number.
 */
function stopOnSignals(): void {
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)
    process.once(sig, () => {
      const n = killChildren('SIGTERM');
      removePendingTemporaries();
      process.stderr.write(`timevisor: lab: ${sig}: stopped${n ? ` (ended ${n} helper process${n > 1 ? 'es' : ''})` : ''}\n`);
      process.exit(code);
    });
}

/**
 * What a long lab run is doing, on stderr, only when stderr is a terminal (piped output stays clean): one
 * line per step, the current one redrawn with its elapsed seconds.
 */
export function labProgress(stream: NodeJS.WriteStream = process.stderr): { progress: LabProgress; done: () => void } {
  if (!stream.isTTY) return { progress: () => undefined, done: () => undefined };
  const t0 = Date.now();
  let step = '';
  let since = t0;
  const draw = () =>
    stream.write(
      `\r\x1b[K[${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${step} (${((Date.now() - since) / 1000).toFixed(0)} s)`,
    );
  const timer = setInterval(() => step && draw(), 1000);
  timer.unref();
  return {
    progress: (next) => {
      if (step) stream.write('\n');
      step = next;
      since = Date.now();
      draw();
    },
    done: () => {
      clearInterval(timer);
      if (step) stream.write('\n');
    },
  };
}

/**
 * This machine's TSC frequency the way the doctor reads it: what its kernel printed ("Refined TSC
 * clocksource calibration", else "Detected … MHz TSC|processor"), else /proc/cpuinfo's "cpu MHz".
 */
export function readHostTsc(src: SystemSource = liveSource()): HostTsc | undefined {
  const log = src.kernelLog();
  if (log.ok) {
    const f = clockFacts(parseKernelLog(log.value));
    const [mhz, line] = f.tscRefinedMhz
      ? [f.tscRefinedMhz, 'Refined TSC clocksource calibration']
      : f.tscDetectedTscMhz
        ? [f.tscDetectedTscMhz, 'Detected … MHz TSC']
        : [f.tscDetectedMhz, 'Detected … MHz processor'];
    if (mhz) return { khz: mhzTextToKhz(mhz), source: `this machine's kernel log, "tsc: ${line}" ${mhz} MHz` };
  }
  const cpu = src.readText('/proc/cpuinfo');
  const mhz = cpu.ok ? parseCpuinfo(cpu.value).cpuMhz : undefined;
  if (mhz && /^\d+\.\d+$/.test(mhz))
    return {
      khz: mhzTextToKhz(mhz),
      source: `/proc/cpuinfo "cpu MHz" ${mhz} (the kernel log had no tsc line${log.ok ? '' : `: ${log.reason}`})`,
    };
  return undefined;
}

/**
 * Run a lab experiment: the cache directory is checked first (a bad TIMEVISOR_CACHE is one clear line
 * before anything starts), signals stop it cleanly, progress shows on a terminal.
 */
async function withProgress<T>(fn: (progress: LabProgress) => Promise<T>): Promise<T> {
  labCacheDir();
  stopOnSignals();
  const p = labProgress();
  try {
    return await fn(p.progress);
  } finally {
    p.done();
  }
}

/** --seconds (0, 600] and --sync none|agent|ntp, as lab pause and lab snapshot take them. */
function secondsAndSync(opts: { seconds: string; sync: string }): { seconds: number; sync: SyncMode } {
  const seconds = Number(opts.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600)
    throw new InputError(`expected a number of seconds in (0, 600], got "${opts.seconds}"`, '--seconds');
  if (!['none', 'agent', 'ntp'].includes(opts.sync)) throw new InputError(`expected none, agent or ntp, got "${opts.sync}"`, '--sync');
  return { seconds, sync: opts.sync as SyncMode };
}

export function registerLab(program: Command): void {
  const lab = program
    .command('lab')
    .description('Real Linux guest under real QEMU (TCG): boot, pause/resume and sync, in-guest traces — each beside its simulated twin');

  lab
    .command('boot')
    .description('boot the guest; its clock boot lines, clocksources, clockevent device and RTC-derived boot offset')
    .option('--json', 'print one JSON object with `real` and `model`')
    .action(async (opts: { json?: boolean }) => {
      const hostTsc = readHostTsc();
      const r = await withProgress((progress) => labBoot({ progress, ...(hostTsc ? { hostTsc } : {}) }));
      if (opts.json) json(r);
      else printBoot(r);
    });

  lab
    .command('pause')
    .description('QMP stop, wait, cont; what REALTIME, MONOTONIC and BOOTTIME saw, and the error after a sync')
    .requiredOption('--seconds <n>', 'pause length in seconds')
    .option(
      '--sync <mode>',
      'none | agent (qemu-ga guest-set-time) | ntp (chronyd in the guest against a serve-only chronyd on host loopback)',
      'none',
    )
    .option('--json', 'print one JSON object with `real` and `model`')
    .action(async (opts: { seconds: string; sync: string; json?: boolean }) => {
      const { seconds, sync } = secondsAndSync(opts);
      const r = await withProgress((progress) => labPause(seconds, sync, { progress }));
      if (opts.json) json(r);
      else printPause(r);
    });

  lab
    .command('chrony')
    .description("pause a guest whose chronyd runs makestep 0.1 -1 at 0.5 s polls; its steps after the resume beside the chrony model's")
    .option('--seconds <n>', 'pause length in seconds', '3')
    .option('--replay <file>', "no QEMU: compare the twin with a saved run (this command's --json output or its `real`)")
    .option('--json', 'print one JSON object with `real` (the record), `model` (the twin) and `checks`')
    .action(async (opts: { seconds: string; replay?: string; json?: boolean }) => {
      let r: ChronyPauseRecord;
      if (opts.replay !== undefined) {
        let text: string;
        try {
          text = readFileSync(opts.replay, 'utf8');
        } catch (e) {
          throw new InputError(`cannot read ${opts.replay}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, '--replay');
        }
        r = parseChronyPauseRecord(text, opts.replay);
      } else {
        const { seconds } = secondsAndSync({ seconds: opts.seconds, sync: 'ntp' });
        r = await withProgress((progress) => labChronyPause(seconds, { progress }));
      }
      const c = compareChronyPause(r);
      if (opts.json) json({ real: r, model: { steps: c.twin_steps, samples: c.twin.samples }, checks: c.checks, ok: c.ok });
      else printChrony(r, c);
    });

  lab
    .command('snapshot')
    .description('save the guest to a file (QMP migrate exec:), quit QEMU, restore it N s later in a new QEMU; clocks before and after')
    .requiredOption('--seconds <n>', 'time with no QEMU running, in seconds')
    .option('--sync <mode>', 'none | agent (qemu-ga guest-set-time) | ntp (chronyd in the guest against a serve-only chronyd)', 'none')
    .option('--json', 'print one JSON object with `real` and `model`')
    .action(async (opts: { seconds: string; sync: string; json?: boolean }) => {
      const { seconds, sync } = secondsAndSync(opts);
      const r = await withProgress((progress) => labSnapshot(seconds, sync, { progress }));
      if (opts.json) json(r);
      else printSnapshot(r);
    });

  lab
    .command('migrate')
    .description('live-migrate the guest to a second QEMU over a unix socket; clocks across the downtime')
    .option('--downtime <ms>', "QEMU's downtime-limit, ms", '300')
    .option('--json', 'print one JSON object with `real` and `model`')
    .action(async (opts: { downtime: string; json?: boolean }) => {
      const ms = Number(opts.downtime);
      if (!/^\d+$/.test(opts.downtime) || ms < 1 || ms > MAX_DOWNTIME_LIMIT_MS)
        throw new InputError(`expected an integer number of ms in [1, ${MAX_DOWNTIME_LIMIT_MS}], got "${opts.downtime}"`, '--downtime');
      const r = await withProgress((progress) => labMigrate(ms, { progress }));
      if (opts.json) json(r);
      else printMigrate(r);
    });

  lab
    .command('trace')
    .description(
      'in-guest ftrace (function_graph) of the kernel path for: rtc (boot-time RTC read), settime (guest-set-time), ntp (adjtimex)',
    )
    .argument('<what>', 'rtc | settime | ntp')
    .option('--json', 'print one JSON object with `real` and `model`')
    .action(async (what: string, opts: { json?: boolean }) => {
      if (!['rtc', 'settime', 'ntp'].includes(what)) throw new InputError(`expected rtc, settime or ntp, got "${what}"`, 'lab trace');
      const r = await withProgress((progress) => labTrace(what as TraceKind, { progress }));
      if (opts.json) json(r);
      else printTrace(r);
    });
}
