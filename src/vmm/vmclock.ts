// The VMClock device as the VMMs that have one keep it (a page of guest memory, struct vmclock_abi):
//   QEMU (hw/acpi/vmclock.c): counter_id INVALID, status UNKNOWN; vmclock_update_guest bumps
//     disruption_marker under the seqcount at realize and in post_load (every restore or incoming migration).
//   Firecracker (src/vmm/src/devices/acpi/vmclock.rs): flags VM_GEN_COUNTER_PRESENT | NOTIFICATION_PRESENT;
//     do_post_restore bumps disruption_marker and vm_generation_counter, then interrupts the guest.
// Neither fills the counter→time fields; `precise` models a host that does (publishing the guest TSC's
// relation to its NTP-disciplined UTC each second, with stated error bounds), as the ABI allows.
import type { Scheduler, Timer } from '../core/index.ts';
import type { Cycles, Ns } from '../core/index.ts';
import { NSEC_PER_SEC } from '../core/index.ts';
import {
  decodeVmclock,
  encodeVmclock,
  VMCLOCK_ABI_BYTES,
  VMCLOCK_COUNTER_INVALID,
  VMCLOCK_COUNTER_X86_TSC,
  VMCLOCK_FLAG_NOTIFICATION_PRESENT,
  VMCLOCK_FLAG_TIME_ESTERROR_VALID,
  VMCLOCK_FLAG_TIME_MAXERROR_VALID,
  VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT,
  VMCLOCK_MAGIC,
  VMCLOCK_SIZE,
  VMCLOCK_STATUS_SYNCHRONIZED,
  VMCLOCK_STATUS_UNKNOWN,
  VMCLOCK_TIME_UTC,
  type VmclockRecord,
} from '../core/index.ts';
import type { GuestMemory } from '../hypervisor/index.ts';

export type VmclockFlavor = 'qemu' | 'firecracker';

/** Which VMClock the profile's VMM has, or null (Cloud Hypervisor, kvmtool and QEMU TCG here have none). */
export function vmclockFlavor(profile: string): VmclockFlavor | null {
  if (profile === 'qemu-kvm' || profile === 'qemu-kvm-noinvtsc') return 'qemu';
  if (profile === 'firecracker' || profile === 'firecracker-pvm') return 'firecracker';
  return null;
}

export interface VmclockPrecise {
  /** The guest's TSC now, and its true rate (Hz) as the host's NTP knows it. */
  guestTsc: () => Cycles;
  guestTscHz: () => number;
  /** True UTC now (the host's NTP-disciplined clock), ns since the epoch. */
  utcNow: () => Ns;
  esterrorNs: bigint;
  maxerrorNs: bigint;
}

/** The unit of counter_period_frac_sec is 2^-(64 + shift) s; 8 bits keep ~2^-72 s per cycle. */
const PERIOD_SHIFT = 8;

export class VmclockDevice {
  private rec: VmclockRecord;
  private readonly timer: Timer | null;

  constructor(
    private readonly memory: GuestMemory,
    readonly gpa: bigint,
    readonly flavor: VmclockFlavor,
    scheduler: Scheduler,
    private readonly precise: VmclockPrecise | null = null,
  ) {
    this.rec = {
      magic: VMCLOCK_MAGIC,
      size: VMCLOCK_SIZE,
      version: 1,
      counterId: precise ? VMCLOCK_COUNTER_X86_TSC : VMCLOCK_COUNTER_INVALID,
      timeType: VMCLOCK_TIME_UTC,
      seqCount: 0,
      disruptionMarker: 0n,
      flags: flavor === 'firecracker' ? VMCLOCK_FLAG_VM_GEN_COUNTER_PRESENT | VMCLOCK_FLAG_NOTIFICATION_PRESENT : 0n,
      clockStatus: VMCLOCK_STATUS_UNKNOWN,
      counterPeriodShift: 0,
      counterValue: 0n,
      counterPeriodFracSec: 0n,
      timeSec: 0n,
      timeFracSec: 0n,
      timeEsterrorNanosec: 0n,
      timeMaxerrorNanosec: 0n,
      vmGenerationCounter: 0n,
    };
    this.write();
    if (flavor === 'qemu') this.update((r) => r.disruptionMarker++); // vmclock_realize → vmclock_update_guest
    this.timer = precise ? scheduler.timer(() => this.publish()) : null;
    if (precise) this.publish();
  }

  /** What the guest reads (after its seqcount loop: the device writes whole updates between events). */
  read(): VmclockRecord {
    return decodeVmclock(this.memory.read(this.gpa, VMCLOCK_ABI_BYTES));
  }

  /** After a restore from a snapshot or an incoming migration, as each VMM's post-load does. */
  postLoad(kind: 'restore' | 'migration'): void {
    this.update((r) => {
      r.disruptionMarker++;
      if (this.flavor === 'firecracker' && kind === 'restore') r.vmGenerationCounter++;
    });
    if (this.precise) this.publish();
  }

  /** Stop publishing (the VM is stopped or gone); publishing restarts at the next postLoad or resume. */
  pause(): void {
    this.timer?.cancel();
  }

  resume(): void {
    if (this.precise) this.publish();
  }

  /** The host's relation of the guest TSC to UTC, now, republished each second. */
  private publish(): void {
    const p = this.precise!;
    this.update((r) => {
      const utc = p.utcNow();
      r.counterValue = p.guestTsc();
      r.counterPeriodShift = PERIOD_SHIFT;
      r.counterPeriodFracSec = (1n << BigInt(64 + PERIOD_SHIFT)) / BigInt(Math.round(p.guestTscHz()));
      r.timeSec = utc / NSEC_PER_SEC;
      r.timeFracSec = ((utc % NSEC_PER_SEC) << 64n) / NSEC_PER_SEC;
      r.timeEsterrorNanosec = p.esterrorNs;
      r.timeMaxerrorNanosec = p.maxerrorNs;
      r.clockStatus = VMCLOCK_STATUS_SYNCHRONIZED;
      r.flags |= VMCLOCK_FLAG_TIME_ESTERROR_VALID | VMCLOCK_FLAG_TIME_MAXERROR_VALID;
    });
    this.timer!.armIn(NSEC_PER_SEC);
  }

  /** seq_count odd, the change, seq_count even — the order both VMMs write in. */
  private update(change: (r: VmclockRecord) => void): void {
    this.rec.seqCount = (this.rec.seqCount | 1) >>> 0;
    this.write();
    change(this.rec);
    this.rec.seqCount = (this.rec.seqCount + 1) >>> 0;
    this.write();
  }

  private write(): void {
    this.memory.write(this.gpa, encodeVmclock(this.rec));
  }
}
