// Every helper program the lab runs (apt-get, dpkg-deb, tar, QEMU, chronyd) is started asynchronously and
// registered here, so that a SIGINT or SIGTERM is handled at once (a synchronous spawn would hold the event
// loop, and the signal handler with it, until the child ended) and `killChildren()` can end them all.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const live = new Set<ChildProcess>();
let exitHook = false;

/** Register a child so killChildren() and process exit end it. */
export function adopt(child: ChildProcess): ChildProcess {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => killChildren('SIGTERM'));
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Send `signal` to every child still running (QEMU runs under timeout(1), which passes it on). */
export function killChildren(signal: NodeJS.Signals = 'SIGTERM'): number {
  let n = 0;
  for (const c of live)
    if (c.exitCode === null && c.signalCode === null) {
      c.kill(signal);
      n++;
    }
  return n;
}

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Spawn failure or timeout. */
  error?: Error;
}

/** Run a program to completion without blocking the event loop; SIGKILLed after `timeoutMs`. */
export function run(cmd: string, args: readonly string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<ChildResult> {
  return new Promise((resolve) => {
    const child = adopt(spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    let error: Error | undefined;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          error = new Error(`${cmd} ETIMEDOUT after ${opts.timeoutMs} ms`);
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : null;
    let settled = false;
    const finish = (status: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, ...(error ? { error } : {}) });
    };
    child.once('error', (e) => {
      error = e;
      if (child.pid === undefined) finish(null, null); // never started: no 'close' to wait for
    });
    child.once('close', finish);
  });
}

/** `a | b`: both programs registered (a shell pipeline would leave its members running when the shell is killed). */
export async function runPipeline(
  a: { cmd: string; args: readonly string[] },
  b: { cmd: string; args: readonly string[] },
  timeoutMs: number,
): Promise<ChildResult> {
  const first = adopt(spawn(a.cmd, a.args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const second = adopt(spawn(b.cmd, b.args, { stdio: ['pipe', 'ignore', 'pipe'] }));
  first.stdout!.pipe(second.stdin!);
  second.stdin!.on('error', () => undefined); // tar may exit before dpkg-deb finishes writing
  let stderr = '';
  let error: Error | undefined;
  for (const c of [first, second]) {
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.once('error', (e) => (error = e));
  }
  const timer = setTimeout(() => {
    error = new Error(`${a.cmd} | ${b.cmd} ETIMEDOUT after ${timeoutMs} ms`);
    first.kill('SIGKILL');
    second.kill('SIGKILL');
  }, timeoutMs);
  const ended = (c: ReturnType<typeof spawn>) =>
    new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      if (c.pid === undefined) return resolve({ status: null, signal: null });
      c.once('close', (status, signal) => resolve({ status, signal }));
      c.once('error', () => resolve({ status: null, signal: null }));
    });
  const [ra, rb] = await Promise.all([ended(first), ended(second)]);
  clearTimeout(timer);
  const bad = ra.status !== 0 ? ra : rb;
  return { status: ra.status === 0 ? rb.status : ra.status, signal: bad.signal, stdout: '', stderr, ...(error ? { error } : {}) };
}
