// `timevisor doctor`: read this machine's timekeeping (read-only), explain it, optionally write a twin
// scenario for the guest model. The file write lives here, in the CLI: src/doctor itself has no write path.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InputError } from '../../core/errors.ts';
import { explain, recordedSource, renderText, reportToJson, runDoctor, unreadable } from '../../doctor/index.ts';

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
    .description("Read this Linux system's timekeeping (clocksource, clockevents, TSC, kernel log, NTP state, vDSO, steal, /dev/kvm) read-only and explain it")
    .option('--json', 'print the facts as one JSON object')
    .option('--scenario <file>', 'write a scenario that makes the guest model a twin of this machine')
    .option('--root <dir>', 'read a recorded tree (proc/, sys/, dmesg.txt) instead of the running system')
    .option('--no-measure', 'skip measuring clock_gettime cost')
    .option('--steal-ms <ms>', 'interval over which steal time is sampled (0: skip)', '250')
    .action(async (opts: DoctorCliOptions) => {
      const stealIntervalMs = Number(opts.stealMs);
      if (!Number.isInteger(stealIntervalMs) || stealIntervalMs < 0 || stealIntervalMs > 60_000) throw new InputError(`expected whole milliseconds 0..60000, got "${opts.stealMs}"`, '--steal-ms');
      const report = await runDoctor({ source: opts.root ? recordedSource(opts.root) : undefined, measure: opts.measure, stealIntervalMs });
      const findings = explain(report);
      if (opts.json) {
        process.stdout.write(JSON.stringify({ ...(reportToJson(report) as object), findings, unreadable: unreadable(report) }, null, 2) + '\n');
      } else {
        process.stdout.write(renderText(report, findings));
      }
    });
}
