// `timevisor serve [--port N] [--host H]`: the local web UI (binds 127.0.0.1 unless told otherwise).
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import { startWebServer } from '../../web/index.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('start the local web UI: pick or upload a scenario, edit it in a form, run it, watch the plot grow, download results')
    .option('--port <n>', 'TCP port (0: any free port)', '7300')
    .option('--host <addr>', 'address to bind (default 127.0.0.1: this machine only)', '127.0.0.1')
    .action(async (opts: { port: string; host: string }) => {
      if (!/^\d+$/.test(opts.port) || Number(opts.port) > 65535)
        throw new InputError(`expected a port 0…65535, got "${opts.port}"`, '--port');
      const web = await startWebServer({ port: Number(opts.port), host: opts.host });
      process.stdout.write(`timevisor web UI at ${web.url} (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          web.close().then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
