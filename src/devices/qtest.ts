// QEMU's qtest text protocol (system/qtest.c) served by timevisor's own `pc` machine: one command per
// line, answered with `OK`, `OK <value>` or `FAIL <reason>`; interrupt line changes are reported as
// `IRQ raise N` / `IRQ lower N` once `irq_intercept_in ioapic` was sent. The virtual clock moves only
// with clock_step / clock_set. Where QEMU would abort on a malformed argument (g_assert), we answer
// FAIL with the reason and carry on. A step is bounded before it is taken: one that could dispatch more
// than MAX_STEP_EVENTS timer events (a 1 MHz PIT for a minute, 2^63 ns of anything periodic) is refused
// with FAIL and the clock stays where it was.
import { PcMachine, type PcMachineOptions } from './pc.ts';
import type { AccessSize } from './bus.ts';

class QtestError extends Error {}

/** qemu_strtoul/qemu_strtou64 with base 0: 0x.. hex, 0.. octal, decimal; the whole word must parse. */
export function parseQtestNumber(word: string | undefined, what: string): bigint {
  if (word === undefined || word === '') throw new QtestError(`missing ${what}`);
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(word);
  if (!m) throw new QtestError(`invalid ${what} '${word}'`);
  let v = BigInt(m[2]!.startsWith('0') && !/^0[xX]/.test(m[2]!) && m[2]!.length > 1 ? '0o' + m[2]!.slice(1) : m[2]!);
  if (m[1] === '-') v = -v;
  return v;
}

/** Timer events one clock_step/clock_set may dispatch: about 15 s of work here (3.6 M events/s). */
export const MAX_STEP_EVENTS = 50_000_000;
const INT64_MAX = (1n << 63n) - 1n;

const hex4 = (v: number) => '0x' + v.toString(16).padStart(4, '0');
const hex16 = (v: bigint) => '0x' + BigInt.asUintN(64, v).toString(16).padStart(16, '0');

export class QtestSession {
  readonly machine: PcMachine;
  private intercepted = false;
  private sink: (line: string) => void = () => {};

  /**
   * `emit`, when given, receives every output line as it is produced (IRQ lines during a long step
   * included) and handle() returns nothing; without it handle() returns the lines.
   */
  constructor(
    opts: PcMachineOptions | PcMachine,
    private readonly emit?: (line: string) => void,
  ) {
    this.machine = opts instanceof PcMachine ? opts : new PcMachine(opts);
  }

  /** Process one line (without its newline); returns its output lines unless an `emit` sink was given. */
  handle(line: string): string[] {
    const collected: string[] = [];
    this.sink = this.emit ?? ((l) => collected.push(l));
    const words = line.split(' '); // g_strsplit(cmd, " ", 0)
    let reply: string;
    try {
      reply = this.command(words);
    } catch (e) {
      if (!(e instanceof QtestError)) throw e;
      reply = `FAIL ${e.message}`;
    }
    this.sink(reply);
    return collected;
  }

  /** Run the machine to `target`, unless the span could cost more than MAX_STEP_EVENTS timer events. */
  private advance(target: bigint): string | null {
    const m = this.machine;
    if (target > INT64_MAX) return `time ${target} is past the largest virtual time (${INT64_MAX} ns)`;
    if (target <= m.now) return null;
    const bound = m.timerEventBound(target - m.now);
    if (bound > MAX_STEP_EVENTS)
      return `a step of ${target - m.now} ns could dispatch ${bound} timer events (limit ${MAX_STEP_EVENTS}); step in smaller parts`;
    m.runUntil(target);
    return null;
  }

  private command(w: string[]): string {
    const m = this.machine;
    const cmd = w[0]!;
    switch (cmd) {
      case 'outb':
      case 'outw':
      case 'outl': {
        const addr = this.port(w[1]);
        const value = parseQtestNumber(w[2], 'value');
        m.ports.write(addr, sizeOf(cmd[3]!) as 1 | 2 | 4, Number(BigInt.asUintN(32, value)));
        return 'OK';
      }
      case 'inb':
      case 'inw':
      case 'inl': {
        const addr = this.port(w[1]);
        return 'OK ' + hex4(m.ports.read(addr, sizeOf(cmd[2]!) as 1 | 2 | 4));
      }
      case 'writeb':
      case 'writew':
      case 'writel':
      case 'writeq': {
        const addr = this.addr(w[1]);
        const value = BigInt.asUintN(64, parseQtestNumber(w[2], 'value'));
        m.mmio.write(addr, sizeOf(cmd[5]!), value);
        return 'OK';
      }
      case 'readb':
      case 'readw':
      case 'readl':
      case 'readq': {
        const addr = this.addr(w[1]);
        return 'OK ' + hex16(m.mmio.read(addr, sizeOf(cmd[4]!)));
      }
      case 'read':
      case 'b64read': {
        const addr = this.addr(w[1]);
        const len = Number(parseQtestNumber(w[2], 'length'));
        if (len <= 0 || len > 1 << 24) throw new QtestError(`invalid length ${len}`);
        const bytes = Buffer.alloc(len);
        for (let i = 0; i < len; i++) bytes[i] = Number(m.mmio.read(addr + BigInt(i), 1));
        return cmd === 'read' ? 'OK 0x' + bytes.toString('hex') : 'OK ' + bytes.toString('base64');
      }
      case 'write':
      case 'b64write': {
        const addr = this.addr(w[1]);
        const len = Number(parseQtestNumber(w[2], 'length'));
        const data = w[3];
        if (data === undefined || data.length < 3) return 'ERR invalid argument size';
        let bytes: Buffer;
        if (cmd === 'write') {
          bytes = Buffer.alloc(len);
          const hexDigits = data.slice(2);
          for (let i = 0; i < len && i * 2 + 2 <= hexDigits.length; i++) bytes[i] = parseInt(hexDigits.slice(i * 2, i * 2 + 2), 16) || 0;
        } else {
          bytes = Buffer.from(data, 'base64');
        }
        for (let i = 0; i < len; i++) m.mmio.write(addr + BigInt(i), 1, BigInt(bytes[i] ?? 0));
        return 'OK';
      }
      case 'memset': {
        const addr = this.addr(w[1]);
        const len = Number(parseQtestNumber(w[2], 'length'));
        const pattern = BigInt(Number(parseQtestNumber(w[3], 'pattern')) & 0xff);
        for (let i = 0; i < len; i++) m.mmio.write(addr + BigInt(i), 1, pattern);
        return 'OK';
      }
      case 'endianness':
        return 'OK little';
      case 'clock_step': {
        const old = m.now;
        let ns: bigint;
        if (w[1] !== undefined) {
          ns = parseQtestNumber(w[1], 'step');
        } else {
          const next = m.engine.nextEventTime();
          if (next === null) return 'FAIL cannot advance clock to the next deadline because there is no pending deadline';
          ns = next - old;
        }
        const refused = this.advance(old + ns);
        if (refused) return `FAIL ${refused}`;
        return m.now > old ? `OK ${m.now}` : 'FAIL could not advance time';
      }
      case 'clock_set': {
        const ns = parseQtestNumber(w[1], 'time');
        const refused = this.advance(ns);
        if (refused) return `FAIL ${refused}`;
        return `${m.now === ns ? 'OK' : 'FAIL'} ${m.now}`;
      }
      case 'irq_intercept_in':
      case 'irq_intercept_out': {
        if (w[1] === undefined) throw new QtestError('missing device path');
        if (!/(^|\/)ioapic$/.test(w[1])) return 'FAIL Unknown device';
        if (cmd === 'irq_intercept_out') return 'FAIL No intercepts installed';
        if (w[2] !== undefined) return 'FAIL Interception of named in-GPIOs not yet supported';
        if (!this.intercepted) {
          this.intercepted = true;
          m.gsi.forEach((line, n) => {
            line.onChange = (level) => this.sink(`IRQ ${level ? 'raise' : 'lower'} ${n}`);
          });
        }
        return 'OK';
      }
      default:
        return `FAIL Unknown command '${cmd}'`;
    }
  }

  private port(word: string | undefined): number {
    const v = parseQtestNumber(word, 'port');
    if (v < 0n || v > 0xffffn) throw new QtestError(`port ${word} out of range`);
    return Number(v);
  }

  private addr(word: string | undefined): bigint {
    return BigInt.asUintN(64, parseQtestNumber(word, 'address'));
  }
}

function sizeOf(c: string): AccessSize {
  return c === 'b' ? 1 : c === 'w' ? 2 : c === 'l' ? 4 : 8;
}
