// Machine profiles: what each VMM offers a guest — CPUID leaves (including KVM's paravirt leaves),
// timer devices, the kernel arguments it adds, and the cost of a trapped port/MMIO read — taken from
// each project's sources (cited per profile; table in docs/fidelity.md ## vmm).
import type { KvmClockFeatures } from '../hypervisor/index.ts';
import { InputError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import type { CpuVendor, GuestCpuid, GuestDevices } from '../guest/index.ts';

/** The host CPU as far as a guest can be shown it. */
export interface HostCpu {
  vendor: CpuVendor;
  /** The host kernel's tsc_khz (what KVM scales kvmclock and 0x40000010 from). */
  tscKhz: number;
  /** Host oscillator error: the TSC's true rate is tscKhz * (1 + ppm/1e6). */
  ppm: number;
  invariantTsc: boolean;
  tscAdjust: boolean;
  tscDeadline: boolean;
  /** The host kernel's KVM clock behaviours (hosts[].kvm; default mainline): src/hypervisor KvmClockFeatures. */
  kvm?: KvmClockFeatures;
}

/** This project's recorded kvm-pvm host (AMD EPYC, 2,596,136 kHz, invariant TSC). */
export const DEFAULT_HOST: HostCpu = { vendor: 'amd', tscKhz: 2_596_136, ppm: 0, invariantTsc: true, tscAdjust: true, tscDeadline: true };

// KVM_FEATURE_* bit numbers (arch/x86/include/uapi/asm/kvm_para.h)
const F = {
  CLOCKSOURCE: 0,
  NOP_IO_DELAY: 1,
  CLOCKSOURCE2: 3,
  ASYNC_PF: 4,
  STEAL_TIME: 5,
  PV_EOI: 6,
  PV_UNHALT: 7,
  PV_TLB_FLUSH: 9,
  ASYNC_PF_VMEXIT: 10,
  PV_SEND_IPI: 11,
  POLL_CONTROL: 12,
  PV_SCHED_YIELD: 13,
  ASYNC_PF_INT: 14,
  MSI_EXT_DEST_ID: 15,
  STABLE_BIT: 24,
} as const;
const bits = (...b: number[]): number => b.reduce((a, x) => (a | (1 << x)) >>> 0, 0);

/** What KVM_GET_SUPPORTED_CPUID reports in 0x40000001 EAX on a current host (arch/x86/kvm/cpuid.c). */
export const KVM_SUPPORTED_FEATURES = bits(
  F.CLOCKSOURCE,
  F.NOP_IO_DELAY,
  F.CLOCKSOURCE2,
  F.ASYNC_PF,
  F.STEAL_TIME,
  F.PV_EOI,
  F.PV_UNHALT,
  F.PV_TLB_FLUSH,
  F.ASYNC_PF_VMEXIT,
  F.PV_SEND_IPI,
  F.POLL_CONTROL,
  F.PV_SCHED_YIELD,
  F.ASYNC_PF_INT,
  F.MSI_EXT_DEST_ID,
  F.STABLE_BIT,
);

/** QEMU's default KVM paravirt features (target/i386/kvm/kvm-cpu.c kvm_default_props). */
export const QEMU_KVM_FEATURES = bits(
  F.CLOCKSOURCE,
  F.NOP_IO_DELAY,
  F.CLOCKSOURCE2,
  F.ASYNC_PF,
  F.STEAL_TIME,
  F.PV_EOI,
  F.PV_UNHALT,
  F.STABLE_BIT,
);

export interface MachineProfile {
  name: string;
  description: string;
  /** The invocation this profile stands for. */
  command: string;
  /** Source files the profile is taken from. */
  sources: string[];
  accel: 'kvm' | 'tcg';
  defaultVcpus: number;
  /** Kernel arguments the VMM itself puts before the user's. */
  vmmCmdline: string;
  cpuid(host: HostCpu): GuestCpuid;
  devices: GuestDevices;
  /** Guest-visible cost of a port read that exits (ns). */
  pioReadNs: number;
  /** Guest-visible cost of an MMIO read that exits to userspace (ns). */
  mmioReadNs: number;
  /** Model time from VM creation to kernel entry (kvmclock already counts). */
  vmToKernelNs: Ns;
  /**
   * The VM runs on kvm-pvm (PVM): the guest kernel runs at hardware CPL3, RDTSC is not offset or scaled
   * (pvm_write_tsc_offset drops KVM's offset), and the guest sees the PVM interface (GuestCpuid.pvm).
   */
  kvmPvm?: boolean;
}

const QEMU_PC_DEVICES: GuestDevices = {
  pit: { speakerPort: true }, // hw/timer/i8254 (in-kernel under KVM) + hw/audio/pcspk.c on port 0x61
  // hw/timer/hpet.c: HPET_CLK_PERIOD 10 ns, 3 timers, capabilities id 0x8086a201; IRQs 2, 8, 0 as Linux routes them
  hpet: { periodFs: 10_000_000, comparators: 3, counter64: true, id: 0x8086a201, irqs: [2, 8, 0] },
  acpi: { pmTimer: true, pmTimerPort: 0x608 }, // hw/acpi/piix4.c (PM base 0x600) + hw/acpi/core.c acpi_pm_tmr
  rtc: true, // hw/rtc/mc146818rtc.c
  rtcPnpName: '00:04',
  // hw/i386/acpi-common.c build_madt: interrupt source override IRQ0 → GSI 2 (SeaBIOS's MP table agrees)
  ioapicIrq0Pin: 2,
  lapic: true,
};

const qemuKvm = (invtsc: boolean): MachineProfile => ({
  name: invtsc ? 'qemu-kvm' : 'qemu-kvm-noinvtsc',
  description: invtsc
    ? 'QEMU pc machine under KVM, -cpu host with invariant TSC exposed (+invtsc): kvmclock, PIT, RTC, HPET, ACPI PM'
    : 'QEMU pc machine under KVM, -cpu host (invtsc filtered as unmigratable): kvmclock, PIT, RTC, HPET, ACPI PM',
  command: invtsc ? 'qemu-system-x86_64 -machine pc -accel kvm -cpu host,+invtsc' : 'qemu-system-x86_64 -machine pc -accel kvm -cpu host',
  sources: [
    'qemu target/i386/kvm/kvm-cpu.c (kvm_default_props: kvmclock, kvm-steal-time, kvmclock-stable-bit…)',
    'qemu target/i386/kvm/kvm.c kvm_arch_init_vcpu (0x40000010 TSC/APIC kHz when the TSC frequency is known and invtsc is on)',
    'qemu target/i386/cpu.c (invtsc is an unmigratable flag: filtered from -cpu host unless asked for)',
    'qemu hw/i386/pc.c, hw/timer/hpet.c, hw/acpi/piix4.c, hw/rtc/mc146818rtc.c, hw/audio/pcspk.c',
  ],
  accel: 'kvm',
  defaultVcpus: 1,
  vmmCmdline: '',
  cpuid: (h) => ({
    vendor: h.vendor,
    tsc: true,
    tscDeadlineTimer: h.tscDeadline,
    hypervisor: true,
    invariantTsc: invtsc && h.invariantTsc,
    tscAdjust: h.tscAdjust,
    arat: true, // -cpu host: KVM_GET_SUPPORTED_CPUID leaf 6 EAX = 0x4 (arch/x86/kvm/cpuid.c)
    kvm: {
      features: QEMU_KVM_FEATURES,
      tscKhz: invtsc && h.invariantTsc ? h.tscKhz : 0,
      apicBusKhz: invtsc && h.invariantTsc ? 1_000_000 : 0,
    },
  }),
  devices: QEMU_PC_DEVICES,
  pioReadNs: 2_500,
  mmioReadNs: 5_000,
  vmToKernelNs: 350_000_000n,
});

/**
 * What a VMM that passes KVM_GET_SUPPORTED_CPUID through shows (Firecracker's normalize, kvmtool): the host's
 * TSC features, ARAT (leaf 6 EAX = 0x4, arch/x86/kvm/cpuid.c) and KVM's leaves without a TSC frequency.
 */
function kvmSupportedCpuid(h: HostCpu): GuestCpuid {
  return {
    vendor: h.vendor,
    tsc: true,
    tscDeadlineTimer: h.tscDeadline,
    hypervisor: true,
    invariantTsc: h.invariantTsc,
    tscAdjust: h.tscAdjust,
    arat: true,
    kvm: { features: KVM_SUPPORTED_FEATURES, tscKhz: 0, apicBusKhz: 0 },
  };
}

/** Firecracker as a profile object, so the PVM variant below can start from it. */
const FIRECRACKER: MachineProfile = {
  name: 'firecracker',
  description:
    'Firecracker microVM: KVM leaves passed through, in-kernel PIT with speaker stub, no HPET, HW-reduced ACPI (no PM timer), no CMOS RTC',
  command: 'firecracker --config-file vm.json',
  sources: [
    'firecracker src/vmm/src/vstate/vm.rs (KVM_CREATE_PIT2 with KVM_PIT_SPEAKER_DUMMY, KVM_CREATE_IRQCHIP)',
    'firecracker src/vmm/src/cpu_config/x86_64/cpuid/ (normalize: KVM leaves and 0x80000007 invariant TSC from KVM_GET_SUPPORTED_CPUID)',
    'firecracker src/vmm/src/acpi/ (FADT with HW_REDUCED_ACPI: no PM timer block)',
    'firecracker src/vmm/src/vmm_config/boot_source.rs (DEFAULT_KERNEL_CMDLINE)',
    'this machine: dmesg/sysfs/cpuinfo recorded in test/fixtures/guest/firecracker-6.18/',
  ],
  accel: 'kvm',
  defaultVcpus: 2,
  vmmCmdline: 'reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd',
  cpuid: kvmSupportedCpuid,
  devices: { pit: { speakerPort: true }, hpet: null, acpi: { pmTimer: false, pmTimerPort: 0 }, rtc: false, lapic: true },
  pioReadNs: 2_500,
  mmioReadNs: 6_000,
  vmToKernelNs: 52_000_000n,
};

export const PROFILES: Record<string, MachineProfile> = {
  'qemu-kvm': qemuKvm(true),
  'qemu-kvm-noinvtsc': qemuKvm(false),
  'qemu-tcg': {
    name: 'qemu-tcg',
    description: 'QEMU pc machine under TCG, -cpu qemu64: no KVM leaves, no invariant TSC; PIT, RTC, HPET, ACPI PM',
    command: 'qemu-system-x86_64 -machine pc -accel tcg -cpu qemu64',
    sources: [
      'qemu target/i386/cpu.c (qemu64: AuthenticAMD, no invtsc, no tsc-deadline)',
      'qemu target/i386/tcg helper_rdtsc → cpu_get_tsc: guest TSC runs at the host TSC rate',
      'qemu hw/timer/i8254.c, hw/audio/pcspk.c, hw/timer/hpet.c, hw/acpi/core.c, hw/rtc/mc146818rtc.c',
    ],
    accel: 'tcg',
    defaultVcpus: 1,
    vmmCmdline: '',
    // qemu64 defines no CPUID leaf 6 features (no arat): the recorded Debian 12 TCG guest's cpuinfo has none
    cpuid: (_h) => ({
      vendor: 'amd',
      tsc: true,
      tscDeadlineTimer: false,
      hypervisor: true,
      invariantTsc: false,
      tscAdjust: false,
      arat: false,
    }),
    devices: QEMU_PC_DEVICES,
    pioReadNs: 1_500,
    mmioReadNs: 2_000,
    vmToKernelNs: 900_000_000n,
  },
  firecracker: FIRECRACKER,
  /**
   * Firecracker on kvm-pvm: the machines this project runs on that print "Hypervisor detected: PVM".
   * Firecracker's devices and KVM leaves as above (kvm-pvm's pvm_vcpu_after_set_cpuid leaves the KVM leaves,
   * leaf 6 and the TSC-deadline bit alone); the guest's TSC is the host's (no offset), and its TSC frequency
   * comes from MSR 0x4b564d13 (pvm_get_tsc_khz): the host's tsc_khz exactly, with TSC_KNOWN_FREQ and
   * TSC_RELIABLE. Assumed, not seen: that the PVM guest still registers kvm-clock from Firecracker's KVM
   * leaves (its pvm_init_platform is boot-only code, freed after boot; docs/fidelity.md ## vmm).
   */
  'firecracker-pvm': {
    ...FIRECRACKER,
    name: 'firecracker-pvm',
    description:
      'Firecracker microVM on kvm-pvm (PVM guest): KVM leaves passed through, TSC kHz from the PVM MSR (the host tsc_khz exactly), in-kernel PIT with speaker stub, no HPET, no PM timer, no CMOS RTC',
    command: 'firecracker --config-file vm.json   # on a host whose /dev/kvm is kvm-pvm',
    sources: [
      'firecracker sources as for the firecracker profile',
      'kvm-pvm arch/x86/kvm/pvm/pvm.c pvm_write_tsc_offset (guest TSC = host TSC), pvm_vcpu_create (no other TSC frequency)',
      "this workplace's 6.18 kernel (read from its text): pvm_get_tsc_khz reads MSR 0x4b564d13; kvm-pvm's pvm_get_msr answers virtual_tsc_khz, else tsc_khz",
      'virt-pvm/linux arch/x86/include/asm/pvm_para.h pvm_detect (CPL3 + KVM signature through PVM_SYNTHETIC_CPUID)',
    ],
    kvmPvm: true,
    // Firecracker sets no TSC frequency (KVM_SET_TSC_KHZ) at boot: virtual_tsc_khz is the host's
    cpuid: (h) => ({ ...FIRECRACKER.cpuid(h), pvm: { tscKhz: h.tscKhz } }),
  },
  'cloud-hypervisor': {
    name: 'cloud-hypervisor',
    description:
      'Cloud Hypervisor: KVM leaves plus 0x40000010 TSC kHz (with invariant TSC), in-kernel PIT with speaker stub, ACPI PM timer at 0x608, CMOS RTC, no HPET',
    command: 'cloud-hypervisor --kernel vmlinux --cpus boot=1',
    sources: [
      'cloud-hypervisor arch/src/x86_64/mod.rs (0x40000010 EAX = TSC kHz, EBX = 1000000 when the host TSC is invariant)',
      'cloud-hypervisor hypervisor/src/kvm/mod.rs (KVM_CREATE_PIT2 with KVM_PIT_SPEAKER_DUMMY)',
      'cloud-hypervisor devices/src/acpi.rs AcpiPmTimerDevice, vmm/src/device_manager.rs (PM timer at port 0x608)',
      'cloud-hypervisor devices/src/legacy/cmos.rs',
    ],
    accel: 'kvm',
    defaultVcpus: 1,
    vmmCmdline: '',
    cpuid: (h) => ({
      vendor: h.vendor,
      tsc: true,
      tscDeadlineTimer: h.tscDeadline,
      hypervisor: true,
      invariantTsc: h.invariantTsc,
      tscAdjust: h.tscAdjust,
      arat: true, // KVM_GET_SUPPORTED_CPUID leaf 6 EAX = 0x4, passed through (arch/x86/kvm/cpuid.c)
      kvm: { features: KVM_SUPPORTED_FEATURES, tscKhz: h.invariantTsc ? h.tscKhz : 0, apicBusKhz: h.invariantTsc ? 1_000_000 : 0 },
    }),
    devices: {
      pit: { speakerPort: true },
      hpet: null,
      acpi: { pmTimer: true, pmTimerPort: 0x608 },
      rtc: true,
      rtcPnpName: '00:00',
      lapic: true,
    },
    pioReadNs: 2_500,
    mmioReadNs: 6_000,
    vmToKernelNs: 60_000_000n,
  },
  kvmtool: {
    name: 'kvmtool',
    description:
      'kvmtool (lkvm run): KVM leaves passed through, in-kernel PIT created without the speaker port, no HPET, no ACPI ("noacpi"), CMOS RTC',
    command: 'lkvm run -k bzImage',
    sources: [
      'kvmtool x86/cpuid.c (KVM_GET_SUPPORTED_CPUID passed through; only hypervisor bit, EPB and PMU leaf filtered)',
      'kvmtool x86/kvm.c kvm__arch_init (KVM_CREATE_PIT2 with flags 0: no in-kernel port 0x61), kvm__arch_set_cmdline ("noapic noacpi pci=conf1 …")',
      'kvmtool x86/ioport.c (no handler for port 0x61; kvm__emulate_io ignores unhandled ports)',
      'kvmtool hw/rtc.c',
    ],
    accel: 'kvm',
    defaultVcpus: 1,
    vmmCmdline:
      'noapic noacpi pci=conf1 reboot=k panic=1 i8042.direct=1 i8042.dumbkbd=1 i8042.nopnp=1 console=ttyS0 earlyprintk=serial i8042.noaux=1',
    cpuid: kvmSupportedCpuid,
    devices: { pit: { speakerPort: false }, hpet: null, acpi: null, rtc: true, lapic: true },
    pioReadNs: 2_500,
    mmioReadNs: 6_000,
    vmToKernelNs: 40_000_000n,
  },
};

export function machineProfile(name: string, option = '--profile'): MachineProfile {
  const p = PROFILES[name];
  if (!p) throw new InputError(`unknown machine profile "${name}" (known: ${Object.keys(PROFILES).join(', ')})`, option);
  return p;
}
