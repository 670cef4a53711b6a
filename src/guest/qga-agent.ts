// The QEMU guest agent as qemu-ga 7.2 answers: JSON messages in (qemu's lexer/streamer/parser),
// qmp_dispatch's checks and error classes (qapi/qmp-dispatch.c), the QAPI input visitor's parameter
// errors (qapi/qobject-input-visitor.c), and the time commands of qga/commands.c and
// qga/commands-posix.c. Commands the model does not implement are listed by guest-info but disabled,
// as if qemu-ga had been started with -b for them.
import type { Ns } from '../core/index.ts';
import { JsonMessageParser, type QObject, qbool, qdict, QDict, qint, qstr, toJson } from './qga-json.ts';

/** qemu-ga 7.2's commands in registration order (`qemu-ga -b help`); guest-info lists them reversed. */
export const QGA_COMMANDS = [
  'guest-sync-delimited',
  'guest-sync',
  'guest-ping',
  'guest-get-time',
  'guest-set-time',
  'guest-info',
  'guest-shutdown',
  'guest-file-open',
  'guest-file-close',
  'guest-file-read',
  'guest-file-write',
  'guest-file-seek',
  'guest-file-flush',
  'guest-fsfreeze-status',
  'guest-fsfreeze-freeze',
  'guest-fsfreeze-freeze-list',
  'guest-fsfreeze-thaw',
  'guest-fstrim',
  'guest-suspend-disk',
  'guest-suspend-ram',
  'guest-suspend-hybrid',
  'guest-network-get-interfaces',
  'guest-get-vcpus',
  'guest-set-vcpus',
  'guest-get-disks',
  'guest-get-fsinfo',
  'guest-set-user-password',
  'guest-get-memory-blocks',
  'guest-set-memory-blocks',
  'guest-get-memory-block-info',
  'guest-exec-status',
  'guest-exec',
  'guest-get-host-name',
  'guest-get-users',
  'guest-get-timezone',
  'guest-get-osinfo',
  'guest-get-devices',
  'guest-ssh-get-authorized-keys',
  'guest-ssh-add-authorized-keys',
  'guest-ssh-remove-authorized-keys',
  'guest-get-diskstats',
  'guest-get-cpustats',
] as const;

/** qga/qapi-schema.json: commands with 'success-response': false (no reply on success). */
const NO_SUCCESS_RESPONSE = new Set(['guest-shutdown', 'guest-suspend-disk', 'guest-suspend-ram', 'guest-suspend-hybrid']);

/** The commands this model implements. */
export const QGA_MODELLED = [
  'guest-sync-delimited',
  'guest-sync',
  'guest-ping',
  'guest-get-time',
  'guest-set-time',
  'guest-info',
  'guest-get-timezone',
];

/** What the agent reaches in the guest. */
export interface QgaGuest {
  /** clock_gettime(CLOCK_REALTIME), ns. */
  realtime(): Ns;
  /** settimeofday(2). */
  settimeofday(ns: Ns): void;
  /** `hwclock -s`: the system time from the RTC. */
  hwclockToSystem(): void;
  /** `hwclock -w`: the RTC from the system time (optional: a no-op when absent). */
  systemToHwclock?(): void;
  /** The local time zone: abbreviation and offset from UTC in seconds. */
  timezone?: { zone: string; offset: number };
}

export interface QgaAgentOptions {
  guest: QgaGuest;
  /** Commands disabled with -b (in addition to those the model does not implement). */
  blocked?: readonly string[];
  /** guest-info's version (Debian 12's qemu-ga says "7.2.22" or so). */
  version?: string;
  /** Whether /sbin/hwclock exists in the guest (guest-set-time needs it). */
  hwclockAvailable?: boolean;
  /** Called with each command executed (for traces). */
  onCommand?: (name: string) => void;
}

class QmpError {
  constructor(
    readonly cls: 'GenericError' | 'CommandNotFound',
    readonly desc: string,
  ) {}
}

const FF = Uint8Array.of(0xff);
const utf8 = new TextEncoder();

export class QgaAgent {
  private readonly parser: JsonMessageParser;
  private readonly enabled = new Map<string, boolean>();
  private out: Uint8Array[] = [];
  private delimitResponse = false;

  constructor(private readonly o: QgaAgentOptions) {
    const blocked = new Set(o.blocked ?? []);
    for (const c of QGA_COMMANDS) this.enabled.set(c, QGA_MODELLED.includes(c) && !blocked.has(c));
    this.parser = new JsonMessageParser((obj, err) => this.processEvent(obj, err));
  }

  /** Bytes from the host; returns the bytes the agent writes back (possibly none: input held). */
  feed(input: Uint8Array | string): Uint8Array {
    this.parser.feed(typeof input === 'string' ? utf8.encode(input) : input);
    const total = this.out.reduce((n, b) => n + b.length, 0);
    const res = new Uint8Array(total);
    let off = 0;
    for (const b of this.out) {
      res.set(b, off);
      off += b.length;
    }
    this.out = [];
    return res;
  }

  /** qga/main.c process_event + send_response. */
  private processEvent(obj: QObject | null, err: string | null): void {
    const rsp = err !== null || obj === null ? errorResponse(new QmpError('GenericError', err ?? '')) : this.dispatch(obj);
    if (!rsp) return;
    if (this.delimitResponse) {
      this.out.push(FF); // guest-sync-delimited: a 0xFF sentinel byte before the reply
      this.delimitResponse = false;
    }
    this.out.push(utf8.encode(`${toJson(rsp)}\n`));
  }

  /** qmp_dispatch (allow_oob false). */
  private dispatch(request: QObject): QObject | null {
    if (request.t !== 'dict') return errorResponse(new QmpError('GenericError', 'QMP input must be a JSON object'));
    const dict = request.v;
    const id = dict.get('id');
    let rsp: QObject | null;
    try {
      const ret = this.execute(dict);
      if (ret === undefined) return null; // success-response: false
      rsp = qdict([['return', ret]]);
    } catch (e) {
      if (!(e instanceof QmpError)) throw e;
      rsp = errorResponse(e);
    }
    if (id !== undefined) (rsp as { v: QDict }).v.put('id', id);
    return rsp;
  }

  private execute(dict: QDict): QObject | undefined {
    // qmp_dispatch_check_obj: members in QDict order
    for (const [k, v] of dict.entries()) {
      if (k === 'execute') {
        if (v.t !== 'str') throw new QmpError('GenericError', "QMP input member 'execute' must be a string");
      } else if (k === 'arguments') {
        if (v.t !== 'dict') throw new QmpError('GenericError', "QMP input member 'arguments' must be an object");
      } else if (k !== 'id') throw new QmpError('GenericError', `QMP input member '${k}' is unexpected`);
    }
    const exec = dict.get('execute');
    if (exec?.t !== 'str') throw new QmpError('GenericError', "QMP input lacks member 'execute'");
    const name = exec.v;
    const enabled = this.enabled.get(name);
    if (enabled === undefined) throw new QmpError('CommandNotFound', `The command ${name} has not been found`);
    if (!enabled) throw new QmpError('CommandNotFound', `Command ${name} has been disabled`);
    const a = dict.get('arguments');
    const args = a && a.t === 'dict' ? a.v : new QDict();
    this.o.onCommand?.(name);
    const ret = this.run(name, new ArgVisitor(args));
    if (NO_SUCCESS_RESPONSE.has(name)) return undefined;
    return ret ?? qdict([]);
  }

  private run(name: string, v: ArgVisitor): QObject | null {
    switch (name) {
      case 'guest-sync-delimited': {
        const id = v.int('id');
        v.check();
        this.delimitResponse = true; // ga_set_response_delimited
        return qint(id);
      }
      case 'guest-sync': {
        const id = v.int('id');
        v.check();
        return qint(id);
      }
      case 'guest-ping':
        v.check();
        return null;
      case 'guest-get-time': {
        v.check();
        // qga/commands.c: g_get_real_time() * 1000 — microseconds, scaled to ns
        const ns = this.o.guest.realtime();
        const us = ns >= 0n ? ns / 1000n : -((-ns + 999n) / 1000n);
        return qint(us * 1000n);
      }
      case 'guest-set-time': {
        const time = v.optionalInt('time');
        v.check();
        this.setTime(time);
        return null;
      }
      case 'guest-info':
        v.check();
        return this.info();
      case 'guest-get-timezone': {
        v.check();
        const tz = this.o.guest.timezone ?? { zone: 'UTC', offset: 0 };
        return qdict([
          ['zone', qstr(tz.zone)],
          ['offset', qint(BigInt(tz.offset))],
        ]);
      }
      default:
        throw new QmpError('CommandNotFound', `Command ${name} has been disabled`);
    }
  }

  /** qga/commands-posix.c qmp_guest_set_time. */
  private setTime(time: bigint | undefined): void {
    if (this.o.hwclockAvailable === false) throw new QmpError('GenericError', 'this feature or command is not currently supported');
    if (time !== undefined) {
      const sec = time / 1_000_000_000n; // C division truncates toward zero, as BigInt does
      const usec = (time % 1_000_000_000n) / 1000n;
      const year = new Date(Number(sec) * 1000).getUTCFullYear(); // g_date_set_time_t (the guest's zone is UTC)
      if (!(Number.isFinite(year) && year >= 1970 && year < 2070)) throw new QmpError('GenericError', 'Invalid time: Success');
      this.o.guest.settimeofday(sec * 1_000_000_000n + usec * 1000n); // struct timeval: µs
      this.o.guest.systemToHwclock?.(); // hwclock -w
    } else {
      this.o.guest.hwclockToSystem(); // hwclock -s
    }
  }

  /** qga/commands.c qmp_guest_info. */
  private info(): QObject {
    const cmds = [...QGA_COMMANDS].reverse().map((c) =>
      qdict([
        ['enabled', qbool(this.enabled.get(c)!)],
        ['name', qstr(c)],
        ['success-response', qbool(!NO_SUCCESS_RESPONSE.has(c))],
      ]),
    );
    return qdict([
      ['version', qstr(this.o.version ?? '7.2.22')],
      ['supported_commands', { t: 'list', v: cmds }],
    ]);
  }
}

function errorResponse(e: QmpError): QObject {
  return qdict([
    [
      'error',
      qdict([
        ['class', qstr(e.cls)],
        ['desc', qstr(e.desc)],
      ]),
    ],
  ]);
}

/** The QObject input visitor over a command's arguments. */
class ArgVisitor {
  private readonly seen = new Set<string>();
  constructor(private readonly args: QDict) {}

  int(name: string): bigint {
    const v = this.args.get(name);
    this.seen.add(name);
    if (v === undefined) throw new QmpError('GenericError', `Parameter '${name}' is missing`);
    if (v.t !== 'int') throw new QmpError('GenericError', `Invalid parameter type for '${name}', expected: integer`);
    return v.v;
  }

  optionalInt(name: string): bigint | undefined {
    return this.args.has(name) ? this.int(name) : undefined;
  }

  /** visit_check_struct: a member nobody visited. */
  check(): void {
    for (const [k] of this.args.entries()) if (!this.seen.has(k)) throw new QmpError('GenericError', `Parameter '${k}' is unexpected`);
  }
}
