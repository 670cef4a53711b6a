// `timevisor report DIR`: the HTML report (and optionally the main plot as PNG) of a `run --out DIR`.
import { join } from 'node:path';
import type { Command } from 'commander';
import { offsetPng, readRunDir, reportHtml, writeFileAtomic } from '../../report/index.ts';

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
      const written: string[] = [];
      const out = opts.out ?? join(dir, 'report.html');
      writeFileAtomic(out, html, '--out');
      written.push(out);
      if (png) {
        const file = typeof opts.png === 'string' ? opts.png : join(dir, 'offset.png');
        writeFileAtomic(file, png, '--png');
        written.push(file);
      }
      if (!opts.quiet) process.stderr.write(`wrote ${written.join(', ')}\n`);
    });
}
