// `timevisor devices qtest`: serve QEMU's qtest text protocol on stdin/stdout against timevisor's own
// `pc` machine model, with a virtual clock that only clock_step / clock_set move.
import type { Command } from 'commander';
import { InputError } from '../../core/errors.ts';
import { NSEC_PER_SEC } from '../../core/time.ts';
import { QtestSession, rtcBaseSeconds } from '../../devices/index.ts';

interface QtestOpts {
  machine: string;
  rtcBase: string;
  utcOffset: string;
  lostTickPolicy: string;
  acpiPm?: string;
  kvmPit?: string;
}

export function registerDevices(program: Command): void {
  const devices = program.command('devices').description('register-level timer devices (RTC, PIT, HPET, ACPI PM timer, LAPIC timer)');
  devices
    .command('qtest')
    .description("answer QEMU's qtest protocol (outb/inb/readl/writel/clock_step/...) on stdin/stdout against timevisor's machine model")
    .option('--machine <name>', 'machine model', 'pc')
    .option('--rtc-base <base>', 'RTC start: utc, localtime, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (as QEMU -rtc base=)', 'utc')
    .option('--utc-offset <seconds>', 'host UTC offset for --rtc-base localtime', '0')
    .option('--lost-tick-policy <policy>', 'RTC periodic interrupt policy: discard or slew (QEMU driftfix)', 'discard')
    .option(
      '--acpi-pm <port>',
      'program the PIIX4 PM base to this port at start, as firmware does (PM timer at +8); otherwise the guest enables it through PCI config',
    )
    .option('--kvm-pit <mode>', "model KVM's in-kernel PIT channel 0: reinject or discard")
    .action(async (opts: QtestOpts) => {
      if (opts.machine !== 'pc') throw new InputError(`unknown machine '${opts.machine}' (only 'pc')`, '--machine');
      if (opts.lostTickPolicy !== 'discard' && opts.lostTickPolicy !== 'slew')
        throw new InputError('must be discard or slew', '--lost-tick-policy');
      if (opts.kvmPit !== undefined && opts.kvmPit !== 'reinject' && opts.kvmPit !== 'discard')
        throw new InputError('must be reinject or discard', '--kvm-pit');
      // The CLI, not the device, reads the host's wall clock, once, for base=utc/localtime.
      const hostWallNs = BigInt(Date.now()) * (NSEC_PER_SEC / 1000n);
      const session = new QtestSession({
        rtcBaseSeconds: rtcBaseSeconds(opts.rtcBase, hostWallNs, Number(opts.utcOffset)),
        lostTickPolicy: opts.lostTickPolicy,
        ...(opts.acpiPm !== undefined ? { acpiPmBase: Number(opts.acpiPm) } : {}),
        ...(opts.kvmPit !== undefined ? { kvmPit: { reinject: opts.kvmPit === 'reinject' } } : {}),
      });
      // As qtest_process_inbuf: only newline-terminated lines are commands; a trailing partial line
      // at end of input is never executed. Each answer is written as soon as its line arrives.
      let pending = '';
      process.stdin.setEncoding('utf8');
      for await (const chunk of process.stdin as AsyncIterable<string>) {
        pending += chunk;
        let nl: number;
        const out: string[] = [];
        while ((nl = pending.indexOf('\n')) >= 0) {
          out.push(...session.handle(pending.slice(0, nl)));
          pending = pending.slice(nl + 1);
        }
        if (out.length > 0) process.stdout.write(out.join('\n') + '\n');
      }
    });
}
