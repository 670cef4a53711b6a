// `timevisor schema`: print (or write) the JSON Schema of scenario files — or, with --sweep, of sweep
// files — generated from the zod schema.
import type { Command } from 'commander';
import { scenarioJsonSchema } from '../../world/index.ts';
import { sweepJsonSchema } from '../../world/index.ts';
import { writeFileAtomic } from '../output.ts';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of scenario files (or, with --sweep, of sweep files) for editors')
    .option('--sweep', 'the schema of sweep files instead')
    .option('--write <file>', 'write it to this file instead of stdout')
    .action((opts: { write?: string; sweep?: boolean }) => {
      const text = JSON.stringify(opts.sweep ? sweepJsonSchema() : scenarioJsonSchema(), null, 2) + '\n';
      if (opts.write === undefined) return void process.stdout.write(text);
      writeFileAtomic(opts.write, text, '--write');
    });
}
