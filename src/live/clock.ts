// `timevisor kvm clock`: the pvclock record KVM wrote into guest memory, KVM_GET_CLOCK right after,
// and the model's prediction of KVM_GET_CLOCK's clock from that record and host_tsc
// (hypervisor/clock-pair.ts): the guest record read at the guest TSC that host_tsc maps to.
import type { PvclockVcpuTimeInfo } from '../core/index.ts';
import type { KvmClockData } from '../hypervisor/index.ts';
import { predictGetClock } from '../hypervisor/index.ts';
import { kvmclockScale } from '../hypervisor/index.ts';
import { LiveKvm } from './kvm.ts';
import { bootMicroGuest, PVCLOCK_GPA } from './micro-guest.ts';

export interface ClockSample {
  pvclock: PvclockVcpuTimeInfo;
  getClock: KvmClockData;
  model: bigint;
  tscOffset: bigint;
}

export interface ClockReport {
  tscKhz: number;
  /** kvm_get_time_scale for tsc_khz, as the model computes it (compare with the record's). */
  modelScale: { shift: number; mul: number };
  tscOffsetKnown: boolean;
  samples: ClockSample[];
}

/** Boot the micro-guest and take `samples` (record, KVM_GET_CLOCK, prediction) triples, running the guest between them. */
export function sampleKvmClock(samples = 1, kvm?: LiveKvm): ClockReport {
  const own = !kvm;
  const k = kvm ?? LiveKvm.open();
  try {
    const g = bootMicroGuest(k, { steal: false });
    const tscKhz = g.vcpu.getTscKhz();
    const off = g.vcpu.tscOffset();
    const out: ClockSample[] = [];
    for (let i = 0; i < samples; i++) {
      if (i > 0) g.vcpu.runOnce();
      const pvclock = g.vm.readPvclock(PVCLOCK_GPA);
      const getClock = g.vm.getClock();
      out.push({ pvclock, getClock, tscOffset: off ?? 0n, model: predictGetClock(pvclock, getClock.hostTsc, { tscOffset: off ?? 0n }) });
    }
    return { tscKhz, modelScale: kvmclockScale(tscKhz), tscOffsetKnown: off !== null, samples: out };
  } finally {
    if (own) k.close();
  }
}

/** The JSON object `timevisor kvm clock --json` prints (64-bit values as decimal strings). */
export function clockSampleJson(s: ClockSample, r: ClockReport): Record<string, unknown> {
  return {
    pvclock: {
      version: s.pvclock.version,
      tsc_timestamp: s.pvclock.tscTimestamp.toString(),
      system_time: s.pvclock.systemTime.toString(),
      tsc_to_system_mul: s.pvclock.tscToSystemMul,
      tsc_shift: s.pvclock.tscShift,
      flags: s.pvclock.flags,
    },
    kvm_get_clock: {
      clock: s.getClock.clock.toString(),
      flags: s.getClock.flags,
      realtime: s.getClock.realtime.toString(),
      host_tsc: s.getClock.hostTsc.toString(),
    },
    model: {
      clock: s.model.toString(),
      difference_ns: (s.model - s.getClock.clock).toString(),
      tsc_khz: r.tscKhz,
      tsc_shift: r.modelScale.shift,
      tsc_to_system_mul: r.modelScale.mul,
      tsc_offset: s.tscOffset.toString(),
      tsc_offset_source: r.tscOffsetKnown ? 'KVM_VCPU_TSC_OFFSET' : 'assumed 0 (attribute unsupported)',
    },
  };
}
