// A chronyd on the host that only serves: started with -x (never adjusts or sets this machine's clock),
// its own config, pid file and no command socket, in a temp dir, listening on 127.0.0.1 only. The guest
// reaches it at 10.0.2.2 through QEMU's user networking (slirp forwards 10.0.2.2 to host loopback).
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnavailableError } from '../core/index.ts';
import { adopt } from './children.ts';
import { requireTool } from './debian.ts';
import { chronydBinary } from './image.ts';

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => s.bind(0, '127.0.0.1', () => resolve()).once('error', reject));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export class HostChronyServer {
  readonly log: string[] = [];
  private constructor(
    private readonly proc: ChildProcess,
    private readonly dir: string,
    readonly port: number,
    private readonly exited: Promise<void>,
  ) {}

  static async start(lifetimeMs = 300_000): Promise<HostChronyServer> {
    // chronyd exits with "Fatal error : Not superuser" otherwise, even with -x
    if (process.geteuid && process.geteuid() !== 0)
      throw new UnavailableError('the host chronyd (serve-only, -x) needs root', 'chronyd refuses to start as another user');
    const bin = await chronydBinary();
    const dir = mkdtempSync(join(tmpdir(), 'timevisor-chrony-'));
    const port = await freeUdpPort();
    const conf = join(dir, 'chrony.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bindaddress 127.0.0.1',
        'allow 127.0.0.1',
        'local stratum 8',
        'cmdport 0',
        'bindcmdaddress /',
        `pidfile ${join(dir, 'chronyd.pid')}`,
        '',
      ].join('\n'),
    );
    // -x: never adjust the system clock (serve only); -d: stay in the foreground so we own the process.
    // Under coreutils timeout(1), so it ends with its lifetime even if this process is killed outright.
    const timeout = requireTool('timeout', 'coreutils');
    const proc = spawn(timeout, ['--kill-after=3', String(Math.ceil(lifetimeMs / 1000)), bin, '-x', '-d', '-u', 'root', '-f', conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    adopt(proc); // killChildren() (the CLI's signal handler) ends it too
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.on('error', () => undefined);
    const server = new HostChronyServer(proc, dir, port, exited);
    for (const s of [proc.stdout!, proc.stderr!]) {
      s.setEncoding('utf8');
      s.on('data', (d: string) => server.log.push(...d.split('\n').filter(Boolean)));
    }
    const kill = setTimeout(() => proc.kill('SIGTERM'), lifetimeMs);
    kill.unref();
    const onExit = () => {
      proc.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', onExit);
    proc.once('exit', () => {
      clearTimeout(kill);
      process.removeListener('exit', onExit);
    });
    // chronyd logs "chronyd version … starting" and then serves; give it a moment and check it is alive.
    await new Promise((r) => setTimeout(r, 300));
    if (proc.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      throw new UnavailableError(
        'the host chronyd (server only, -x) did not start',
        server.log.slice(-2).join(' | ') || `exit ${proc.exitCode}`,
      );
    }
    return server;
  }

  async close(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(t);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
