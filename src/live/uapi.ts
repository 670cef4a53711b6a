// The parts of the KVM userspace ABI (include/uapi/linux/kvm.h, x86_64) that the live backend uses:
// struct sizes and field offsets, ioctl numbers built with the _IOC macros of
// include/uapi/asm-generic/ioctl.h, exit reasons, capabilities. test/live/uapi.test.ts compiles a C
// program against the system's <linux/kvm.h> and compares every value in `uapiTable()`.
// KVM_CLOCK_* flags are the hypervisor model's (hypervisor/kvm.ts) and are checked here too.
import { KVM_CLOCK_HOST_TSC, KVM_CLOCK_REALTIME, KVM_CLOCK_TSC_STABLE } from '../hypervisor/index.ts';

// --- include/uapi/asm-generic/ioctl.h ---
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
function ioc(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) >>> 0) + (size << 16) + (type << 8) + nr;
}
const KVMIO = 0xae;
const io = (nr: number) => ioc(IOC_NONE, KVMIO, nr, 0);
const ior = (nr: number, size: number) => ioc(IOC_READ, KVMIO, nr, size);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, KVMIO, nr, size);
const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, KVMIO, nr, size);

/** Struct layouts: size and byte offsets of the fields used. */
export const KVM_RUN_LAYOUT = {
  size: 2352,
  request_interrupt_window: 0,
  immediate_exit: 1,
  exit_reason: 8,
  io: 32,
  'io.direction': 32,
  'io.size': 33,
  'io.port': 34,
  'io.count': 36,
  'io.data_offset': 40,
  'fail_entry.hardware_entry_failure_reason': 32,
  'internal.suberror': 32,
  'mmio.phys_addr': 32,
  'mmio.data': 40,
  'mmio.len': 48,
  'mmio.is_write': 52,
} as const;
export const KVM_REGS_LAYOUT = { size: 144, rax: 0, rsp: 48, rip: 128, rflags: 136 } as const;
export const KVM_SEGMENT_LAYOUT = {
  size: 24,
  base: 0,
  limit: 8,
  selector: 12,
  type: 14,
  present: 15,
  dpl: 16,
  db: 17,
  s: 18,
  l: 19,
  g: 20,
} as const;
export const KVM_SREGS_LAYOUT = { size: 312, cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, cr0: 224, efer: 264 } as const;
export const KVM_MSRS_LAYOUT = { size: 8, nmsrs: 0, entries: 8 } as const;
export const KVM_MSR_ENTRY_LAYOUT = { size: 16, index: 0, data: 8 } as const;
export const KVM_CPUID2_LAYOUT = { size: 8, nent: 0, entries: 8 } as const;
export const KVM_CPUID_ENTRY2_LAYOUT = { size: 40, function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24 } as const;
export const KVM_CLOCK_DATA_LAYOUT = { size: 48, clock: 0, flags: 8, realtime: 16, host_tsc: 24 } as const;
export const KVM_USERSPACE_MEMORY_REGION_LAYOUT = {
  size: 32,
  slot: 0,
  flags: 4,
  guest_phys_addr: 8,
  memory_size: 16,
  userspace_addr: 24,
} as const;
export const KVM_PIT_CONFIG_LAYOUT = { size: 64, flags: 0 } as const;
export const KVM_DEVICE_ATTR_LAYOUT = { size: 24, group: 4, attr: 8, addr: 16 } as const;
export const KVM_PIT_CHANNEL_STATE_LAYOUT = { size: 24, count: 0, mode: 13, gate: 15, count_load_time: 16 } as const;
export const KVM_PIT_STATE2_LAYOUT = { size: 112, channels: 0, flags: 72 } as const;
export const KVM_IRQ_LEVEL_LAYOUT = { size: 8, irq: 0, level: 4 } as const;
export const KVM_REINJECT_CONTROL_LAYOUT = { size: 32, pit_reinject: 0 } as const;

export const KVM_GET_API_VERSION = io(0x00);
export const KVM_CREATE_VM = io(0x01);
export const KVM_CHECK_EXTENSION = io(0x03);
export const KVM_GET_VCPU_MMAP_SIZE = io(0x04);
export const KVM_GET_SUPPORTED_CPUID = iowr(0x05, KVM_CPUID2_LAYOUT.size);
export const KVM_CREATE_VCPU = io(0x41);
export const KVM_SET_USER_MEMORY_REGION = iow(0x46, KVM_USERSPACE_MEMORY_REGION_LAYOUT.size);
export const KVM_SET_TSS_ADDR = io(0x47);
export const KVM_CREATE_IRQCHIP = io(0x60);
export const KVM_IRQ_LINE = iow(0x61, KVM_IRQ_LEVEL_LAYOUT.size);
export const KVM_REINJECT_CONTROL = io(0x71);
export const KVM_CREATE_PIT2 = iow(0x77, KVM_PIT_CONFIG_LAYOUT.size);
export const KVM_GET_PIT2 = ior(0x9f, KVM_PIT_STATE2_LAYOUT.size);
export const KVM_SET_CLOCK = iow(0x7b, KVM_CLOCK_DATA_LAYOUT.size);
export const KVM_GET_CLOCK = ior(0x7c, KVM_CLOCK_DATA_LAYOUT.size);
export const KVM_RUN = io(0x80);
export const KVM_GET_REGS = ior(0x81, KVM_REGS_LAYOUT.size);
export const KVM_SET_REGS = iow(0x82, KVM_REGS_LAYOUT.size);
export const KVM_GET_SREGS = ior(0x83, KVM_SREGS_LAYOUT.size);
export const KVM_SET_SREGS = iow(0x84, KVM_SREGS_LAYOUT.size);
export const KVM_GET_MSRS = iowr(0x88, KVM_MSRS_LAYOUT.size);
export const KVM_SET_MSRS = iow(0x89, KVM_MSRS_LAYOUT.size);
export const KVM_SET_CPUID2 = iow(0x90, KVM_CPUID2_LAYOUT.size);
export const KVM_KVMCLOCK_CTRL = io(0xad);
export const KVM_SET_TSC_KHZ = io(0xa2);
export const KVM_GET_TSC_KHZ = io(0xa3);
export const KVM_HAS_DEVICE_ATTR = iow(0xe3, KVM_DEVICE_ATTR_LAYOUT.size);
export const KVM_GET_DEVICE_ATTR = iow(0xe2, KVM_DEVICE_ATTR_LAYOUT.size);

export const KVM_API_VERSION = 12;
export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HLT = 5;
export const KVM_EXIT_MMIO = 6;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_FAIL_ENTRY = 9;
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_INTERNAL_ERROR = 17;
export const KVM_EXIT_IO_OUT = 1;
export const KVM_CAP_IRQCHIP = 0;
export const KVM_CAP_USER_MEMORY = 3;
export const KVM_CAP_ADJUST_CLOCK = 39;
export const KVM_CAP_KVMCLOCK_CTRL = 76;
export const KVM_CAP_GET_TSC_KHZ = 61;
export const KVM_CAP_TSC_CONTROL = 60;
export const KVM_CAP_EXT_CPUID = 7;
export const KVM_CAP_PIT2 = 33;
export const KVM_CAP_REINJECT_CONTROL = 24;
export const KVM_CAP_TSC_DEADLINE_TIMER = 72;
export const KVM_CAP_VCPU_ATTRIBUTES = 127;
export const KVM_VCPU_TSC_CTRL = 0;
export const KVM_VCPU_TSC_OFFSET = 0;
export const KVM_PIT_SPEAKER_DUMMY = 1;

/** Every hard-coded value as the C program prints it: "sizeof.T", "offsetof.T.f", "ioctl.N", "const.N". */
export function uapiTable(): Map<string, number> {
  const t = new Map<string, number>();
  const layouts: Record<string, Record<string, number>> = {
    kvm_run: KVM_RUN_LAYOUT,
    kvm_regs: KVM_REGS_LAYOUT,
    kvm_segment: KVM_SEGMENT_LAYOUT,
    kvm_sregs: KVM_SREGS_LAYOUT,
    kvm_msrs: KVM_MSRS_LAYOUT,
    kvm_msr_entry: KVM_MSR_ENTRY_LAYOUT,
    kvm_cpuid2: KVM_CPUID2_LAYOUT,
    kvm_cpuid_entry2: KVM_CPUID_ENTRY2_LAYOUT,
    kvm_clock_data: KVM_CLOCK_DATA_LAYOUT,
    kvm_userspace_memory_region: KVM_USERSPACE_MEMORY_REGION_LAYOUT,
    kvm_pit_config: KVM_PIT_CONFIG_LAYOUT,
    kvm_device_attr: KVM_DEVICE_ATTR_LAYOUT,
    kvm_irq_level: KVM_IRQ_LEVEL_LAYOUT,
    kvm_pit_channel_state: KVM_PIT_CHANNEL_STATE_LAYOUT,
    kvm_pit_state2: KVM_PIT_STATE2_LAYOUT,
    kvm_reinject_control: KVM_REINJECT_CONTROL_LAYOUT,
  };
  for (const [name, l] of Object.entries(layouts)) {
    for (const [field, v] of Object.entries(l)) t.set(field === 'size' ? `sizeof.${name}` : `offsetof.${name}.${field}`, v);
  }
  const ioctls = {
    KVM_GET_API_VERSION,
    KVM_CREATE_VM,
    KVM_CHECK_EXTENSION,
    KVM_GET_VCPU_MMAP_SIZE,
    KVM_GET_SUPPORTED_CPUID,
    KVM_CREATE_VCPU,
    KVM_SET_USER_MEMORY_REGION,
    KVM_SET_TSS_ADDR,
    KVM_CREATE_IRQCHIP,
    KVM_CREATE_PIT2,
    KVM_IRQ_LINE,
    KVM_GET_PIT2,
    KVM_REINJECT_CONTROL,
    KVM_SET_CLOCK,
    KVM_GET_CLOCK,
    KVM_RUN,
    KVM_GET_REGS,
    KVM_SET_REGS,
    KVM_GET_SREGS,
    KVM_SET_SREGS,
    KVM_GET_MSRS,
    KVM_SET_MSRS,
    KVM_SET_CPUID2,
    KVM_KVMCLOCK_CTRL,
    KVM_SET_TSC_KHZ,
    KVM_GET_TSC_KHZ,
    KVM_HAS_DEVICE_ATTR,
    KVM_GET_DEVICE_ATTR,
  };
  for (const [n, v] of Object.entries(ioctls)) t.set(`ioctl.${n}`, v);
  const consts = {
    KVM_API_VERSION,
    KVM_EXIT_IO,
    KVM_EXIT_HLT,
    KVM_EXIT_MMIO,
    KVM_EXIT_SHUTDOWN,
    KVM_EXIT_FAIL_ENTRY,
    KVM_EXIT_INTR,
    KVM_EXIT_INTERNAL_ERROR,
    KVM_EXIT_IO_OUT,
    KVM_CAP_IRQCHIP,
    KVM_CAP_USER_MEMORY,
    KVM_CAP_ADJUST_CLOCK,
    KVM_CAP_KVMCLOCK_CTRL,
    KVM_CAP_GET_TSC_KHZ,
    KVM_CAP_TSC_CONTROL,
    KVM_CAP_EXT_CPUID,
    KVM_CAP_PIT2,
    KVM_CAP_REINJECT_CONTROL,
    KVM_CAP_TSC_DEADLINE_TIMER,
    KVM_CAP_VCPU_ATTRIBUTES,
    KVM_CLOCK_TSC_STABLE,
    KVM_CLOCK_REALTIME,
    KVM_CLOCK_HOST_TSC,
    KVM_VCPU_TSC_CTRL,
    KVM_VCPU_TSC_OFFSET,
    KVM_PIT_SPEAKER_DUMMY,
  };
  for (const [n, v] of Object.entries(consts)) t.set(`const.${n}`, v);
  return t;
}
