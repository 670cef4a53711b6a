// One live-KVM test file at a time: the test runner runs files two at a time, and a timing test
// (steal under a competitor, PIT ticks, LAPIC rates) must not share the host's 2 CPUs with another
// file's guests. An atomic mkdir is the lock; a lock left by a dead process is taken over.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { kvmUnavailableReason } from '../../src/live/kvm.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DIR = join(tmpdir(), 'timevisor-live-tests.lock');

function holderAlive(): boolean {
  try {
    const pid = Number(readFileSync(join(DIR, 'pid'), 'utf8'));
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Wait for the lock (up to 10 minutes), then hold it until release(). */
export async function acquireLiveLock(): Promise<() => void> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      mkdirSync(DIR);
      writeFileSync(join(DIR, 'pid'), String(process.pid));
      return () => rmSync(DIR, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // a holder that died, or one that has not written its pid yet (give it a moment)
      if (!holderAlive()) {
        await new Promise((r) => setTimeout(r, 200));
        if (!holderAlive()) rmSync(DIR, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`live test lock ${DIR} held for 10 minutes`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * The setup both live test files share: the lock held while the file runs, and a check each test makes
 * first — false (with the reason printed and the test skipped) where /dev/kvm is missing or unusable or we
 * are not root, and where `more` names another missing prerequisite.
 */
export function liveKvmTests(more: () => string | null = () => null): {
  unavailable: string | null;
  needKvm: (t: { skip: (m: string) => void }) => boolean;
} {
  const unavailable = kvmUnavailableReason();
  let releaseLock: (() => void) | null = null;
  before(async () => {
    if (!unavailable) releaseLock = await acquireLiveLock();
  });
  after(() => releaseLock?.());
  const needKvm = (t: { skip: (m: string) => void }): boolean => {
    const why = unavailable ?? more();
    if (why) {
      console.log(`skipping live KVM test: ${why}`);
      t.skip(why);
      return false;
    }
    return true;
  };
  return { unavailable, needKvm };
}

/**
 * Run `script` (ESM, through tsx) in a child process that opens a LiveKvm with an onClose that prints
 * "released N" on stderr and prints "ready N" (resources held) on stdout; SIGINT it once ready and report
 * how it ended and what it held and released.
 */
export async function sigintLiveChild(
  script: string,
): Promise<{ held: number; released: number | null; code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const ready = await new Promise<string>((resolve) => child.stdout.once('data', (d) => resolve(String(d))));
  const held = Number(/ready (\d+)/.exec(ready)?.[1]);
  child.kill('SIGINT');
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
  const m = /released (\d+)/.exec(stderr);
  return { held, released: m ? Number(m[1]) : null, code, signal, stderr };
}
