// What re-syncs a guest's wall clock: the management layer's guest-agent call after a resume, or an NTP
// client in the guest polling a server. Each is a policy object the pause schedule calls into.
import { NSEC_PER_SEC } from '../core/time.ts';
import { NtpKernelClient } from '../guest/ntp-client.ts';
import type { VmRun } from './vm-run.ts';
import type { World } from './world.ts';

export interface GuestSync {
  /** The guest's kernel has entered: start whatever runs from boot. */
  onBoot(): void;
  /** The VM is being paused. */
  onPause(): void;
  /** The VM has resumed; call `synced` once the sync has acted on the guest clock. */
  onResume(synced: () => void): void;
}

/**
 * The management layer's guest-set-time with the host's REALTIME `agent_delay` after each resume:
 * qemu-ga settimeofday()s the guest (qga/commands-posix.c qmp_guest_set_time).
 */
class AgentSync implements GuestSync {
  constructor(
    private readonly world: World,
    private readonly run: VmRun,
  ) {}

  onBoot(): void {}
  onPause(): void {}

  onResume(synced: () => void): void {
    const { world, run } = this;
    const { engine, trace } = world;
    engine.after(run.vm.sync.agent_delay, () => {
      if (run.lifecycle!.paused) return;
      run.boot!.guest.settimeofday(run.host.realtime(engine.now));
      if (trace.on) trace.instant(engine.now, run.vm.name, 'do_settimeofday64', ['qmp_guest_set_time', '__x64_sys_clock_settime']);
      synced();
    });
  }
}

/** An ntpd-like client in the guest against an ideal server at true UTC, 1 ms round trip. */
class NtpSync implements GuestSync {
  private readonly client: NtpKernelClient;

  constructor(
    private readonly world: World,
    private readonly run: VmRun,
  ) {
    const { engine } = world;
    const sync = run.vm.sync;
    this.client = new NtpKernelClient({
      scheduler: engine,
      adjtimex: (txc) => run.boot!.guest.adjtimex(txc),
      measure: () => ({ offsetNs: world.truth(engine.now) - run.boot!.guest.clockGettime('realtime'), delayNs: 1_000_000n }),
      pollExp: sync.ntp_poll_exp,
      stepThresholdNs: sync.ntp_step_threshold,
    });
  }

  onBoot(): void {
    // chronyd/ntpd start in userspace once the kernel has booted
    this.world.engine.at(this.run.boot!.kernelEntryAt + 5n * NSEC_PER_SEC, () => {
      if (!this.run.lifecycle?.paused) this.client.start();
    });
  }

  onPause(): void {
    this.client.stop();
  }

  onResume(synced: () => void): void {
    // The daemon's next poll comes one poll interval after it wakes up again.
    this.world.engine.after(BigInt(2 ** this.run.vm.sync.ntp_poll_exp) * NSEC_PER_SEC, () => {
      if (this.run.lifecycle!.paused) return;
      this.client.start();
      synced();
    });
  }
}

/** The VM's sync policy, or null for `method: none`. */
export function guestSync(world: World, run: VmRun): GuestSync | null {
  switch (run.vm.sync.method) {
    case 'agent':
      return new AgentSync(world, run);
    case 'ntp':
      return new NtpSync(world, run);
    default:
      return null;
  }
}
