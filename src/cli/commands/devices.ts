// `timevisor devices qtest`: serve QEMU's qtest text protocol on stdin/stdout against timevisor's own
// `pc` machine model, with a virtual clock that only clock_step / clock_set move.
import { writeSync } from 'node:fs';
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import { NSEC_PER_SEC } from '../../core/index.ts';
import { QtestSession, rtcBaseSeconds } from '../../devices/index.ts';
import { KvmPit } from '../../hypervisor/index.ts';

interface QtestOpts {
  machine: string;
  rtcBase: string;
  utcOffset: string;
  lostTickPolicy: string;
  acpiPm?: string;
  kvmPit?: string;
  hpetCmp64: string;
  hpetPeriodic: string;
}

/** A whole number of seconds within a day either side of UTC (host UTC offsets are -12 h to +14 h). */
export function parseUtcOffset(text: string): number {
  const v = /^[+-]?\d{1,6}$/.test(text) ? Number(text) : Number.NaN;
  if (!(Math.abs(v) <= 86_400)) throw new InputError(`'${text}' is not a whole number of seconds between -86400 and 86400`, '--utc-offset');
  return v;
}

/** A port the PIIX4 PMBA can hold: bits 6-15 of the base (pm_io_space_update masks with 0xffc0). */
export function parseAcpiPmPort(text: string): number {
  const v = /^(0x[0-9a-f]{1,4}|\d{1,5})$/i.test(text) ? Number(text) : Number.NaN;
  if (!(v >= 0 && v <= 0xffc0 && v % 64 === 0))
    throw new InputError(`'${text}' is not a port from 0 to 0xffc0 on a 64-port boundary (the PIIX4 PMBA keeps bits 6-15)`, '--acpi-pm');
  return v;
}

/**
 * Output to stdout in blocks: an IRQ flood can produce millions of lines for one command, so lines are
 * written as they come (synchronously, as Node writes pipes and files on Linux) rather than collected.
 */
/** The reader of stdout went away (EPIPE): stop as a filter does under `| head`. */
class ReaderGone extends Error {}

class LineWriter {
  private buf: string[] = [];
  private bytes = 0;
  private closed = false;
  line(l: string): void {
    this.buf.push(l);
    this.bytes += l.length + 1;
    if (this.bytes >= 1 << 16) this.flush();
  }
  flush(): void {
    if (this.buf.length === 0 || this.closed) return;
    const text = this.buf.join('\n') + '\n';
    this.buf = [];
    this.bytes = 0;
    let off = 0;
    const data = Buffer.from(text);
    while (off < data.length) {
      try {
        off += writeSync(1, data, off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') {
          this.closed = true;
          throw new ReaderGone();
        }
        if (code !== 'EAGAIN') throw e;
      }
    }
  }
}

export function registerDevices(program: Command): void {
  const devices = program.command('devices').description('register-level timer devices (RTC, PIT, HPET, ACPI PM timer, LAPIC timer)');
  devices
    .command('qtest')
    .description("answer QEMU's qtest protocol (outb/inb/readl/writel/clock_step/...) on stdin/stdout against timevisor's machine model")
    .option('--machine <name>', 'machine model', 'pc')
    .option('--rtc-base <base>', 'RTC start: utc, localtime, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (as QEMU -rtc base=)', 'utc')
    .option('--utc-offset <seconds>', 'host UTC offset for --rtc-base localtime, whole seconds', '0')
    .option('--lost-tick-policy <policy>', 'RTC periodic interrupt policy: discard or slew (QEMU driftfix)', 'discard')
    .option(
      '--acpi-pm <port>',
      'program the PIIX4 PM base to this port at start, as firmware does (PM timer at +8); otherwise the guest enables it through PCI config',
    )
    .option('--kvm-pit <mode>', "model KVM's in-kernel PIT channel 0: reinject or discard")
    .option(
      '--hpet-cmp64 <mode>',
      '64-bit HPET comparator writes: split (QEMU 7.2: two 32-bit writes, low half first) or atomic (one write, as hardware)',
      'split',
    )
    .option(
      '--hpet-periodic <mode>',
      'when a periodic HPET comparator advances: past (QEMU 7.2: once the counter is past it, so an exact match fires again a tick later) or reached (on the match, as the spec)',
      'past',
    )
    .action(async (opts: QtestOpts) => {
      if (opts.machine !== 'pc') throw new InputError(`unknown machine '${opts.machine}' (only 'pc')`, '--machine');
      if (opts.lostTickPolicy !== 'discard' && opts.lostTickPolicy !== 'slew')
        throw new InputError('must be discard or slew', '--lost-tick-policy');
      if (opts.kvmPit !== undefined && opts.kvmPit !== 'reinject' && opts.kvmPit !== 'discard')
        throw new InputError('must be reinject or discard', '--kvm-pit');
      if (opts.hpetCmp64 !== 'split' && opts.hpetCmp64 !== 'atomic') throw new InputError('must be split or atomic', '--hpet-cmp64');
      if (opts.hpetPeriodic !== 'past' && opts.hpetPeriodic !== 'reached')
        throw new InputError('must be past or reached', '--hpet-periodic');
      const utcOffset = parseUtcOffset(opts.utcOffset);
      const acpiPm = opts.acpiPm === undefined ? undefined : parseAcpiPmPort(opts.acpiPm);
      const reinject = opts.kvmPit === 'reinject';
      // The CLI, not the device, reads the host's wall clock, once, for base=utc/localtime.
      const hostWallNs = BigInt(Date.now()) * (NSEC_PER_SEC / 1000n);
      const out = new LineWriter();
      const session = new QtestSession(
        {
          rtcBaseSeconds: rtcBaseSeconds(opts.rtcBase, hostWallNs, utcOffset),
          lostTickPolicy: opts.lostTickPolicy,
          hpetCmp64Write: opts.hpetCmp64,
          hpetPeriodicAdvance: opts.hpetPeriodic,
          ...(acpiPm !== undefined ? { acpiPmBase: acpiPm } : {}),
          ...(opts.kvmPit !== undefined ? { createPit: (deps) => new KvmPit({ ...deps, reinject }) } : {}),
        },
        (line) => out.line(line),
      );
      // As qtest_process_inbuf: only newline-terminated lines are commands; a trailing partial line
      // at end of input is never executed. Each answer is written as soon as its line arrives.
      let pending = '';
      process.stdin.setEncoding('utf8');
      try {
        for await (const chunk of process.stdin as AsyncIterable<string>) {
          pending += chunk;
          let start = 0;
          let nl: number;
          while ((nl = pending.indexOf('\n', start)) >= 0) {
            session.handle(pending.slice(start, nl));
            start = nl + 1;
          }
          pending = pending.slice(start);
          out.flush();
        }
        out.flush();
      } catch (e) {
        if (e instanceof ReaderGone) return; // nobody reads the answers any more
        out.flush(); // answers already computed are written even if a later line fails
        throw e;
      }
    });
}
