// `timevisor kvm pause`: pause a live VM the way QEMU does (hw/i386/kvm/clock.c,
// kvmclock_vm_state_change: on stop KVM_GET_CLOCK saves the clock; on continue KVM_SET_CLOCK restores
// it, then KVM_KVMCLOCK_CTRL on every vCPU), beside a free-running VM, and the same pause simulated
// with the hypervisor model. The guest clock is read the guest's way: its pvclock record (guest
// memory) at its TSC (IA32_TSC).
import { setTimeout as sleep } from 'node:timers/promises';
import { PVCLOCK_GUEST_STOPPED, MSR_KVM_SYSTEM_TIME_NEW, decodePvclock, pvclockReadCycles } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { FlatGuestMemory } from '../hypervisor/index.ts';
import { LinuxHostTimekeeper } from '../hypervisor/index.ts';
import { KvmVm } from '../hypervisor/index.ts';
import { LiveKvm } from './kvm.ts';
import { bootMicroGuest, guestKvmclock, PVCLOCK_GPA, WALL_CLOCK_GPA, type MicroGuest } from './micro-guest.ts';
import { decodeWallClock, MSR_KVM_WALL_CLOCK_NEW } from '../core/index.ts';

function liveEpoch(g: MicroGuest): Ns {
  const wc = decodeWallClock(g.vm.memory.slice(WALL_CLOCK_GPA, WALL_CLOCK_GPA + 12));
  return BigInt(wc.sec) * 1_000_000_000n + BigInt(wc.nsec);
}

export interface PauseSide {
  /** Guest kvmclock before and after, and its progress across the pause. */
  before: Ns;
  after: Ns;
  progress: Ns;
  /** GUEST_STOPPED in the first record after resume. */
  guestStopped: boolean;
  /**
   * How far the guest's wall clock (boot epoch from the wall-clock MSR record + kvmclock, as
   * pvclock_read_wallclock computes it) fell behind the host's CLOCK_REALTIME across the pause.
   * Realtime and kvmclock come from one KVM_GET_CLOCK (one TSC reading).
   */
  wallLag: bigint;
}

/** realtime − (epoch + kvmclock) at one KVM_GET_CLOCK. */
function wallBehind(clock: { clock: Ns; realtime: Ns }, epoch: Ns): bigint {
  return clock.realtime - (epoch + clock.clock);
}

export interface PauseReport {
  pauseNs: Ns;
  live: { paused: PauseSide; freeRunning: PauseSide; wallNs: Ns };
  simulated: { paused: PauseSide; freeRunning: PauseSide };
}

/** Pause a live VM for `seconds` QEMU-style beside a free-running one; simulate the same. */
export async function livePause(seconds: number, kvm?: LiveKvm): Promise<PauseReport> {
  const own = !kvm;
  const k = kvm ?? LiveKvm.open();
  try {
    const a = bootMicroGuest(k, { steal: false });
    const b = bootMicroGuest(k, { steal: false });
    const tscKhz = a.vcpu.getTscKhz();
    // Rewrite the wall-clock record now that the master clock is on (one TSC reading for the epoch).
    for (const g of [a, b]) g.vcpu.setMsrs([[MSR_KVM_WALL_CLOCK_NEW, BigInt(WALL_CLOCK_GPA)]]);
    const [ea, eb] = [liveEpoch(a), liveEpoch(b)];
    const lagA0 = wallBehind(a.vm.getClock(), ea);
    const lagB0 = wallBehind(b.vm.getClock(), eb);
    const a0 = guestKvmclock(a).ns;
    const b0 = guestKvmclock(b).ns;
    const t0 = process.hrtime.bigint();
    const saved = a.vm.getClock(); // stop: kvm_update_clock()
    await sleep(seconds * 1000);
    a.vm.setClock({ clock: saved.clock }); // cont: KVM_SET_CLOCK
    a.vcpu.kvmclockCtrl(); // cont: KVM_KVMCLOCK_CTRL on each vCPU
    a.vcpu.runOnce();
    b.vcpu.runOnce();
    const wallNs = process.hrtime.bigint() - t0;
    const a1 = guestKvmclock(a);
    const b1 = guestKvmclock(b);
    const lagA = wallBehind(a.vm.getClock(), ea) - lagA0;
    const lagB = wallBehind(b.vm.getClock(), eb) - lagB0;
    const sim = simulatePause(BigInt(Math.round(seconds * 1e9)), tscKhz);
    return {
      pauseNs: BigInt(Math.round(seconds * 1e9)),
      live: {
        paused: {
          before: a0,
          after: a1.ns,
          progress: a1.ns - a0,
          guestStopped: (a1.record.flags & PVCLOCK_GUEST_STOPPED) !== 0,
          wallLag: lagA,
        },
        freeRunning: {
          before: b0,
          after: b1.ns,
          progress: b1.ns - b0,
          guestStopped: (b1.record.flags & PVCLOCK_GUEST_STOPPED) !== 0,
          wallLag: lagB,
        },
        wallNs,
      },
      simulated: sim,
    };
  } finally {
    if (own) k.close();
  }
}

/** The same sequence on the model: a host TSC that the simulation moves by `pauseNs`. */
export function simulatePause(pauseNs: Ns, tscKhz: number): { paused: PauseSide; freeRunning: PauseSide } {
  let tsc = 1_000_000_000_000n;
  const host = new LinuxHostTimekeeper({ tscKhz, rdtsc: () => tsc, realtimeAtBootNs: 1_700_000_000_000_000_000n });
  const boot = () => {
    const memory = new FlatGuestMemory(0x10000);
    const vm = new KvmVm({ host, memory });
    const vcpu = vm.createVcpu();
    vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, BigInt(PVCLOCK_GPA) | 1n, true);
    vcpu.run(0);
    vcpu.setMsr(MSR_KVM_WALL_CLOCK_NEW, BigInt(WALL_CLOCK_GPA), true);
    const wc = decodeWallClock(memory.read(BigInt(WALL_CLOCK_GPA), 12));
    const epoch = BigInt(wc.sec) * 1_000_000_000n + BigInt(wc.nsec);
    const read = () => {
      const rec = decodePvclock(memory.read(BigInt(PVCLOCK_GPA), 32));
      return { ns: pvclockReadCycles(rec, vcpu.readL1Tsc()), stopped: (rec.flags & PVCLOCK_GUEST_STOPPED) !== 0 };
    };
    const lag = () => wallBehind(vm.getClock(), epoch);
    return { vm, vcpu, read, lag };
  };
  const a = boot();
  const b = boot();
  const a0 = a.read().ns;
  const b0 = b.read().ns;
  const [lagA0, lagB0] = [a.lag(), b.lag()];
  const saved = a.vm.getClock();
  tsc += (pauseNs * BigInt(tscKhz)) / 1_000_000n;
  a.vm.setClock({ clock: saved.clock });
  a.vcpu.kvmclockCtrl();
  a.vcpu.run(0);
  b.vcpu.run(0);
  const a1 = a.read();
  const b1 = b.read();
  return {
    paused: { before: a0, after: a1.ns, progress: a1.ns - a0, guestStopped: a1.stopped, wallLag: a.lag() - lagA0 },
    freeRunning: { before: b0, after: b1.ns, progress: b1.ns - b0, guestStopped: b1.stopped, wallLag: b.lag() - lagB0 },
  };
}
