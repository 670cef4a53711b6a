// `timevisor trace [FILE]`: run a scenario (or the demo) with tracing on; print its events as a KVM
// host's trace_pipe and, at the end, the call paths counted as a bpftrace session prints its maps.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import { importFunctionGraph } from '../../lab/index.ts';
import { writeFileAtomic } from '../../report/index.ts';
import { chromeTrace, countPaths, formatPathCounts, nameMatcher, runTrace, tracePipeLines } from '../../trace/index.ts';
import { progressBar } from '../progress.ts';
import { scenarioFromArgs } from './scenario-arg.ts';

interface TraceOpts {
  stacks?: boolean;
  filter?: string;
  vm?: string;
  perfetto?: string;
  counts?: boolean;
  seed?: string;
  quiet?: boolean;
  json?: boolean;
  ftrace?: string;
}

/** JSON for --json: ns and 64-bit fields as decimal strings, exactly. */
const jsonBig = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

/** A recorded function_graph trace's call paths, counted as the simulation's are. */
function printFtrace(file: string, opts: TraceOpts): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, file);
  }
  const imp = importFunctionGraph(text, 'guest/ftrace');
  if (imp.calls === 0) throw new InputError('no function_graph calls found (expected the output of the function_graph tracer)', file);
  const match = nameMatcher(opts.filter);
  const events = imp.recorder.recorded.filter((e) => !match || match(e.name) || e.path.some(match));
  const paths = countPaths(events);
  if (opts.json) process.stdout.write(JSON.stringify({ file, paths, skipped: imp.skipped.length }) + '\n');
  else process.stdout.write(formatPathCounts(paths, { stacks: opts.stacks ?? false }));
  if (imp.skipped.length && !opts.quiet)
    process.stderr.write(`timevisor: ${imp.skipped.length} lines of ${file} were not function_graph calls\n`);
}

export function registerTrace(program: Command): void {
  program
    .command('trace')
    .description(
      "run a scenario (or the demo) with tracing on: events as a KVM host's trace_pipe, then call paths with counts (bpftrace's @[...]: N)",
    )
    .argument('[file]', 'scenario file (see schema/scenario.schema.json)')
    .option('--stacks', 'print the counted call paths as kernel stacks (one frame a line, innermost first)')
    .option(
      '--filter <names>',
      'only events whose name or a frame of whose call path matches (comma-separated, * wildcard), e.g. pit_*,kvm_set_irq',
    )
    .option('--vm <name>', "only this VM's events")
    .option('--perfetto <file>', 'also write Chrome trace-event JSON (open it in ui.perfetto.dev)')
    .option('--counts', 'print only the counted call paths, not the event list')
    .option('--seed <n>', 'override the scenario seed')
    .option(
      '--ftrace <file>',
      "count a real kernel's function_graph trace (the lab's guests, /sys/kernel/tracing/trace) in the same layout, instead of running a scenario",
    )
    .option('--json', 'print {events, paths} as JSON instead of trace_pipe text and bpftrace maps')
    .option('--quiet', 'no progress bar')
    .action((file: string | undefined, opts: TraceOpts) => {
      // `timevisor trace | head` closes the pipe early: stop quietly, as other tools do
      process.stdout.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') process.exit(0);
        throw e;
      });
      if (opts.ftrace !== undefined) {
        if (file !== undefined) throw new InputError('give a scenario file or --ftrace, not both', '--ftrace');
        printFtrace(opts.ftrace, opts);
        return;
      }
      const scenario = scenarioFromArgs(file, opts.seed);
      const progress = progressBar(`tracing ${scenario.name}`, process.stderr, { quiet: opts.quiet ?? false });
      const run = runTrace(scenario, {
        ...(opts.filter !== undefined ? { filter: opts.filter } : {}),
        ...(opts.vm !== undefined ? { vm: opts.vm } : {}),
        onProgress: progress.update,
      });
      progress.done();
      if (opts.json) {
        const doc = {
          scenario: scenario.name,
          events: opts.counts ? undefined : run.events,
          paths: countPaths(run.events),
          dropped: run.dropped,
        };
        process.stdout.write(JSON.stringify(doc, jsonBig) + '\n');
      } else if (!opts.counts) {
        const lines: string[] = [];
        for (const ev of run.events) for (const l of tracePipeLines(ev, run.vmOrder)) lines.push(l);
        if (lines.length) process.stdout.write(lines.join('\n') + '\n\n');
      }
      if (!opts.json) process.stdout.write(formatPathCounts(countPaths(run.events), { stacks: opts.stacks ?? false }));
      if (run.dropped > 0) process.stderr.write(`timevisor: ${run.dropped} events past the recorder's limit were not kept\n`);
      if (opts.perfetto) {
        writeFileAtomic(opts.perfetto, JSON.stringify(chromeTrace(run.events, run.result.timeline, run.vmOrder)), '--perfetto');
        if (!opts.quiet) process.stderr.write(`wrote ${opts.perfetto}\n`);
      }
    });
}
