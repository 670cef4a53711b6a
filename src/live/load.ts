// Busy host threads for live experiments under load: child processes that spin until their own deadline,
// so they stop by themselves even if we die; stopBusy() ends them early.
import { type ChildProcess, spawn } from 'node:child_process';

export async function startBusy(n: number, ms: number): Promise<ChildProcess[]> {
  const code = `process.stdout.write('go\\n'); const end = Date.now() + ${Math.ceil(ms)}; while (Date.now() < end) {}`;
  const kids: ChildProcess[] = [];
  for (let i = 0; i < n; i++) {
    const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    kids.push(child);
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.stdout!.once('data', () => resolve());
    });
  }
  return kids;
}

export function stopBusy(kids: ChildProcess[]): void {
  for (const k of kids) if (k.exitCode === null && k.signalCode === null) k.kill('SIGKILL');
}
