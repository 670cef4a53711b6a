// A QMP client (QEMU Machine Protocol: docs/interop/qmp-spec.rst): newline-delimited JSON over a unix
// socket; the server greets with {"QMP": …}, the client must send qmp_capabilities before any command,
// replies carry the request's "id", asynchronous events carry "event".
import { connect, type Socket } from 'node:net';
import { UnavailableError } from '../core/index.ts';

export interface QmpEvent {
  event: string;
  data?: unknown;
  timestamp?: { seconds: number; microseconds: number };
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export class JsonLineChannel {
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  readonly events: QmpEvent[] = [];
  private greetingWaiter: ((v: unknown) => void) | null = null;
  private greeting: unknown = null;
  private closed = false;

  constructor(
    private readonly sock: Socket,
    private readonly what: string,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('close', () => this.failAll(new UnavailableError(`${what} connection closed`, 'QEMU exited or closed the socket')));
    sock.on('error', () => undefined);
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) {
        this.greeting = msg;
        this.greetingWaiter?.(msg);
      } else if ('event' in msg) {
        this.events.push(msg as unknown as QmpEvent);
      } else if ('id' in msg) {
        const p = this.pending.get(String(msg.id));
        if (!p) continue;
        this.pending.delete(String(msg.id));
        clearTimeout(p.timer);
        if ('error' in msg) {
          const e = msg.error as { class?: string; desc?: string };
          p.reject(new UnavailableError(`${this.what} command failed: ${e.desc ?? 'error'}`, e.class ?? 'GenericError'));
        } else p.resolve(msg.return);
      }
    }
  }

  private failAll(e: Error): void {
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
  }

  waitGreeting(timeoutMs: number): Promise<unknown> {
    if (this.greeting) return Promise.resolve(this.greeting);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new UnavailableError(`no ${this.what} greeting`, `nothing within ${timeoutMs} ms`)), timeoutMs);
      this.greetingWaiter = (g) => {
        clearTimeout(t);
        resolve(g);
      };
    });
  }

  execute(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
    if (this.closed) return Promise.reject(new UnavailableError(`${this.what} is closed`, 'QEMU is gone'));
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new UnavailableError(`${this.what} command ${command} timed out`, `no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.sock.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

export function connectUnix(path: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(path);
      s.once('connect', () => resolve(s));
      s.once('error', (e) => {
        s.destroy();
        if (Date.now() > deadline) reject(new UnavailableError(`cannot connect to ${path}`, e.message));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** QMP: stop, cont, query-status, system_powerdown, quit. */
export class QmpClient {
  private constructor(private readonly ch: JsonLineChannel) {}

  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const ch = new JsonLineChannel(await connectUnix(path, timeoutMs), 'QMP');
    await ch.waitGreeting(timeoutMs);
    await ch.execute('qmp_capabilities');
    return new QmpClient(ch);
  }

  get events(): readonly QmpEvent[] {
    return this.ch.events;
  }

  execute(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<unknown> {
    return this.ch.execute(command, args, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.ch.execute('stop');
  }

  async cont(): Promise<void> {
    await this.ch.execute('cont');
  }

  async queryStatus(): Promise<{ running: boolean; status: string }> {
    return (await this.ch.execute('query-status')) as { running: boolean; status: string };
  }

  async systemPowerdown(): Promise<void> {
    await this.ch.execute('system_powerdown');
  }

  async quit(): Promise<void> {
    await this.ch.execute('quit', undefined, 3_000);
  }

  close(): void {
    this.ch.close();
  }
}
