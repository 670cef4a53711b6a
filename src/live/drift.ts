// kvmclock against the host's clock, live and predicted. KVM_GET_CLOCK returns kvmclock and
// CLOCK_REALTIME from one TSC reading (get_kvmclock, arch/x86/kvm/x86.c). Between two calls, kvmclock
// advances by the TSC cycles scaled with kvmclock's 32.32 multiplier, while CLOCK_REALTIME advances by
// the same cycles scaled with the host TSC clocksource's mult/shift (plus any NTP frequency correction).
// With the host undisciplined (adjtimex freq 0, nominal tick) the model predicts the difference to the
// nanosecond, up to the ±1 ns floor of the raw clock's absolute phase.
import { setTimeout as sleep } from 'node:timers/promises';
import { pvclockScaleDelta } from '../core/index.ts';
import { LinuxHostTimekeeper } from '../hypervisor/index.ts';
import { kvmclockScale } from '../hypervisor/index.ts';
import { LiveKvm } from './kvm.ts';
import { bootMicroGuest } from './micro-guest.ts';
import { hostNtpState } from './sys.ts';

export interface DriftReport {
  tscKhz: number;
  cycles: bigint;
  /** Measured: Δkvmclock − ΔCLOCK_REALTIME, ns. */
  measuredNs: bigint;
  /** Model: kvmclock scale of the cycles − raw clocksource scale of the cycles, ns. */
  predictedNs: bigint;
  /** Host NTP state: the prediction holds when freq is 0 and tick nominal. */
  ntp: { freq: bigint; tick: bigint; status: number };
}

export async function measureKvmclockDrift(seconds: number, kvm?: LiveKvm): Promise<DriftReport> {
  const own = !kvm;
  const k = kvm ?? LiveKvm.open();
  try {
    const g = bootMicroGuest(k, { steal: false });
    const tscKhz = g.vcpu.getTscKhz();
    const ntp = hostNtpState();
    const d0 = g.vm.getClock();
    await sleep(seconds * 1000);
    const d1 = g.vm.getClock();
    const cycles = d1.hostTsc - d0.hostTsc;
    const { shift, mul } = kvmclockScale(tscKhz);
    const raw = new LinuxHostTimekeeper({ tscKhz, rdtsc: () => 0n });
    const rawNs = (cycles * BigInt(raw.rawMult)) >> BigInt(raw.rawShift);
    return {
      tscKhz,
      cycles,
      measuredNs: d1.clock - d0.clock - (d1.realtime - d0.realtime),
      predictedNs: pvclockScaleDelta(cycles, mul, shift) - rawNs,
      ntp,
    };
  } finally {
    if (own) k.close();
  }
}
