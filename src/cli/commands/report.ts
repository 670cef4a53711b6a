// `timevisor report DIR`: the HTML report (and optionally the main plot as PNG) of a `run --out DIR`.
import { join } from 'node:path';
import type { Command } from 'commander';
import { type OutputFile, offsetPng, readRunDir, reportHtml, writeFilesAtomic } from '../../report/index.ts';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report (plots, verdicts, tables) of a `timevisor run --out DIR`')
    .argument('<dir>', 'directory with summary.json and timeline.csv')
    .option('--out <file>', 'HTML file to write (default DIR/report.html)')
    .option('--png [file]', 'also write the offset plot as PNG (default DIR/offset.png)')
    .option('--quiet', 'do not list the files written')
    .action((dir: string, opts: { out?: string; png?: string | boolean; quiet?: boolean }) => {
      const res = readRunDir(dir);
      const html = reportHtml(res);
      const png = opts.png ? offsetPng(res) : null;
      const files: OutputFile[] = [{ path: opts.out ?? join(dir, 'report.html'), body: html, option: '--out' }];
      if (png) files.push({ path: typeof opts.png === 'string' ? opts.png : join(dir, 'offset.png'), body: png, option: '--png' });
      writeFilesAtomic(files);
      const written = files.map((f) => f.path);
      if (!opts.quiet) process.stderr.write(`wrote ${written.join(', ')}\n`);
    });
}
