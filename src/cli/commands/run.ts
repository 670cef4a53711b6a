// `timevisor run [FILE]`: run a scenario (or the built-in demo) and report every guest's clock offset.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import { formatDuration } from '../../core/index.ts';
import {
  checkWork,
  DEMO_SCENARIO_YAML,
  loadScenario,
  parseScenarioText,
  resolveScenario,
  type Scenario,
  type SimulationResult,
} from '../../world/index.ts';
import { AtomicFile, ensureDir, removeDirs, writeFileAtomic } from '../output.ts';
import { progressBar } from '../progress.ts';
import { moduleWorker, workerBundle } from '../worker-bundle.ts';
import { parseTimelineCsv, reportHtml, sharingTable } from '../../report/index.ts';
import type { RunJob, RunMessage } from '../run-worker.ts';

function fmtOffset(nsStr: string): string {
  const ns = BigInt(nsStr);
  return (ns >= 0n ? '+' : '') + formatDuration(ns);
}

/** Columns padded to their widest cell; the columns in `right` (numbers) aligned on the right. */
function table(rows: string[][], right: ReadonlySet<number>): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...r[i]!].length)));
  const pad = (c: string, i: number) => {
    const fill = ' '.repeat(widths[i]! - [...c].length);
    return right.has(i) ? fill + c : c + fill;
  };
  return rows.map((r) => `  ${r.map(pad).join('  ').trimEnd()}`);
}

const SPARK_WIDTH = 60;
const MARKS = '▁▂▃▄▅▆▇█';

/**
 * One sparkline per VM on a shared time axis (the whole run in SPARK_WIDTH columns), so VMs that boot
 * later start further right; each column shows the VM's largest offset in it (so a short excursion after a
 * pause stays visible), scaled to the VM's own range.
 */
function sparklines(res: Pick<SimulationResult, 'summary' | 'series'>, nameWidth: number): string[] {
  const end = BigInt(Math.round(res.summary.duration_s * 1e9));
  const out: string[] = [];
  for (const v of res.summary.vms) {
    const series = res.series[v.name];
    if (!series || series.t.length < 2) continue;
    const cols: (number | null)[] = Array(SPARK_WIDTH).fill(null);
    for (let i = 0; i < series.t.length; i++) {
      const c = end > 0n ? Math.min(SPARK_WIDTH - 1, Number((series.t[i]! * BigInt(SPARK_WIDTH)) / end)) : 0;
      const off = Number(series.offsetNs[i]!);
      const prev = cols[c];
      if (prev === null || prev === undefined || Math.abs(off) > Math.abs(prev)) cols[c] = off;
    }
    const seen = cols.filter((c): c is number => c !== null);
    const lo = Math.min(...seen);
    const hi = Math.max(...seen);
    const spark = cols.map((p) => (p === null ? ' ' : MARKS[hi === lo ? 0 : Math.min(7, Math.floor(((p - lo) / (hi - lo)) * 8))])).join('');
    out.push(
      `  ${v.name.padEnd(nameWidth)}  ${spark}  (${formatDuration(BigInt(Math.round(lo)))} … ${formatDuration(BigInt(Math.round(hi)))})`,
    );
  }
  if (out.length > 0) out.push(`  ${''.padEnd(nameWidth)}  0${formatDuration(end).padStart(SPARK_WIDTH - 1)}`);
  return out;
}

/** Host CPU sharing and timer interrupts, where not trivial (src/report/sharing.ts). */
function sharingLines(vms: SimulationResult['summary']['vms']): string[] {
  const t = sharingTable(vms);
  if (!t) return [];
  return [
    '',
    'host CPUs and timer interrupts:',
    ...table([t.head, ...t.rows], new Set(t.head.map((_, i) => i).filter((i) => i > 0))),
    ...t.legend.map((l) => `  (${l})`),
  ];
}

/** The human summary: what was simulated, and each guest's offset from true time, with a sparkline. */
export function humanSummary(res: Pick<SimulationResult, 'summary' | 'series'>): string {
  const s = res.summary;
  const lines: string[] = [];
  lines.push(
    `scenario "${s.scenario}" (seed ${s.seed}): ${formatDuration(BigInt(Math.round(s.duration_s * 1e9)))} of simulated time from ${s.start}, ${s.samples} samples`,
  );
  lines.push('');
  for (const h of s.hosts) {
    lines.push(
      `host ${h.name}: TSC ${(h.tsc_khz / 1000).toFixed(3)} MHz, crystal ${h.ppm_start >= 0 ? '+' : ''}${h.ppm_start.toFixed(3)} ppm → ${h.ppm_end >= 0 ? '+' : ''}${h.ppm_end.toFixed(3)} ppm at the end, ` +
        (h.ntp ? 'host clock NTP-synced' : `host clock free-running (offset ${fmtOffset(h.final_realtime_offset_ns)} at the end)`),
    );
  }
  lines.push('');
  lines.push('guest CLOCK_REALTIME minus true time:');
  const rows = [['vm', 'profile', 'clocksource', 'wall clock from', 'sync', 'at boot', 'at end', 'worst', 'drift now']];
  for (const v of s.vms) {
    rows.push([
      v.name,
      v.profile,
      v.clocksource,
      v.wall_clock_source,
      v.sync,
      fmtOffset(v.initial_offset_ns),
      fmtOffset(v.final_offset_ns),
      formatDuration(BigInt(v.max_abs_offset_ns)),
      `${v.drift_ppm >= 0 ? '+' : ''}${v.drift_ppm.toFixed(3)} ppm`,
    ]);
  }
  lines.push(...table(rows, new Set([5, 6, 7, 8])));
  lines.push(...sharingLines(s.vms));
  const paused = s.vms.filter((v) => v.pauses.length > 0);
  if (paused.length > 0) {
    lines.push('');
    lines.push('pauses (what the guest saw across each one):');
    const prow = [['vm', 'paused at', 'for', 'monotonic advanced', 'offset before', 'after resume', 'after sync']];
    for (const v of paused) {
      for (const p of v.pauses) {
        prow.push([
          v.name,
          formatDuration(BigInt(Math.round(p.at_s * 1e9))),
          formatDuration(BigInt(Math.round(p.duration_s * 1e9))),
          p.monotonic_advance_ns === null ? 'still paused at the end' : formatDuration(BigInt(p.monotonic_advance_ns)),
          fmtOffset(p.offset_before_ns),
          p.offset_after_resume_ns === null ? '—' : fmtOffset(p.offset_after_resume_ns),
          p.offset_after_sync_ns === null ? '—' : fmtOffset(p.offset_after_sync_ns),
        ]);
      }
    }
    lines.push(...table(prow, new Set([1, 2, 3, 4, 5, 6])));
  }
  const events = s.vms.flatMap((v) => v.events.map((e) => ({ vm: v.name, e })));
  if (events.length > 0) {
    lines.push('');
    lines.push('what happened (each event, and what the guest saw):');
    const w = Math.max(...events.map((x) => x.vm.length));
    const at = events.map((x) => formatDuration(BigInt(Math.round(x.e.at_s * 1e9))));
    const aw = Math.max(...at.map((a) => a.length));
    for (const [i, x] of events.entries()) lines.push(`  ${x.vm.padEnd(w)}  ${at[i]!.padStart(aw)}  ${x.e.kind.padEnd(9)}  ${x.e.verdict}`);
  }
  lines.push('');
  lines.push(...sparklines(res, Math.max(...s.vms.map((v) => v.name.length))));
  return lines.join('\n') + '\n';
}

/** Run the simulation on a worker thread; SIGINT/SIGTERM end it at once and remove what it was writing. */
async function simulateInWorker(job: RunJob, onProgress: (f: number) => void, cleanup: () => void): Promise<RunResult> {
  const module = new URL('../run-worker.ts', import.meta.url);
  const worker = moduleWorker(module, await workerBundle(module), job);
  const stop = (signal: NodeJS.Signals) => {
    void worker.terminate().finally(() => {
      cleanup();
      process.stderr.write(`\ntimevisor: stopped by ${signal}; nothing was written\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return new Promise<RunResult>((resolvePromise, reject) => {
    worker.on('message', (m: RunMessage) => {
      if (m.kind === 'progress') onProgress(m.fraction);
      else if (m.kind === 'done') resolvePromise(m.result);
      else {
        const { name, message, where, path, stack } = m.error;
        const err = name === 'InputError' ? new InputError(message, where, path) : Object.assign(new Error(message), { name, stack });
        reject(err);
      }
    });
    worker.on('error', reject);
    worker.on('exit', (code) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (code !== 0) reject(new Error(`simulation worker exited with code ${code}`));
    });
  });
}

type RunResult = Extract<RunMessage, { kind: 'done' }>['result'];

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a scenario file (YAML) — or the built-in demo when no file is given — and report guest clock offsets')
    .argument('[file]', 'scenario file (see schema/scenario.schema.json)')
    .option('--out <dir>', 'write summary.json and timeline.csv into this directory')
    .option('--json', 'print the summary as JSON instead of the human report')
    .option('--seed <n>', 'override the scenario seed')
    .option('--report <file>', 'also write a self-contained HTML report (plots, verdicts, tables)')
    .option('--quiet', 'no progress bar, no list of files written')
    .action(async (file: string | undefined, opts: { out?: string; json?: boolean; seed?: string; report?: string; quiet?: boolean }) => {
      const where = file ?? 'built-in demo';
      let scenario: Scenario = file === undefined ? parseScenarioText(DEMO_SCENARIO_YAML, where) : loadScenario(file);
      if (opts.seed !== undefined) {
        if (!/^\d+$/.test(opts.seed) || Number(opts.seed) > 0xffff_ffff)
          throw new InputError(`expected an integer 0…4294967295, got "${opts.seed}"`, '--seed');
        scenario = { ...scenario, seed: Number(opts.seed) };
      }
      checkWork(resolveScenario(scenario), where, { rowsInMemory: false });
      const created = opts.out !== undefined ? ensureDir(opts.out, '--out') : [];
      const paths =
        opts.out !== undefined
          ? { summary: join(resolve(opts.out), 'summary.json'), timeline: join(resolve(opts.out), 'timeline.csv') }
          : null;
      // the report needs the timeline: without --out it streams to a temporary file, read back after the run
      const reportTmp = opts.report !== undefined && !paths ? mkdtempSync(join(tmpdir(), 'timevisor-report-')) : null;
      const timelinePath = paths?.timeline ?? (reportTmp ? join(reportTmp, 'timeline.csv') : null);
      const cleanup = () => {
        if (paths) for (const p of Object.values(paths)) AtomicFile.discard(p);
        removeDirs(created);
        if (reportTmp) rmSync(reportTmp, { recursive: true, force: true });
      };
      const progress = progressBar(`simulating ${scenario.name}`, process.stderr, { quiet: opts.quiet ?? false });
      let res: RunResult;
      try {
        res = await simulateInWorker({ scenario, timelinePath }, progress.update, cleanup);
        if (paths) writeFileAtomic(paths.summary, JSON.stringify(res.summary, null, 2) + '\n', '--out');
      } catch (e) {
        cleanup();
        throw e;
      } finally {
        progress.done();
      }
      process.stdout.write(opts.json ? JSON.stringify(res.summary, null, 2) + '\n' : humanSummary(res));
      if (paths && !opts.quiet) process.stderr.write(`wrote ${paths.summary}, ${paths.timeline}\n`);
      if (opts.report !== undefined && timelinePath) {
        try {
          const timeline = parseTimelineCsv(readFileSync(timelinePath, 'utf8'), timelinePath);
          const scenarioText = file === undefined ? DEMO_SCENARIO_YAML : readFileSync(file, 'utf8');
          writeFileAtomic(opts.report, reportHtml({ summary: res.summary, timeline }, { scenarioText }), '--report');
        } finally {
          if (reportTmp) rmSync(dirname(timelinePath), { recursive: true, force: true });
        }
        if (!opts.quiet) process.stderr.write(`wrote ${opts.report}\n`);
      }
    });
}
