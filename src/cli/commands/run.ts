// `timevisor run [FILE]`: run a scenario (or the built-in demo) and report every guest's clock offset.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../../core/errors.ts';
import { formatDuration } from '../../core/units.ts';
import { DEMO_SCENARIO_YAML } from '../../world/demo.ts';
import { loadScenario, parseScenarioText, type Scenario } from '../../world/scenario.ts';
import { simulate, timelineCsv, type SimulationResult } from '../../world/simulation.ts';
import { progressBar } from '../progress.ts';
import { reportHtml, writeFileAtomic } from '../../report/index.ts';

function fmtOffset(nsStr: string): string {
  const ns = BigInt(nsStr);
  return (ns >= 0n ? '+' : '') + formatDuration(ns);
}

/** The human summary: what was simulated, and each guest's offset from true time, with a sparkline. */
export function humanSummary(res: SimulationResult): string {
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
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    lines.push(
      '  ' +
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
    );
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
          formatDuration(BigInt(p.monotonic_advance_ns)),
          fmtOffset(p.offset_before_ns),
          fmtOffset(p.offset_after_resume_ns),
          p.offset_after_sync_ns === null ? '—' : fmtOffset(p.offset_after_sync_ns),
        ]);
      }
    }
    const pw = prow[0]!.map((_, i) => Math.max(...prow.map((r) => r[i]!.length)));
    for (const r of prow)
      lines.push(
        '  ' +
          r
            .map((c, i) => c.padEnd(pw[i]!))
            .join('  ')
            .trimEnd(),
      );
  }
  lines.push('');
  const marks = '▁▂▃▄▅▆▇█';
  for (const v of s.vms) {
    const pts = res.timeline.filter((r) => r.vm === v.name).map((r) => Number(r.guestOffsetNs));
    if (pts.length < 2) continue;
    const step = Math.max(1, Math.ceil(pts.length / 60));
    const sampled = pts.filter((_, i) => i % step === 0);
    const lo = Math.min(...sampled);
    const hi = Math.max(...sampled);
    const spark = sampled.map((p) => marks[hi === lo ? 0 : Math.min(7, Math.floor(((p - lo) / (hi - lo)) * 8))]).join('');
    lines.push(
      `  ${v.name.padEnd(widths[0]!)}  ${spark}  (${formatDuration(BigInt(Math.round(lo)))} … ${formatDuration(BigInt(Math.round(hi)))})`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Write summary.json and timeline.csv into dir, via temporary files renamed into place (never half-written). */
export function writeResults(dir: string, res: SimulationResult): string[] {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new InputError(`cannot create output directory: ${(e as Error).message}`, '--out');
  }
  const files: [string, string][] = [
    ['summary.json', JSON.stringify(res.summary, null, 2) + '\n'],
    ['timeline.csv', timelineCsv(res.timeline)],
  ];
  const written: string[] = [];
  for (const [name, body] of files) {
    const path = join(dir, name);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, body);
    renameSync(tmp, path);
    written.push(path);
  }
  return written;
}

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
    .action((file: string | undefined, opts: { out?: string; json?: boolean; seed?: string; report?: string; quiet?: boolean }) => {
      let scenario: Scenario = file === undefined ? parseScenarioText(DEMO_SCENARIO_YAML, 'built-in demo') : loadScenario(file);
      if (opts.seed !== undefined) {
        if (!/^\d+$/.test(opts.seed) || Number(opts.seed) > 0xffff_ffff)
          throw new InputError(`expected an integer 0…4294967295, got "${opts.seed}"`, '--seed');
        scenario = { ...scenario, seed: Number(opts.seed) };
      }
      const progress = progressBar(`simulating ${scenario.name}`, process.stderr, { quiet: opts.quiet ?? false });
      const res = simulate(scenario, { onProgress: progress.update });
      progress.done();
      if (opts.json) process.stdout.write(JSON.stringify(res.summary, null, 2) + '\n');
      else process.stdout.write(humanSummary(res));
      if (opts.out) {
        const written = writeResults(opts.out, res);
        if (!opts.quiet) process.stderr.write(`wrote ${written.join(', ')}\n`);
      }
      if (opts.report) {
        const scenarioText = file === undefined ? DEMO_SCENARIO_YAML : readFileSync(file, 'utf8');
        writeFileAtomic(opts.report, reportHtml(res, { scenarioText }), '--report');
        if (!opts.quiet) process.stderr.write(`wrote ${opts.report}\n`);
      }
    });
}
