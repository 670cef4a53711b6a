// `timevisor kvm kvmclock`: the micro-guest enables kvmclock itself (WRMSR 0x4b564d01), reads its own
// pvclock record with the version loop and RDTSC, and stops at a port the VMM answers after taking
// KVM_GET_CLOCK. Per sample: the guest's kvmclock (its record read at its TSC), KVM_GET_CLOCK, and the
// model's prediction of KVM_GET_CLOCK from the record (hypervisor/clock-pair.ts). The twin boots the
// hypervisor model's vCPU at the same TSC rate and does the same MSR write: its record's scale and the
// KVM events it traces are compared with the live ones.
import { InputError } from '../core/index.ts';
import { decodePvclock, MSR_KVM_SYSTEM_TIME_NEW, type PvclockVcpuTimeInfo, pvclockReadCycles } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { TraceRecorder } from '../core/index.ts';
import type { PortDevice } from '../devices/index.ts';
import { predictGetClock } from '../hypervisor/index.ts';
import { FlatGuestMemory } from '../hypervisor/index.ts';
import { LinuxHostTimekeeper } from '../hypervisor/index.ts';
import { KvmVm } from '../hypervisor/index.ts';
import { formatCounts, HostTrace, probesFor, twinCounts } from './bpftrace.ts';
import { buildGuest } from './guest-build.ts';
import { LiveKvm } from './kvm.ts';
import type { CpuidPolicy } from './cpuid.ts';
import { LiveMachine, MB } from './vmm.ts';

export const SYNC_PORT = 0x512;
const PVCLOCK_GPA = 0x2000;

export interface KvmclockSample {
  /** The record as the guest copied it, and the guest TSC it read. */
  record: PvclockVcpuTimeInfo;
  guestTsc: bigint;
  /** kvmclock as the guest computes it: the record read at its TSC. */
  guestNs: Ns;
  /** KVM_GET_CLOCK taken while the guest waited at SYNC_PORT. */
  getClock: Ns;
  hostTsc: bigint;
  /** The model's prediction of getClock from the record at host_tsc. */
  model: Ns;
}

export interface KvmclockReport {
  tscKhz: number;
  tscOffset: bigint;
  samples: KvmclockSample[];
  /** The twin's record scale for the same TSC rate. */
  twin: { tscToSystemMul: number; tscShift: number; flags: number; traceCounts?: Record<string, number> };
  live: { traceCounts?: Record<string, number> };
  trace?: { note: string | null; host: string; twin: string };
}

/** The host tracepoints and the model functions that stand for them. */
export const KVMCLOCK_TRACE_ALIASES: Record<string, string[]> = {
  kvm_msr: ['guest_wrmsr_system_time'],
  kvm_pvclock_update: ['kvm_guest_time_update'],
  kvm_write_tsc_offset: ['kvm_synchronize_tsc'],
  kvm_update_master_clock: ['pvclock_update_vm_gtod_copy'],
};

/** Answers SYNC_PORT: reads what the guest stored and takes KVM_GET_CLOCK while the guest waits. */
class SyncPort implements PortDevice {
  readonly samples: KvmclockSample[] = [];
  constructor(
    private readonly m: LiveMachine,
    private readonly tscOffset: bigint,
  ) {}
  portRead(): number {
    return 0;
  }
  portWrite(): void {
    const mem = this.m.vm.memory;
    const r = MB.result;
    // the guest's copy: version, tsc_timestamp, system_time, mul, shift|flags; pad it into record layout
    const rec = new Uint8Array(32);
    rec.set(mem.subarray(r, r + 4), 0);
    rec.set(mem.subarray(r + 4, r + 24), 8);
    rec.set(mem.subarray(r + 24, r + 26), 28);
    const record = decodePvclock(rec);
    const guestTsc = this.m.mailbox64(r + 32);
    const d = this.m.vm.getClock();
    this.samples.push({
      record,
      guestTsc,
      guestNs: pvclockReadCycles(record, guestTsc),
      getClock: d.clock,
      hostTsc: d.hostTsc,
      model: predictGetClock(record, d.hostTsc, { tscOffset: this.tscOffset }),
    });
  }
}

export async function kvmclockExperiment(o: {
  samples: number;
  trace?: boolean;
  cpuid?: (tscKhz: number) => CpuidPolicy;
}): Promise<KvmclockReport> {
  if (!Number.isInteger(o.samples) || o.samples < 1 || o.samples > 10_000)
    throw new InputError(`expected 1..10000 samples, got "${o.samples}"`, '--samples');
  const k = LiveKvm.open();
  let trace: HostTrace | null = null;
  try {
    trace = o.trace ? await HostTrace.start(probesFor('kvmclock', process.pid)) : null;
    const m = new LiveMachine(k, { guest: buildGuest('kvmclock'), params: [o.samples], ...(o.cpuid ? { cpuid: o.cpuid } : {}) });
    const tscKhz = m.vcpu.getTscKhz();
    const tscOffset = m.vcpu.tscOffset() ?? 0n;
    const sync = new SyncPort(m, tscOffset);
    m.ports.map(SYNC_PORT, 1, sync);
    m.start();
    await m.waitForLine(/^kvmclock done$/, 10_000 + o.samples * 10);
    await m.stop();
    k.close();
    const tc = trace ? await trace.stop() : null;
    trace = null;
    const twin = simulateKvmclock(tscKhz);
    const keys = Object.keys(KVMCLOCK_TRACE_ALIASES);
    // trace_kvm_pvclock_update sits in kvm_setup_guest_pvclock, which runs only once the guest has
    // enabled kvmclock: the model's kvm_guest_time_update with no record written (version 0) is not it
    const written = twin.events.recorded.filter((e) => !(e.name === 'kvm_guest_time_update' && e.args?.version === 0));
    const tw = twinCounts(written, keys, KVMCLOCK_TRACE_ALIASES);
    return {
      tscKhz,
      tscOffset,
      samples: sync.samples,
      twin: { ...twin.record, ...(tc ? { traceCounts: Object.fromEntries(tw) } : {}) },
      live: tc ? { traceCounts: Object.fromEntries(tc.counts) } : {},
      ...(tc ? { trace: { note: tc.note, host: formatCounts(tc.counts), twin: formatCounts(tw) } } : {}),
    };
  } finally {
    trace?.kill();
    k.close();
  }
}

/** The twin: the hypervisor model's vCPU at tsc_khz; the guest writes the system-time MSR and runs. */
export function simulateKvmclock(tscKhz: number): {
  record: { tscToSystemMul: number; tscShift: number; flags: number };
  events: TraceRecorder;
} {
  const trace = new TraceRecorder({ enabled: true });
  let tsc = 1_000_000_000_000n;
  const host = new LinuxHostTimekeeper({ tscKhz, rdtsc: () => tsc });
  const memory = new FlatGuestMemory(0x10000);
  const vm = new KvmVm({ host, memory, trace });
  const vcpu = vm.createVcpu();
  vcpu.run(0); // the first entry, before the guest has touched any MSR
  trace.instant(0n, 'twin/vcpu0', 'guest_wrmsr_system_time');
  vcpu.setMsr(MSR_KVM_SYSTEM_TIME_NEW, BigInt(PVCLOCK_GPA) | 1n, false);
  tsc += 1_000_000n;
  vcpu.run(0);
  const rec = decodePvclock(memory.read(BigInt(PVCLOCK_GPA), 32));
  return { record: { tscToSystemMul: rec.tscToSystemMul, tscShift: rec.tscShift, flags: rec.flags }, events: trace };
}
