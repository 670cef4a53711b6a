// What re-syncs a guest's wall clock: the management layer's guest-agent call after a resume, or an NTP
// client in the guest polling a server. Each is a policy object the pause schedule calls into.
import { NSEC_PER_SEC, type Ns, type Timer } from '../core/index.ts';
import { Chronyd } from '../guest/index.ts';
import type { NtpMeasurement, NtpServerLink } from '../guest/index.ts';
import { NtpKernelClient } from '../guest/index.ts';
import { QgaAgent } from '../guest/index.ts';
import { USERSPACE_VCPU, type VcpuGate, vcpuScheduler, whenVcpuRuns } from '../guest/index.ts';
import { PtpKvm } from '../guest/index.ts';
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

/** Userspace (chronyd, ntpd, qemu-ga) starts this long after the guest kernel enters. */
export const USERSPACE_START_NS = 5n * NSEC_PER_SEC;

/** Whether the vCPU the guest's daemons run on runs (src/guest/vcpu-wait.ts), read through the booted VM's platform. */
function userspaceGate(run: VmRun): VcpuGate {
  const p = () => run.boot!.vm.platform;
  return {
    vcpuRunning: (cpu) => p().vcpuRunning?.(cpu) ?? true,
    nextVcpuRun: (cpu) => p().nextVcpuRun?.(cpu) ?? run.boot!.opts.scheduler.now,
  };
}

/**
 * The management layer's guest-set-time with the host's REALTIME `agent_delay` after each resume, sent
 * to the guest's qemu-ga model as JSON; it arrives `agent_latency` later and qemu-ga settimeofday()s the
 * guest (qga/commands-posix.c qmp_guest_set_time, µs resolution), so the latency shows up as error.
 */
class AgentSync implements GuestSync {
  private agent: QgaAgent | null = null;

  constructor(
    private readonly world: World,
    private readonly run: VmRun,
  ) {}

  onBoot(): void {
    const guest = () => this.run.boot!.guest;
    this.agent = new QgaAgent({
      guest: {
        realtime: () => guest().clockGettime('realtime'),
        settimeofday: (ns) => guest().settimeofday(ns),
        // hwclock -s: the RTC's current second (the wait for its next edge is not modelled)
        hwclockToSystem: () => {
          const r = guest().platform.readCmos?.();
          if (r) guest().settimeofday(r.seconds * NSEC_PER_SEC);
        },
      },
    });
  }

  onPause(): void {}

  onResume(synced: () => void): void {
    const { world, run } = this;
    const { engine, trace } = world;
    engine.after(run.vm.sync.agent_delay, () => {
      if (run.lifecycle!.paused) return;
      const request = `{"execute":"guest-set-time","arguments":{"time":${run.host.realtime(engine.now)}}}\n`;
      engine.after(run.vm.sync.agent_latency, () => {
        if (run.lifecycle!.paused) return;
        // the request wakes qemu-ga, which handles it when its vCPU runs
        whenVcpuRuns(engine, userspaceGate(run), USERSPACE_VCPU, () => {
          this.agent!.feed(request);
          if (trace.on) trace.instant(engine.now, run.vm.name, 'do_settimeofday64', ['qmp_guest_set_time', '__x64_sys_clock_settime']);
          synced();
        });
      });
    });
  }
}

/** The links to a VM's NTP servers: the scenario's, or an ideal one at true UTC 1 ms away each way. */
function serverLinks(world: World, run: VmRun): NtpServerLink[] {
  const names = run.vm.sync.servers ?? (world.scenario.ntpServers ?? []).map((n) => n.name);
  if (names.length > 0) return names.map((n) => world.ntp.link(n, run.vm.name));
  const { engine } = world;
  const oneWay: Ns = 1_000_000n;
  return [
    {
      name: 'ideal',
      exchange: (reply) =>
        engine.after(oneWay, () => {
          const t2 = world.truth(engine.now);
          engine.after(oneWay, () =>
            reply({ receiveNs: t2, transmitNs: t2, stratum: 1, rootDelay: 0, rootDispersion: 0, precision: -23, refId: 'ideal' }),
          );
        }),
    },
  ];
}

/** chronyd in the guest (src/guest/chrony) with the scenario's servers over their network paths. */
class ChronySync implements GuestSync {
  chronyd: Chronyd | null = null;
  /** A start or resume waiting for chronyd's vCPU. */
  private pending: Timer | null = null;

  constructor(
    private readonly world: World,
    private readonly run: VmRun,
  ) {}

  onBoot(): void {
    const { world, run } = this;
    const gate = userspaceGate(run);
    world.engine.at(run.boot!.kernelEntryAt + USERSPACE_START_NS, () => {
      if (run.lifecycle?.paused) return;
      this.pending = whenVcpuRuns(world.engine, gate, USERSPACE_VCPU, () => this.startChronyd(gate));
    });
  }

  /** chronyd's process starts: its timeouts and its replies' arrivals wait for its vCPU. */
  private startChronyd(gate: VcpuGate): void {
    const { world, run } = this;
    const sync = run.vm.sync;
    const guest = run.boot!.guest;
    const rc = sync.refclock;
    // refclock_phc.c phc_initialise: "Could not open PHC" is fatal — chronyd exits (no ptp_kvm: no /dev/ptp0)
    const phc = rc ? (run.vm.ptpKvm ? PtpKvm.probe(guest) : 'ENODEV') : null;
    if (typeof phc === 'string') return;
    // a reply is read (and timestamped, SO_TIMESTAMPING in the guest's stack) when the vCPU runs
    const links = serverLinks(world, run).map(
      (link): NtpServerLink => ({
        name: link.name,
        exchange: (reply) => link.exchange((r) => whenVcpuRuns(world.engine, gate, USERSPACE_VCPU, () => reply(r))),
      }),
    );
    this.chronyd = new Chronyd({
      scheduler: vcpuScheduler(world.engine, gate, USERSPACE_VCPU),
      adjtimex: (txc) => guest.adjtimex(txc),
      readRaw: () => guest.clockGettime('realtime'),
      // with a refclock, servers only when listed: the PHC alone otherwise
      servers: rc && sync.servers === undefined ? [] : links,
      ...(rc && phc ? { refclocks: [{ phc, options: { device: rc.phc, ...rc } }] } : {}),
      iburst: sync.iburst,
      minpoll: sync.minpoll,
      maxpoll: sync.maxpoll,
      makestep: sync.makestep ? { threshold: sync.makestep[0], limit: sync.makestep[1] } : null,
      maxSlewRatePpm: sync.maxslewrate_ppm,
      rtcsync: sync.rtcsync,
    });
    run.chronyd = this.chronyd;
    this.chronyd.start();
  }

  onPause(): void {
    this.pending?.cancel();
    this.chronyd?.stop();
  }

  onResume(synced: () => void): void {
    const c = this.chronyd;
    if (!c) return;
    this.pending = whenVcpuRuns(this.world.engine, userspaceGate(this.run), USERSPACE_VCPU, () => c.resume());
    // "synced" at chronyd's next clock update after the resume
    c.reference.onUpdate = () => {
      c.reference.onUpdate = null;
      synced();
    };
  }
}

/** An ntpd-like client in the guest: against its first server over that path, or an ideal server at true UTC, 1 ms round trip. */
class NtpSync implements GuestSync {
  private readonly client: NtpKernelClient;
  private readonly gate: VcpuGate;
  /** A start waiting for the daemon's vCPU. */
  private pending: Timer | null = null;

  constructor(
    private readonly world: World,
    private readonly run: VmRun,
  ) {
    const { engine } = world;
    const sync = run.vm.sync;
    this.gate = userspaceGate(run);
    const server = (sync.servers ?? (world.scenario.ntpServers ?? []).map((n) => n.name))[0];
    const guestRealtime = () => run.boot!.guest.clockGettime('realtime');
    // the ideal server's measurement, filled in at each poll (the client reads it at once and keeps nothing of it)
    const ideal: NtpMeasurement = { offsetNs: 0n, delayNs: 1_000_000n };
    this.client = new NtpKernelClient({
      scheduler: vcpuScheduler(engine, this.gate, USERSPACE_VCPU),
      adjtimex: (txc) => run.boot!.guest.adjtimex(txc),
      measure: server
        ? () => world.ntp.measureNow(server, run.vm.name, guestRealtime)
        : () => {
            ideal.offsetNs = world.truth(engine.now) - guestRealtime();
            return ideal;
          },
      pollExp: sync.ntp_poll_exp,
      stepThresholdNs: sync.ntp_step_threshold,
    });
    // a poll reads the guest's clock, measures (the VM's own path and random stream) and calls adjtimex:
    // it runs inside quiet spans at its time (src/guest/boot.ts runQuiet) — when its vCPU runs throughout
    // (GuestPlatform.vcpuAlwaysRuns); one that may wait re-arms for the vCPU's next run (vcpuTimer)
    const p = () => run.boot?.vm.platform;
    const alwaysRuns = (): boolean => {
      const pl = p();
      return pl !== undefined && (pl.vcpuAlwaysRuns ? pl.vcpuAlwaysRuns(USERSPACE_VCPU) : !pl.vcpuRunning);
    };
    engine.quietParticipant(this.client.pollTimer, (at) => (alwaysRuns() ? this.client.nextPollAt(at) : undefined));
  }

  onBoot(): void {
    // chronyd/ntpd start in userspace once the kernel has booted
    this.world.engine.at(this.run.boot!.kernelEntryAt + USERSPACE_START_NS, () => {
      if (!this.run.lifecycle?.paused) this.pending = whenVcpuRuns(this.world.engine, this.gate, USERSPACE_VCPU, () => this.client.start());
    });
  }

  onPause(): void {
    this.pending?.cancel();
    this.client.stop();
  }

  onResume(synced: () => void): void {
    // The daemon's next poll comes one poll interval after it wakes up again.
    this.world.engine.after(BigInt(2 ** this.run.vm.sync.ntp_poll_exp) * NSEC_PER_SEC, () => {
      if (this.run.lifecycle!.paused) return;
      this.pending = whenVcpuRuns(this.world.engine, this.gate, USERSPACE_VCPU, () => {
        this.client.start();
        synced();
      });
    });
  }
}

/** The VM's sync policy, or null for `method: none`. */
export function guestSync(world: World, run: VmRun): GuestSync | null {
  switch (run.vm.sync.method) {
    case 'agent':
      return new AgentSync(world, run);
    case 'ntp':
    case 'ntpd':
      return new NtpSync(world, run);
    case 'chrony':
      return new ChronySync(world, run);
    default:
      return null;
  }
}
