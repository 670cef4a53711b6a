// `timevisor doctor`: read this machine's timekeeping (read-only), explain it, and with --scenario write
// a twin scenario, boot it in the guest model (what `timevisor guest --scenario FILE` does) and list what
// the twin does not reproduce. The file write lives here, in the CLI: src/doctor has no write path.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import {
  compareTwin,
  explain,
  jsonSafe,
  machineView,
  planTwin,
  recordedSource,
  renderComparison,
  renderText,
  replayScenario,
  reportToJson,
  runDoctor,
  terminalSafe,
  unreadable,
  type TwinComparison,
} from '../../doctor/index.ts';

interface DoctorCliOptions {
  json?: boolean;
  scenario?: string;
  root?: string;
  measure: boolean;
  stealMs: string;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      "Read this Linux system's timekeeping (clocksource, clockevents, TSC, kernel log, NTP state, vDSO, steal, /dev/kvm) read-only and explain it",
    )
    .option('--json', 'print the facts as one JSON object')
    .option('--scenario <file>', 'write a scenario that makes the guest model a twin of this machine, replay it, and list the differences')
    .option('--root <dir>', 'read a recorded tree (proc/, sys/, dmesg.txt) instead of the running system')
    .option('--no-measure', 'skip measuring clock_gettime cost')
    .option('--steal-ms <ms>', 'interval over which steal time is sampled (0: skip)', '250')
    .action(async (opts: DoctorCliOptions) => {
      const stealIntervalMs = Number(opts.stealMs);
      if (!Number.isInteger(stealIntervalMs) || stealIntervalMs < 0 || stealIntervalMs > 60_000)
        throw new InputError(`expected whole milliseconds 0..60000, got "${opts.stealMs}"`, '--steal-ms');
      const report = await runDoctor({ source: opts.root ? recordedSource(opts.root) : undefined, measure: opts.measure, stealIntervalMs });
      const findings = explain(report);
      let twin: Record<string, unknown> | undefined;
      const extra: string[] = [];
      if (opts.scenario) {
        const plan = planTwin(report);
        try {
          writeFileSync(opts.scenario, plan.yaml);
        } catch (e) {
          throw new InputError(
            `cannot write the twin scenario: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
            opts.scenario,
          );
        }
        const replay = replayScenario(plan.scenario);
        let comparison: TwinComparison | undefined;
        if (replay.ok) comparison = compareTwin(machineView(report), replay.value);
        twin = {
          file: opts.scenario,
          choices: plan.choices,
          gaps: plan.gaps,
          ...(comparison ? { comparison } : { replay_error: replay.ok ? undefined : replay.reason }),
        };
        extra.push(`Twin scenario written to ${opts.scenario}:`);
        for (const c of plan.choices) extra.push(`  ${c.key} = ${c.value || '""'} — ${c.why}`);
        for (const g of plan.gaps) extra.push(`  gap: ${g}`);
        if (comparison) extra.push(...renderComparison(comparison));
        else if (!replay.ok) extra.push(`twin not replayed: ${replay.reason}`);
      }
      if (opts.json) {
        // Recorded text may hold any bytes: C0 is escaped by JSON.stringify, DEL/C1/bidi marks by jsonSafe.
        process.stdout.write(
          jsonSafe(
            JSON.stringify(reportToJson({ ...report, findings, unreadable: unreadable(report), ...(twin ? { twin } : {}) }), null, 2),
          ) + '\n',
        );
      } else {
        process.stdout.write(terminalSafe(renderText(report, findings, extra)));
      }
    });
}
