// The guest's ptp_kvm PHC (/dev/ptp0, "KVM virtual PTP"): drivers/ptp/ptp_kvm_x86.c and
// ptp_kvm_common.c, with the three PHC reading ioctls of drivers/ptp/ptp_chardev.c as chronyd issues them.
//
// Every read is the KVM_HC_CLOCK_PAIRING hypercall: the host answers with its CLOCK_REALTIME and the
// guest TSC at the same instant (src/hypervisor/clock-pairing.ts).
// - gettime64 (ptp_kvm_gettime → kvm_arch_ptp_get_clock): the host's REALTIME only. PTP_SYS_OFFSET
//   brackets each call between two reads of the guest's CLOCK_REALTIME, so a reading carries the
//   hypercall's round trip as its delay and the asymmetry of that trip as its error.
// - getcrosststamp (ptp_kvm_get_time_fn → kvm_arch_ptp_get_crosststamp): cycles = kvm-clock read at the
//   pairing's TSC (__pvclock_read_cycles), cs_id CSID_X86_KVM_CLK; get_device_system_crosststamp
//   (kernel/time/timekeeping.c) turns the cycles into the guest's CLOCK_REALTIME — only when the
//   current clocksource is kvm-clock, else -ENODEV. PTP_SYS_OFFSET_PRECISE: an exact pair.
// - gettimex64 is not implemented by ptp_kvm: PTP_SYS_OFFSET_EXTENDED is -EOPNOTSUPP.
import type { Ns } from '../core/index.ts';
import { decodePvclock, NSEC_PER_SEC, PVCLOCK_VCPU_TIME_INFO_SIZE, pvclockReadCycles } from '../core/index.ts';
import type { KvmclockSetup } from './kvmclock.ts';
import { HV_CLOCK_GPA } from './kvmclock.ts';
import type { GuestPlatform } from './platform.ts';

/** include/uapi/linux/kvm_para.h (the guest sees these numbers in RAX). */
export const KVM_HC_CLOCK_PAIRING = 9;
export const KVM_CLOCK_PAIRING_WALLCLOCK = 0;
const KVM_ENOSYS = 1000;
/** Where this model's guest kernel keeps its struct kvm_clock_pairing (clock_pair_glbl). */
export const CLOCK_PAIR_GPA = 0x10_3000n;

/**
 * Model costs of one gettime64 (not measured here): the guest's CLOCK_REALTIME read before the
 * hypercall to the host's read of its clock (VM exit and kvm_emulate_hypercall dispatch), and from
 * there to the guest's next CLOCK_REALTIME read (the write of the pairing, VM entry, the spinlock).
 * A round trip of 1 µs with the host's read 100 ns after its middle: PTP_SYS_OFFSET readings then
 * have 1 µs delay and sit 100 ns off; PTP_SYS_OFFSET_PRECISE has neither.
 */
export const HYPERCALL_EXIT_NS = 600n;
export const HYPERCALL_RETURN_NS = 400n;

export type PtpError = 'ENODEV' | 'EOPNOTSUPP';

/** What ptp_kvm reads of the guest kernel. */
export interface PtpKvmGuest {
  platform: GuestPlatform;
  /** kvmclock's setup (pvclock_get_pvti_cpu0_va() is non-null only when kvm-clock registered). */
  kvmclock: KvmclockSetup | null;
  currentClocksource(): string;
  /** The guest's CLOCK_REALTIME now. */
  clockGettime(id: 'realtime'): Ns;
}

export interface PtpKvmOptions {
  exitNs?: Ns;
  returnNs?: Ns;
}

/** One reading: [system time before, PHC time, system time after] (chrony's tss[i][0..2]). */
export type PhcReading = [Ns, Ns, Ns];

export class PtpKvm {
  readonly exitNs: Ns;
  readonly returnNs: Ns;
  /** Hypercalls made (each gettime or crosststamp is one). */
  hypercalls = 0;

  private constructor(
    private readonly g: PtpKvmGuest,
    o: PtpKvmOptions,
  ) {
    this.exitNs = o.exitNs ?? HYPERCALL_EXIT_NS;
    this.returnNs = o.returnNs ?? HYPERCALL_RETURN_NS;
  }

  /**
   * ptp_kvm_init → kvm_arch_ptp_init: needs kvm_para_available() and kvm-clock's per-CPU record; the
   * first hypercall decides (-KVM_ENOSYS: ENODEV; -KVM_EOPNOTSUPP, e.g. a host not on the TSC
   * clocksource: the module fails to load quietly). No /dev/ptp0 then.
   */
  static probe(g: PtpKvmGuest, o: PtpKvmOptions = {}): PtpKvm | PtpError {
    const p = g.platform;
    if (!p.cpuid.kvm || !p.hypercall || !p.memory || !g.kvmclock) return 'ENODEV';
    const ret = p.hypercall(0, KVM_HC_CLOCK_PAIRING, CLOCK_PAIR_GPA, BigInt(KVM_CLOCK_PAIRING_WALLCLOCK));
    if (ret === -KVM_ENOSYS) return 'ENODEV';
    if (ret !== 0) return 'EOPNOTSUPP';
    return new PtpKvm(g, o);
  }

  /** One KVM_HC_CLOCK_PAIRING on vCPU 0: the pairing KVM wrote, or null on an error return. */
  private pairing(): { realtime: Ns; tsc: bigint } | null {
    const p = this.g.platform;
    this.hypercalls++;
    const ret = p.hypercall!(0, KVM_HC_CLOCK_PAIRING, CLOCK_PAIR_GPA, BigInt(KVM_CLOCK_PAIRING_WALLCLOCK));
    if (ret !== 0) return null; // pr_err_ratelimited("clock offset hypercall ret %lu")
    const b = p.memory!.read(CLOCK_PAIR_GPA, 24);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return { realtime: v.getBigInt64(0, true) * NSEC_PER_SEC + v.getBigInt64(8, true), tsc: v.getBigUint64(16, true) };
  }

  /** ptp_kvm_gettime: the host's CLOCK_REALTIME at the hypercall. */
  gettime(): Ns | PtpError {
    const r = this.pairing();
    return r ? r.realtime : 'EOPNOTSUPP';
  }

  /**
   * ptp_kvm_getcrosststamp → get_device_system_crosststamp: {device, sys_realtime} from one pairing.
   * The pvclock record is read around the hypercall (pvclock_read_begin/retry: nothing rewrites it
   * meanwhile in the model).
   */
  getcrosststamp(): { device: Ns; sysRealtime: Ns } | PtpError {
    const r = this.pairing();
    if (!r) return 'EOPNOTSUPP';
    const rec = decodePvclock(this.g.platform.memory!.read(HV_CLOCK_GPA, PVCLOCK_VCPU_TIME_INFO_SIZE));
    const cycles = pvclockReadCycles(rec, r.tsc);
    if (this.g.currentClocksource().trim() !== 'kvm-clock') return 'ENODEV'; // cs_id != tk clocksource id
    // cycles are kvm-clock's reading at the pairing, which is now: REALTIME at those cycles is the
    // timekeeper's REALTIME now, moved by the (zero, in the model) kvm-clock ns between them
    const sysRealtime = this.g.clockGettime('realtime') + (cycles - this.g.kvmclock!.read());
    return { device: r.realtime, sysRealtime };
  }

  /** PTP_SYS_OFFSET_PRECISE (ptp_chardev.c): one crosststamp. */
  sysOffsetPrecise(): PhcReading | PtpError {
    const x = this.getcrosststamp();
    if (typeof x === 'string') return x;
    return [x.sysRealtime, x.device, x.sysRealtime];
  }

  /** PTP_SYS_OFFSET_EXTENDED: needs gettimex64, which ptp_kvm lacks. */
  sysOffsetExtended(): PtpError {
    return 'EOPNOTSUPP';
  }

  /**
   * PTP_SYS_OFFSET with n samples: system time, PHC time, system time, … — reading i is
   * (sys[i], phc[i], sys[i+1]). The model makes every hypercall at its scheduler's one instant and dates
   * the reading back so that it ends now: the guest's REALTIME exitNs + returnNs ago, the host's REALTIME
   * returnNs ago (it advances at the true rate: the host is NTP-synced), the guest's REALTIME now.
   */
  sysOffset(n: number): PhcReading[] | PtpError {
    const sys = this.g.clockGettime('realtime');
    // the n hypercalls of one instant answer alike: make one, count n
    const phc = this.gettime();
    if (typeof phc === 'string') return phc;
    this.hypercalls += n - 1;
    const reading: PhcReading = [sys - this.exitNs - this.returnNs, phc - this.returnNs, sys];
    return Array.from({ length: n }, () => [...reading] as PhcReading);
  }
}
