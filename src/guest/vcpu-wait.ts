// Userspace in the guest (chronyd, ntpd, qemu-ga) runs only while the vCPU it is on runs: an hrtimer
// wakeup (a daemon's poll or slew timeout) or a packet's arrival that falls while that vCPU's host thread
// waits for a CPU, or while the VM is paused, is handled when the vCPU next runs — and the process reads
// its clocks then, at the late time. The model puts all guest userspace on one vCPU (USERSPACE_VCPU).
import type { Scheduler, Timer } from '../core/index.ts';
import type { GuestPlatform } from './platform.ts';

/** The vCPU the guest's daemons run on. */
export const USERSPACE_VCPU = 0;

/** What decides whether a vCPU runs: read through the platform each time (the VMM's lifecycle wraps it). */
export type VcpuGate = Pick<GuestPlatform, 'vcpuRunning' | 'nextVcpuRun'>;

/**
 * A timer whose expiry waits for vCPU `cpu`: when it falls while the vCPU does not run, the same timer is
 * re-armed for the vCPU's next run (so `pending`, `cancel` and re-arming keep their meaning), and `fn`
 * runs there. Without a gate on the platform it is a plain timer.
 */
export function vcpuTimer(sched: Scheduler, gate: VcpuGate, cpu: number, fn: () => void): Timer {
  const t = sched.timer(() => {
    if (!gate.vcpuRunning || gate.vcpuRunning(cpu)) {
      fn();
      return;
    }
    t.armAt(nextRunAfterNow(sched, gate, cpu));
  });
  return t;
}

/**
 * Run `fn` now when vCPU `cpu` runs, else when it next does (a one-shot wakeup: an arriving packet or
 * request). Returns the waiting timer (to cancel it), or null when `fn` ran now.
 */
export function whenVcpuRuns(sched: Scheduler, gate: VcpuGate, cpu: number, fn: () => void): Timer | null {
  if (!gate.vcpuRunning || gate.vcpuRunning(cpu)) {
    fn();
    return null;
  }
  const t = vcpuTimer(sched, gate, cpu, fn);
  t.armAt(nextRunAfterNow(sched, gate, cpu));
  return t;
}

/** A Scheduler whose timers all wait for vCPU `cpu` (what a daemon's event loop gets). */
export function vcpuScheduler(sched: Scheduler, gate: VcpuGate, cpu: number): Scheduler {
  return {
    get now() {
      return sched.now;
    },
    timer: (fn) => vcpuTimer(sched, gate, cpu, fn),
  };
}

/** When the stopped vCPU next runs; a platform that cannot say (or says now) is asked again 1 ms on. */
function nextRunAfterNow(sched: Scheduler, gate: VcpuGate, cpu: number) {
  const at = gate.nextVcpuRun?.(cpu);
  return at !== undefined && at > sched.now ? at : sched.now + 1_000_000n;
}
