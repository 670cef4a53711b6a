// The project's QEMU guest agent client (protocol: qga/qapi-schema.json, docs/interop/qemu-ga.rst).
// JSON requests, one reply per request, no ids. Over a serial line the stream may hold stale bytes from
// before the agent started, so a session begins with guest-sync-delimited: the client sends a 0xFF byte
// (which resets the agent's JSON parser) and the request with a random id; the agent writes 0xFF before
// its reply, and everything before that sentinel is discarded.
import type { Socket } from 'node:net';
import { UnavailableError } from '../core/index.ts';
import { connectUnix } from './qmp.ts';

export class QgaClient {
  private buf = Buffer.alloc(0);
  private waiter: { resolve: (v: unknown) => void; reject: (e: Error) => void; delimited: boolean } | null = null;
  private closed = false;
  /** A request timed out: its reply may still come and would be taken for the next one's (QGA has no ids). */
  private outOfStep = false;

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('close', () => {
      this.closed = true;
      this.waiter?.reject(new UnavailableError('guest agent socket closed', 'QEMU exited'));
      this.waiter = null;
    });
    sock.on('error', () => undefined);
  }

  static async connect(path: string, timeoutMs = 10_000): Promise<QgaClient> {
    return new QgaClient(await connectUnix(path, timeoutMs));
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    const w = this.waiter;
    if (!w) {
      this.buf = Buffer.alloc(0); // a reply nobody waits for (a timed-out request)
      return;
    }
    if (w.delimited) {
      const ff = this.buf.lastIndexOf(0xff);
      if (ff < 0) return;
      this.buf = this.buf.subarray(ff + 1);
      w.delimited = false;
    }
    const nl = this.buf.indexOf(0x0a);
    if (nl < 0) return;
    const line = this.buf.subarray(0, nl).toString('utf8').trim();
    this.buf = this.buf.subarray(nl + 1);
    this.waiter = null;
    // Integer returns (times in ns) exceed 2^53: keep them exact as bigint.
    const int = /^\{\s*"return"\s*:\s*(-?\d+)\s*\}$/.exec(line);
    if (int) {
      w.resolve(BigInt(int[1]!));
      return;
    }
    let msg: { return?: unknown; error?: { class?: string; desc?: string } };
    try {
      msg = JSON.parse(line);
    } catch {
      w.reject(new UnavailableError('guest agent sent malformed JSON', line.slice(0, 80)));
      return;
    }
    if (msg.error) w.reject(new UnavailableError(`guest agent error: ${msg.error.desc ?? ''}`, msg.error.class ?? 'GenericError'));
    else w.resolve(msg.return);
  }

  private request(body: Buffer, delimited: boolean, timeoutMs: number, what: string): Promise<unknown> {
    if (this.closed) return Promise.reject(new UnavailableError('guest agent socket closed', 'QEMU exited'));
    if (this.waiter) return Promise.reject(new Error('QgaClient: one request at a time'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        this.outOfStep = true;
        reject(new UnavailableError(`guest agent did not answer ${what}`, `no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        delimited,
      };
      this.buf = Buffer.alloc(0);
      this.sock.write(body);
    });
  }

  async execute(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
    const body = JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n';
    await this.resyncIfNeeded(timeoutMs);
    return this.request(Buffer.from(body), false, timeoutMs, command);
  }

  /** After a timed-out request, guest-sync-delimited again: everything before its sentinel is dropped. */
  private async resyncIfNeeded(timeoutMs: number): Promise<void> {
    if (this.outOfStep) await this.sync(timeoutMs);
  }

  /** guest-sync-delimited until the agent echoes our id; retries while the agent is still starting. */
  async sync(totalTimeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + totalTimeoutMs;
    for (;;) {
      const id = Math.floor(Math.random() * 2 ** 31);
      const body = Buffer.concat([
        Buffer.from([0xff]),
        Buffer.from(JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } }) + '\n'),
      ]);
      try {
        const got = await this.request(body, true, Math.min(2_000, totalTimeoutMs), 'guest-sync-delimited');
        if (got === BigInt(id)) {
          this.outOfStep = false;
          return;
        }
      } catch (e) {
        if (this.closed || Date.now() > deadline) throw e;
      }
      if (Date.now() > deadline)
        throw new UnavailableError('guest agent never synchronised', `no matching guest-sync-delimited reply in ${totalTimeoutMs} ms`);
    }
  }

  async ping(): Promise<void> {
    await this.execute('guest-ping');
  }

  /** guest-get-time: the guest's CLOCK_REALTIME in ns (qga/commands-posix.c reads it with gettimeofday: µs). */
  async getTime(): Promise<bigint> {
    return (await this.execute('guest-get-time')) as bigint;
  }

  /**
   * guest-set-time: sets the clock of the guest this agent runs in (settimeofday, µs, then hwclock -w;
   * qga/commands-posix.c). Only ever sent to the agent inside a lab guest.
   */
  async setTime(timeNs: bigint): Promise<void> {
    // JSON numbers: a 2026 time in ns (~1.8e18) is above 2^53, so write the integer text ourselves.
    const body = `{"execute":"guest-set-time","arguments":{"time":${timeNs.toString()}}}\n`;
    await this.resyncIfNeeded(15_000);
    await this.request(Buffer.from(body), false, 15_000, 'guest-set-time');
  }

  close(): void {
    this.sock.destroy();
  }
}
