// `timevisor qga --stdio`: the QEMU guest agent model over a simulated guest, on stdin/stdout, so any
// QGA client can talk to it. The guest boots on the chosen profile with its RTC at this host's time;
// simulated time follows this process's elapsed real time (the CLI, not the model, reads the clock).
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import { NSEC_PER_SEC, type Ns } from '../../core/index.ts';
import { QGA_COMMANDS, QgaAgent } from '../../guest/index.ts';
import { World } from '../../world/index.ts';
import { guestScenario } from './guest.ts';

interface QgaOpts {
  stdio?: boolean;
  profile: string;
  kernel: string;
  block?: string;
}

export function registerQga(program: Command): void {
  program
    .command('qga')
    .description(
      'answer the QEMU guest agent protocol as qemu-ga 7.2 does, over a simulated guest (guest-sync, guest-info, guest-get-time, guest-set-time, …)',
    )
    .option('--stdio', 'read requests on stdin and answer on stdout (the only transport)')
    .option('--profile <name>', 'VMM machine profile of the simulated guest', 'qemu-kvm')
    .option('--kernel <preset>', 'guest kernel preset', 'distro')
    .option('--block <cmds>', 'comma-separated commands to disable, like qemu-ga -b')
    .action(async (opts: QgaOpts) => {
      if (!opts.stdio) throw new InputError('only --stdio is supported', '--stdio');
      const blocked = (opts.block ?? '').split(',').filter((c) => c !== '');
      for (const c of blocked)
        if (!(QGA_COMMANDS as readonly string[]).includes(c))
          throw new InputError(`unknown command "${c}" (qemu-ga -b help lists them)`, '--block');
      // the guest was created BOOT_LEAD before now, so it has booted and its clock reads this host's time;
      // it is booted from a one-VM scenario, as `timevisor guest --profile` does (src/world/resolve.ts)
      const BOOT_LEAD = 10_000n * 1_000_000n;
      const startMs = Date.now();
      const resolved = guestScenario(
        { profile: opts.profile, kernel: opts.kernel, cmdline: '', host: {} },
        new Date(startMs - 10_000).toISOString(),
      );
      const world = new World(resolved);
      const { engine } = world;
      const vm = world.bootVm(resolved.vms[0]!);
      const catchUp = () => engine.run(BOOT_LEAD + BigInt(Date.now() - startMs) * 1_000_000n);
      catchUp();
      const guest = vm.guest;
      const agent = new QgaAgent({
        guest: {
          realtime: () => guest.clockGettime('realtime'),
          settimeofday: (ns: Ns) => guest.settimeofday(ns),
          // hwclock -s waits for the RTC's next second edge and sets the system time to it; the model
          // takes the RTC's current second (the reply does not wait out the edge)
          hwclockToSystem: () => {
            const r = guest.platform.readCmos?.();
            if (r) guest.settimeofday(r.seconds * NSEC_PER_SEC);
          },
        },
        blocked,
      });
      for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
        catchUp();
        const out = agent.feed(chunk);
        if (out.length > 0) process.stdout.write(out);
      }
    });
}
