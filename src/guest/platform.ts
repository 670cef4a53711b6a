// What a guest kernel can see of its machine: CPUID leaves, the timer devices the VMM put on its
// buses, the counters it can read, and the paravirtual records KVM writes into its memory. The
// guest model touches nothing else (docs/architecture.md: the guest sees the hypervisor only through CPUID,
// MSRs, ports/MMIO, shared memory and interrupts). The vmm layer builds one per VM.
import type { Cycles, Ns, TscPlan } from '../core/index.ts';
import type { PvclockMemory } from './pvclock.ts';

export type CpuVendor = 'intel' | 'amd';

export interface GuestCpuid {
  vendor: CpuVendor;
  /** CPUID.1:EDX bit 4. */
  tsc: boolean;
  /** CPUID.1:ECX bit 24 (tsc_deadline_timer). */
  tscDeadlineTimer: boolean;
  /** CPUID.1:ECX bit 31: running under a hypervisor. */
  hypervisor: boolean;
  /** CPUID.0x80000007:EDX bit 8. Linux sets constant_tsc and nonstop_tsc from it (init_amd/init_intel). */
  invariantTsc: boolean;
  /** CPUID.7.0:EBX bit 1 (tsc_adjust). */
  tscAdjust: boolean;
  /** CPUID.6:EAX bit 2 (arat): the APIC timer keeps running in deep C-states. KVM always offers it
   *  (arch/x86/kvm/cpuid.c, leaf 6: "allow ARAT"); absent means not offered. */
  arat?: boolean;
  /** CPUID 0x15 (Intel): TSC/crystal ratio and crystal Hz; absent when the leaf is not offered. */
  leaf15?: { denominator: number; numerator: number; crystalHz: number };
  /** CPUID 0x16 EAX: processor base frequency in MHz (Intel). */
  leaf16BaseMhz?: number;
  /**
   * The PVM paravirtual interface (kvm-pvm, "Pagetable-based Virtual Machine"): the guest kernel runs at
   * hardware CPL3 and pvm_detect() finds the KVM signature through PVM's synthetic CPUID, so the kernel
   * registers the "PVM" hypervisor. tscKhz is what MSR 0x4b564d13 answers: the vCPU's virtual_tsc_khz,
   * else the host kernel's tsc_khz (read from kvm-pvm's pvm_get_msr on this workplace's 6.18 kernel).
   */
  pvm?: { tscKhz: number };
  /** The KVM leaves, when the VMM exposes them (0x40000000 "KVMKVMKVM"). */
  kvm?: {
    /** 0x40000001 EAX feature bits (KVM_FEATURE_*). */
    features: number;
    /** 0x40000010 EAX: TSC frequency in kHz (QEMU's vmware-cpuid-freq, Cloud Hypervisor); 0 if absent. */
    tscKhz: number;
    /** 0x40000010 EBX: LAPIC bus frequency in kHz. */
    apicBusKhz: number;
  };
}

export interface GuestDevices {
  /** i8254 PIT on ports 0x40-0x43; speakerPort: port 0x61 (channel-2 gate and OUT2) is emulated. */
  pit: { speakerPort: boolean } | null;
  /** HPET at 0xfed00000: counter period (fs), comparators, width, the ACPI HPET table's event timer
   *  block id, and the IRQs its timers are routed to. */
  hpet: { periodFs: number; comparators: number; counter64: boolean; id: number; irqs: number[] } | null;
  /** ACPI tables present; pmTimer: the FADT names a PM timer block (not HW-reduced); hpetTable: where the
   *  firmware put the HPET table and its header, when known (acpi_table_print and the reservation lines). */
  acpi: { pmTimer: boolean; pmTimerPort: number; hpetTable?: AcpiTableHeader } | null;
  /** MC146818 CMOS RTC on ports 0x70/0x71. */
  rtc: boolean;
  /** The rtc_cmos device name Linux gives it: a PNP id ("00:04") with ACPI, else "rtc_cmos". */
  rtcPnpName?: string;
  /** The CMOS RTC as the rtc_cmos driver probes it through ACPI PNP, when known: then the model prints the
   *  driver's whole probe (rtc-cmos.ts) instead of the hctosys line alone. */
  rtcCmos?: RtcCmosDevice;
  /** IO-APIC pin the firmware's MADT (interrupt source override) or MP table wires ISA IRQ0 to;
   *  absent where the model does not know the VMM's tables. */
  ioapicIrq0Pin?: number;
  /** Local APIC (in-kernel irqchip). */
  lapic: boolean;
}

/** An ACPI table's header as acpi_tb_print_table_header prints it. */
export interface AcpiTableHeader {
  /** Guest-physical address of the table. */
  address: number;
  length: number;
  revision: number;
  oemId: string;
  oemTableId: string;
  oemRevision: number;
  creatorId: string;
  creatorRevision: number;
}

/** The CMOS RTC's ACPI description (PNP0B00 and the FADT's RTC fields) as drivers/rtc/rtc-cmos.c reads it. */
export interface RtcCmosDevice {
  /** The PNP device name pnpacpi gave it ("00:05"): its place among the ACPI PNP devices. */
  pnpName: string;
  /** FADT flags: ACPI_FADT_S4_RTC_WAKE. */
  s4RtcWake: boolean;
  /** FADT century register index nonzero ("y3k"). */
  century: boolean;
  /** FADT day_alarm / month_alarm register indexes nonzero. */
  dayAlarm: boolean;
  monthAlarm: boolean;
  /** NVRAM bytes the driver exports: the CMOS address space − NVRAM_OFFSET (14). */
  nvramBytes: number;
}

/** Wall time the CMOS RTC shows, as Linux's mc146818_get_time reads it (whole seconds, UIP state). */
export interface CmosReading {
  /** RTC seconds since the epoch at the moment of the read. */
  seconds: bigint;
  /** ns until the UIP bit clears when it is set now, else 0n. */
  uipWaitNs: Ns;
}

/** What a guest kernel does to program its tick device and take its interrupts. */
export interface GuestInterrupts {
  /** OUT to an I/O port (exits): how drivers/clocksource/i8253.c programs the PIT. */
  outb(port: number, value: number): void;
  /** 32-bit MMIO read and write (exits): hpet_readl / hpet_writel (arch/x86/kernel/hpet.c). Absent: no HPET wired. */
  mmioRead?(addr: bigint): bigint;
  mmioWrite?(addr: bigint, value: bigint): void;
  /** WRMSR of IA32_TSC_DEADLINE or an x2APIC timer register on vCPU `cpu` (arch/x86/kernel/apic/apic.c). */
  wrmsrApic(cpu: number, msr: number, value: bigint): void;
  /** The guest's interrupt entry (its IDT: common_interrupt, sysvec_apic_timer_interrupt). */
  setHandler(handler: (cpu: number, vector: number) => void): void;
  /** apic_eoi(): end of the interrupt `vector` on `cpu` (KVM runs its ack notifiers: kvm_pit_ack_irq). */
  eoi(cpu: number, vector: number): void;
  /** HLT on an idle vCPU (default_idle): it blocks in the hypervisor until an interrupt. */
  hlt(cpu: number): void;
}

export interface GuestPlatform {
  cpuid: GuestCpuid;
  devices: GuestDevices;
  vcpus: number;
  /** Guest TSC now: RDTSC on vCPU `cpu` (default 0); vCPUs can differ (unsynchronised host TSCs). */
  rdtsc(cpu?: number): Cycles;
  /** rdtsc() on vCPU 0 as a formula of true time while nothing but time moves (null or absent: not one). */
  rdtscPlan?(): TscPlan | null;
  /**
   * Cost in ns of one RDTSC as the guest pays it, when it is not the native ~10 ns: a VMM with RDTSC
   * exiting makes each one a VM exit. `compensated`: the VMM hides the exit from the guest TSC.
   */
  rdtscExit?: { costNs: number; compensated: boolean };
  /** The TSC's true rate in Hz (what a perfect reference would measure). */
  tscTrueHz(): number;
  /** HPET main counter (low 32 bits as hpet_readl reads) and its true rate. */
  readHpet?(): bigint;
  /** ACPI PM timer (24-bit) and its true rate, 3.579545 MHz nominal. */
  readPmTimer?(): bigint;
  /** True rate of the PIT input clock relative to nominal 1.193182 MHz (1 = exact). */
  pitRateRatio: number;
  /** Cost in ns of one port read that exits to the hypervisor (PIT, PM timer), as the guest sees it. */
  pioReadNs: number;
  /** Cost in ns of one MMIO read that exits (HPET). */
  mmioReadNs: number;
  /** Guest RAM, where the kernel places its pvclock, wall-clock and steal-time records. */
  memory?: PvclockMemory;
  /** WRMSR on vCPU `cpu` (exits to KVM, which handles it and re-enters the guest). */
  wrmsr?(cpu: number, index: number, value: bigint): void;
  /**
   * VMCALL/VMMCALL on vCPU `cpu` (kvm_hypercall2: nr in RAX, a0 in RBX, a1 in RCX): KVM handles it
   * in the kernel and re-enters; the result is RAX (0 or a negative KVM error). Absent: not a KVM guest.
   */
  hypercall?(cpu: number, nr: number, a0: bigint, a1: bigint): number;
  /** Whether vCPU `cpu`'s thread is running on the host now (an interrupt can be taken). */
  vcpuRunning?(cpu: number): boolean;
  /** When vCPU `cpu` next runs (absolute scheduler time), while it is descheduled. */
  nextVcpuRun?(cpu: number): Ns;
  /** Whether vCPU `cpu` runs at every instant from now until the next scheduler event (absent with
   *  vcpuRunning present: it may wait), so work on it can be advanced analytically. */
  vcpuAlwaysRuns?(cpu: number): boolean;
  /** The CMOS RTC as Linux reads it at boot. */
  readCmos?(): CmosReading;
  /** The interrupt path the VMM wired from the timer devices to the vCPUs; absent: the tick is a side timer. */
  interrupts?: GuestInterrupts;
  /** Once the tick is one-shot, run update_wall_time at the programmed expiry, not through `interrupts`. */
  directOneshotTick?: boolean;
  /**
   * The VMM's promise that lets the guest advance periodic work analytically (the clocksource
   * watchdog): between two scheduler events every counter above (TSC, the pvclock record's reading,
   * HPET, PM timer) is an affine function of scheduler time up to a few counts of rounding, and this
   * number changes whenever the VMM changes a counter's rate or value (pause, resume, a TSC rate
   * change). Absent: such work runs event by event.
   */
  counterEpoch?(): number;
  /**
   * The VMM's periodic vCPU entries in a quiet span (see QuietScheduler): the guest, about to run its
   * own periodic updates every `intervalNs` from `next` on, asks how long nothing but the two happens.
   * Absent or null: event by event.
   */
  quietEntries?(next: Ns, intervalNs: Ns): QuietEntries | null;
}

/** The VMM's vCPU entries while the guest runs a quiet span itself (GuestPlatform.quietEntries). */
export interface QuietEntries {
  /** No event but the entries and the guest's updates comes before this time. */
  readonly until: Ns;
  /** The guest takes the span: the VMM stops its entry timer. */
  begin(): void;
  /** The guest has moved time to its last update: the VMM runs its entries due before `until`, as
   *  their expiries would have (they change nothing the updates read), and re-arms its timer and,
   *  through `rearmUpdates`, the guest's, in the order their expiries would have re-armed them. */
  end(rearmUpdates: () => void): void;
}
