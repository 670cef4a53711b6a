// timevisor command-line entry point: builds the command tree, runs it, and turns the library's typed
// errors into one-line messages with distinct exit codes: 0 done, 1 internal error (a bug: message and
// stack), 2 bad input (file, option or path named), 3 a facility is missing or unusable (/dev/kvm, QEMU,
// root), 130/143 stopped by SIGINT/SIGTERM.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { InputError, UnavailableError } from '../core/index.ts';
import { registerCommands } from './commands/index.ts';

export const EXIT_INPUT = 2;
export const EXIT_UNAVAILABLE = 3;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('timevisor')
    .description('Virtual-machine timekeeping: simulate, measure and explain how a KVM guest keeps time.')
    .version(packageVersion(), '-V, --version', 'print the version')
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
