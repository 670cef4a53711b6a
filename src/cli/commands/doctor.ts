// `timevisor doctor`: read this machine's timekeeping (read-only), explain it, and with --scenario write
// a twin scenario and replay it through the guest model (`timevisor guest --scenario FILE --json`) to list
// what the twin does not reproduce. The file write lives here, in the CLI: src/doctor has no write path.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { InputError } from '../../core/errors.ts';
import {
  compareTwin,
  explain,
  machineView,
  planTwin,
  recordedSource,
  renderComparison,
  renderText,
  reportToJson,
  runDoctor,
  unreadable,
  type GuestView,
  type TwinComparison,
} from '../../doctor/index.ts';

interface DoctorCliOptions {
  json?: boolean;
  scenario?: string;
  root?: string;
  measure: boolean;
  stealMs: string;
}

const BIN = fileURLToPath(new URL('../../../bin/timevisor.js', import.meta.url));

/** Boot the twin in the guest model through its CLI; a reason instead when it cannot run. */
export function replayTwin(file: string): { ok: true; guest: GuestView } | { ok: false; reason: string } {
  const p = spawnSync(process.execPath, [BIN, 'guest', '--scenario', file, '--json'], { encoding: 'utf8', timeout: 120_000 });
  if (p.error) return { ok: false, reason: p.error.message };
  if (p.status !== 0) return { ok: false, reason: `timevisor guest --scenario failed (exit ${p.status}): ${(p.stderr || p.stdout).trim().split('\n')[0]}` };
  try {
    const j = JSON.parse(p.stdout) as Record<string, unknown>;
    const vm = (Array.isArray(j.vms) ? (j.vms[0] as Record<string, unknown>) : j) ?? j;
    for (const k of ['boot_log', 'available_clocksource', 'current_clocksource', 'clockevent_device']) {
      if (!(k in vm)) return { ok: false, reason: `timevisor guest --json has no "${k}"` };
    }
    return { ok: true, guest: vm as unknown as GuestView };
  } catch (e) {
    return { ok: false, reason: `timevisor guest --json printed no JSON: ${(e as Error).message}` };
  }
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description("Read this Linux system's timekeeping (clocksource, clockevents, TSC, kernel log, NTP state, vDSO, steal, /dev/kvm) read-only and explain it")
    .option('--json', 'print the facts as one JSON object')
    .option('--scenario <file>', 'write a scenario that makes the guest model a twin of this machine, replay it, and list the differences')
    .option('--root <dir>', 'read a recorded tree (proc/, sys/, dmesg.txt) instead of the running system')
    .option('--no-measure', 'skip measuring clock_gettime cost')
    .option('--steal-ms <ms>', 'interval over which steal time is sampled (0: skip)', '250')
    .action(async (opts: DoctorCliOptions) => {
      const stealIntervalMs = Number(opts.stealMs);
      if (!Number.isInteger(stealIntervalMs) || stealIntervalMs < 0 || stealIntervalMs > 60_000) throw new InputError(`expected whole milliseconds 0..60000, got "${opts.stealMs}"`, '--steal-ms');
      const report = await runDoctor({ source: opts.root ? recordedSource(opts.root) : undefined, measure: opts.measure, stealIntervalMs });
      const findings = explain(report);
      let twin: Record<string, unknown> | undefined;
      const extra: string[] = [];
      if (opts.scenario) {
        const plan = planTwin(report);
        try {
          writeFileSync(opts.scenario, plan.yaml);
        } catch (e) {
          throw new InputError(`cannot write the twin scenario: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, opts.scenario);
        }
        const replay = replayTwin(opts.scenario);
        let comparison: TwinComparison | undefined;
        if (replay.ok) comparison = compareTwin(machineView(report), replay.guest);
        twin = { file: opts.scenario, choices: plan.choices, gaps: plan.gaps, ...(comparison ? { comparison } : { replay_error: replay.ok ? undefined : replay.reason }) };
        extra.push(`Twin scenario written to ${opts.scenario}:`);
        for (const c of plan.choices) extra.push(`  ${c.key} = ${c.value || '""'} — ${c.why}`);
        for (const g of plan.gaps) extra.push(`  gap: ${g}`);
        if (comparison) extra.push(...renderComparison(comparison));
        else if (!replay.ok) extra.push(`twin not replayed: ${replay.reason}`);
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify(reportToJson({ ...report, findings, unreadable: unreadable(report), ...(twin ? { twin } : {}) }), null, 2) + '\n');
      } else {
        process.stdout.write(renderText(report, findings, extra));
      }
    });
}
