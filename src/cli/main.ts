// timevisor command-line entry point: builds the command tree, runs it, and turns the library's typed
// errors into one-line messages with distinct exit codes (2 bad input, 3 unavailable facility).
import { Command, CommanderError } from 'commander';
import { InputError, UnavailableError } from '../core/errors.ts';
import { registerCommands } from './commands/index.ts';

export const EXIT_INPUT = 2;
export const EXIT_UNAVAILABLE = 3;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('timevisor')
    .description('Virtual-machine timekeeping: simulate, measure and explain how a KVM guest keeps time.')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

export function describeError(err: unknown): { message: string; code: number } {
  if (err instanceof InputError) {
    const where = [err.where, err.path].filter(Boolean).join(': ');
    return { message: `timevisor: ${where ? `${where}: ` : ''}${err.message}`, code: EXIT_INPUT };
  }
  if (err instanceof UnavailableError) return { message: `timevisor: ${err.message} (${err.reason})`, code: EXIT_UNAVAILABLE };
  if (err instanceof CommanderError) return { message: '', code: err.exitCode === 0 ? 0 : EXIT_INPUT };
  return { message: `timevisor: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, code: 1 };
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    const { message, code } = describeError(err);
    if (message) process.stderr.write(message + '\n');
    return code;
  }
}

const invokedDirectly = process.argv[1] !== undefined && /(timevisor(\.js)?|main\.ts)$/.test(process.argv[1]);
if (invokedDirectly) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
}
