// `timevisor kvm steal`: run the micro-guest for N seconds while a competing busy process shares the
// vCPU thread's CPU, and report the steal KVM recorded (record_steal_time adds the thread's
// sched_info.run_delay on each guest entry; arch/x86/kvm/x86.c) beside the run delay the host's
// scheduler accounted for the thread (/proc/<pid>/task/<tid>/schedstat, second field, ns).
//
// The competitor is a child Node process that busy-loops until its own deadline (it stops by itself
// even if we die), pinned with sched_setaffinity to the CPU the vCPU thread is pinned to.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { UnavailableError } from '../core/index.ts';
import { LiveKvm } from './kvm.ts';
import { bootMicroGuest, STEAL_GPA } from './micro-guest.ts';
import { libc, pinCurrentThread, restoreAffinity } from './sys.ts';

/** sched_info.run_delay of one thread (CONFIG_SCHEDSTATS / CONFIG_SCHED_INFO), ns. */
export function threadRunDelayNs(pid = process.pid, tid = process.pid): bigint {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
  } catch (err) {
    throw new UnavailableError('cannot read the thread run delay', `/proc/${pid}/task/${tid}/schedstat: ${(err as Error).message}`);
  }
  const f = text.trim().split(/\s+/);
  if (f.length < 2) throw new UnavailableError('cannot read the thread run delay', `unexpected schedstat "${text.trim()}"`);
  return BigInt(f[1]!);
}

export interface StealRun {
  contended: boolean;
  cpu: number;
  seconds: number;
  wallNs: bigint;
  /** Steal KVM added to the record during the run. */
  stealNs: bigint;
  /** Run delay the scheduler accounted for the vCPU thread during the run. */
  runDelayNs: bigint;
  entries: number;
  versionDelta: number;
}

/** Start a busy child that ends by itself after `ms`, pinned to `cpu`; resolves once it spins. */
async function startCompetitor(cpu: number, ms: number): Promise<ChildProcess> {
  const code = `process.stdout.write('go\\n'); const end = Date.now() + ${ms}; while (Date.now() < end) {}`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', () => resolve());
  });
  const mask = new Uint8Array(128);
  mask[cpu >> 3] = 1 << (cpu & 7);
  if (libc().sched_setaffinity(child.pid!, mask.length, mask) !== 0) {
    child.kill('SIGKILL');
    throw new UnavailableError('cannot pin the competing process', `sched_setaffinity(${child.pid}) failed`);
  }
  return child;
}

/** One measured run of `seconds`, with or without a competitor on the vCPU thread's CPU. */
export async function measureSteal(opts: { seconds: number; contended: boolean; cpu?: number }, kvm?: LiveKvm): Promise<StealRun> {
  const own = !kvm;
  const k = kvm ?? LiveKvm.open();
  const cpu = opts.cpu ?? libc().sched_getcpu();
  const oldMask = pinCurrentThread(cpu);
  let child: ChildProcess | null = null;
  try {
    const g = bootMicroGuest(k, { steal: true });
    if (opts.contended) child = await startCompetitor(cpu, Math.ceil(opts.seconds * 1000) + 200);
    g.vcpu.runOnce();
    const st0 = g.vm.readSteal(STEAL_GPA);
    const rd0 = threadRunDelayNs();
    const t0 = process.hrtime.bigint();
    const end = t0 + BigInt(Math.round(opts.seconds * 1e9));
    let entries = 0;
    let nextYield = t0 + 20_000_000n;
    for (let now = t0; now < end; now = process.hrtime.bigint()) {
      g.vcpu.runOnce();
      entries++;
      // Let the event loop run every 20 ms so Ctrl-C reaches LiveKvm's handler promptly.
      if (now >= nextYield) {
        await new Promise((r) => setImmediate(r));
        nextYield = now + 20_000_000n;
      }
    }
    const wallNs = process.hrtime.bigint() - t0;
    const rd1 = threadRunDelayNs();
    g.vcpu.runOnce(); // one more entry: KVM folds the run delay up to now into the record
    const st1 = g.vm.readSteal(STEAL_GPA);
    return {
      contended: opts.contended,
      cpu,
      seconds: opts.seconds,
      wallNs,
      stealNs: st1.steal - st0.steal,
      runDelayNs: rd1 - rd0,
      entries,
      versionDelta: st1.version - st0.version,
    };
  } finally {
    restoreAffinity(oldMask);
    if (child && child.exitCode === null) await new Promise((r) => child!.once('exit', r));
    if (own) k.close();
  }
}
