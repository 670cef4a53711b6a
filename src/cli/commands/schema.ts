// `timevisor schema`: print (or write) the JSON Schema of scenario files, generated from the zod schema.
import type { Command } from 'commander';
import { scenarioJsonSchema } from '../../world/scenario.ts';
import { writeFileAtomic } from '../output.ts';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of scenario files (for editors)')
    .option('--write <file>', 'write it to this file instead of stdout')
    .action((opts: { write?: string }) => {
      const text = JSON.stringify(scenarioJsonSchema(), null, 2) + '\n';
      if (opts.write === undefined) return void process.stdout.write(text);
      writeFileAtomic(opts.write, text, '--write');
    });
}
