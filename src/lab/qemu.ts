// One real QEMU process running the lab guest: `qemu-system-x86_64 -machine pc -accel tcg -cpu qemu64`,
// console on ttyS0 through stdio (the line protocol), the guest agent's isa-serial (ttyS1) on a unix
// socket, QMP on another. QEMU always runs under a hard timeout and `close()` kills it on every path;
// a process-exit hook kills it too if the caller forgot.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnavailableError } from '../core/index.ts';
import { adopt } from './children.ts';
import { MissingPrerequisiteError, requireTool, which } from './debian.ts';
import type { GuestImage } from './image.ts';
import { LineProtocolParser, parseClockBlock, parseKeyValues, type GuestClockSample, type SerialMessage } from './protocol.ts';
import { QgaClient } from './qga.ts';
import { QmpClient } from './qmp.ts';

/** The host's CLOCK_REALTIME in ns (sub-µs: timeOrigin + performance.now()). Read only, never set. */
export function hostRealtimeNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

export interface QemuOptions {
  image: GuestImage;
  /** Extra kernel command-line words (e.g. boot-time ftrace). */
  append?: readonly string[];
  /** Attach an e1000 NIC on QEMU user networking (slirp), for NTP to the host's loopback via 10.0.2.2. */
  network?: boolean;
  /** Hard limit on QEMU's lifetime, ms: QEMU is SIGKILLed when it expires. */
  lifetimeMs?: number;
  memoryMiB?: number;
  /**
   * Start as a migration destination: `-incoming <uri>` (e.g. `unix:PATH`, `exec:cat FILE`, `defer`). The
   * command line must otherwise match the source's; the guest arrives already booted (no "ready").
   */
  incoming?: string;
}

export function qemuBinary(): string {
  const p = which('qemu-system-x86_64');
  if (!p)
    throw new MissingPrerequisiteError(
      'qemu-system-x86_64 is not installed',
      'install the Debian package qemu-system-x86',
      'qemu-system-x86_64 (Debian package qemu-system-x86)',
    );
  return p;
}

/** A clock sample paired with the host's REALTIME bracketing the request. */
export interface TimedSample {
  guest: GuestClockSample;
  hostSentNs: bigint;
  hostRecvNs: bigint;
  /** Midpoint of the request/answer round trip: the host time assigned to the guest sample. */
  hostMidNs: bigint;
}

const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM'); // timeout(1) passes it on, KILLs 5 s later
    for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  });
}

export class QemuGuest {
  readonly args: string[];
  /** The options this QEMU was started with (a migration destination must match the source's). */
  readonly options: QemuOptions;
  readonly dir: string;
  readonly console: string[];
  readonly stderr: string[] = [];
  readonly qgaSocket: string;
  readonly hostStartNs: bigint;
  /** In-guest services already started ("agent", "net", "chrony"), so experiments can share one guest. */
  readonly started = new Set<string>();
  private readonly proc: ChildProcess;
  private readonly parser: LineProtocolParser;
  private readonly inbox: SerialMessage[] = [];
  private wake: (() => void) | null = null;
  private readonly hardKill: NodeJS.Timeout;
  private exited: Promise<void>;
  private qmpClient: QmpClient | null = null;
  private qgaClient: QgaClient | null = null;
  private seq = 0;
  private closedFlag = false;

  constructor(opts: QemuOptions) {
    const bin = qemuBinary();
    this.options = opts;
    this.dir = mkdtempSync(join(tmpdir(), 'timevisor-lab-'));
    liveDirs.add(this.dir);
    const qmp = join(this.dir, 'qmp.sock');
    this.qgaSocket = join(this.dir, 'qga.sock');
    const append = ['console=ttyS0', 'quiet', 'panic=-1', ...(opts.append ?? [])].join(' ');
    this.args = [
      '-machine',
      'pc',
      '-accel',
      'tcg',
      '-cpu',
      'qemu64',
      '-smp',
      '1',
      '-m',
      String(opts.memoryMiB ?? 256),
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-no-reboot',
      '-kernel',
      opts.image.kernel,
      '-initrd',
      opts.image.initrd,
      '-append',
      append,
      '-serial',
      'stdio',
      '-chardev',
      `socket,id=qga0,path=${this.qgaSocket},server=on,wait=off`,
      '-device',
      'isa-serial,chardev=qga0',
      '-qmp',
      `unix:${qmp},server=on,wait=off`,
      ...(opts.network ? ['-netdev', 'user,id=n0', '-device', 'e1000,netdev=n0'] : []),
      ...(opts.incoming ? ['-incoming', opts.incoming] : []),
    ];
    this.parser = new LineProtocolParser((m) => {
      this.inbox.push(m);
      this.wake?.();
    }, hostRealtimeNs);
    this.console = this.parser.console;
    installExitHook();
    this.hostStartNs = hostRealtimeNs();
    // Under coreutils timeout(1): QEMU dies at the end of its lifetime even if this process is killed outright.
    const lifetimeMs = opts.lifetimeMs ?? 300_000;
    const timeout = requireTool('timeout', 'coreutils');
    this.proc = spawn(timeout, ['--kill-after=5', String(Math.ceil(lifetimeMs / 1000)), bin, ...this.args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(this.proc);
    adopt(this.proc); // killChildren() (the CLI's signal handler) ends it too
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', () => {
        live.delete(this.proc);
        this.wake?.();
        resolve();
      }),
    );
    this.proc.on('error', () => undefined);
    this.proc.stdin!.on('error', () => undefined);
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (d: string) => this.parser.push(d));
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (d: string) => this.stderr.push(d));
    this.hardKill = setTimeout(() => this.proc.kill('SIGTERM'), lifetimeMs);
    this.hardKill.unref();
    this.qmpPath = qmp;
  }

  private readonly qmpPath: string;

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async qmp(): Promise<QmpClient> {
    this.qmpClient ??= await QmpClient.connect(this.qmpPath);
    return this.qmpClient;
  }

  async qga(): Promise<QgaClient> {
    this.qgaClient ??= await QgaClient.connect(this.qgaSocket);
    return this.qgaClient;
  }

  /** Send one command line to the guest's /init. */
  send(line: string): void {
    this.proc.stdin!.write(line + '\n');
  }

  /** Wait for (and consume) the first protocol message matching `pred`. */
  async waitFor(pred: (m: SerialMessage) => boolean, timeoutMs: number, what: string): Promise<SerialMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      if (!this.running) throw new UnavailableError(`QEMU exited while waiting for ${what}`, this.failureReason());
      const left = deadline - Date.now();
      if (left <= 0)
        throw new UnavailableError(`the guest did not send ${what}`, `nothing within ${timeoutMs} ms; ${this.failureReason()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  /** Remove (and return) every queued message of a tag, e.g. old chronyd log lines before an experiment. */
  drain(tag: string): SerialMessage[] {
    const out = this.inbox.filter((m) => m.tag === tag);
    for (let i = this.inbox.length - 1; i >= 0; i--) if (this.inbox[i]!.tag === tag) this.inbox.splice(i, 1);
    return out;
  }

  /** Messages of a tag seen so far (not consumed), e.g. "chrony" log lines. */
  peek(tag: string): SerialMessage[] {
    return this.inbox.filter((m) => m.tag === tag);
  }

  private failureReason(): string {
    const err = this.stderr.join('').trim().split('\n').pop();
    const con = this.console.slice(-3).join(' | ');
    return `qemu stderr: ${err || '(none)'}; console tail: ${con || '(none)'}`;
  }

  /** Wait for "@tv ready" from /init: the kernel has booted and the shell serves commands. */
  async ready(timeoutMs = 120_000): Promise<void> {
    await this.waitFor((m) => m.kind === 'line' && m.tag === 'ready', timeoutMs, '"ready" (boot)');
  }

  async block(command: string, tag: string, timeoutMs = 30_000): Promise<string[]> {
    const id = `b${++this.seq}`;
    this.send(`${command} ${id}`);
    const m = await this.waitFor((x) => x.kind === 'block' && x.tag === tag && x.id === id, timeoutMs, `${tag} block`);
    return m.kind === 'block' ? m.lines : [];
  }

  async sysinfo(): Promise<Record<string, string>> {
    this.send('sys');
    const m = await this.waitFor((x) => x.kind === 'block' && x.tag === 'sys', 30_000, 'sys block');
    return m.kind === 'block' ? parseKeyValues(m.lines) : {};
  }

  async dmesg(): Promise<string[]> {
    return this.block('dmesg', 'dmesg', 60_000);
  }

  /** Run a command line in the guest (busybox) and return its output. For diagnosis. */
  async exec(commandLine: string, timeoutMs = 30_000): Promise<string[]> {
    const id = `x${++this.seq}`;
    this.send(`exec ${id} ${commandLine}`);
    const m = await this.waitFor((x) => x.kind === 'block' && x.tag === 'exec' && x.id === id, timeoutMs, 'exec block');
    return m.kind === 'block' ? m.lines : [];
  }

  /**
   * Sample the guest's clocks. The guest reads /proc/timer_list with shell builtins as soon as the command
   * line arrives and prints its lines at once, so the read lies between sending the command and the
   * arrival of the block's first line (not its end, which waits for adjtimex and /proc/uptime).
   */
  async clock(): Promise<TimedSample> {
    const id = `c${++this.seq}`;
    const hostSentNs = hostRealtimeNs();
    this.send(`clock ${id}`);
    const m = await this.waitFor((x) => x.kind === 'block' && x.tag === 'clock' && x.id === id, 30_000, 'clock block');
    if (m.kind !== 'block') throw new Error('unreachable');
    const hostRecvNs = m.firstLineAt ?? hostRealtimeNs();
    return { guest: parseClockBlock(m.lines), hostSentNs, hostRecvNs, hostMidNs: (hostSentNs + hostRecvNs) / 2n };
  }

  async ok(command: string, timeoutMs = 30_000): Promise<string> {
    this.send(command);
    const name = command.split(' ')[0]!;
    const m = await this.waitFor((x) => x.kind === 'line' && x.tag === 'ok' && x.text.startsWith(name), timeoutMs, `ok ${name}`);
    return m.kind === 'line' ? m.text : '';
  }

  /** Quit QEMU (QMP quit, then SIGKILL if it lingers) and remove the socket directory. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    try {
      if (this.running && this.qmpClient) await Promise.race([this.qmpClient.quit().catch(() => undefined), delay(2_000)]);
    } finally {
      this.qgaClient?.close();
      this.qmpClient?.close();
      if (this.running) this.proc.kill('SIGTERM'); // timeout(1) forwards it to QEMU and KILLs it 5 s later
      await Promise.race([this.exited, delay(8_000)]);
      if (this.running) this.proc.kill('SIGKILL');
      clearTimeout(this.hardKill);
      rmSync(this.dir, { recursive: true, force: true });
      liveDirs.delete(this.dir);
    }
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
