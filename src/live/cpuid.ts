// CPUID for a live vCPU from a machine profile's policy: start from KVM_GET_SUPPORTED_CPUID and set
// the bits the profile decides, as the VMM it stands for does (QEMU target/i386/kvm/kvm.c
// kvm_arch_init_vcpu: KVM leaves 0x40000000/1, 0x40000010 with the TSC and bus kHz when known).
// The policy has the shape of the guest layer's GuestCpuid (structurally: live may not import guest).
import * as U from './uapi.ts';

export interface CpuidPolicy {
  tscDeadlineTimer: boolean;
  hypervisor: boolean;
  invariantTsc: boolean;
  kvm?: { features: number; tscKhz: number; apicBusKhz: number };
}

interface Entry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

function decode(buf: Uint8Array): Entry[] {
  const dv = new DataView(buf.buffer, buf.byteOffset);
  const n = dv.getUint32(U.KVM_CPUID2_LAYOUT.nent, true);
  const L = U.KVM_CPUID_ENTRY2_LAYOUT;
  return Array.from({ length: n }, (_, i) => {
    const at = U.KVM_CPUID2_LAYOUT.entries + i * L.size;
    return {
      function: dv.getUint32(at + L.function, true),
      index: dv.getUint32(at + L.index, true),
      flags: dv.getUint32(at + L.flags, true),
      eax: dv.getUint32(at + L.eax, true),
      ebx: dv.getUint32(at + L.ebx, true),
      ecx: dv.getUint32(at + L.ecx, true),
      edx: dv.getUint32(at + L.edx, true),
    };
  });
}

export function encodeCpuid(entries: Entry[]): Uint8Array {
  const L = U.KVM_CPUID_ENTRY2_LAYOUT;
  const buf = new Uint8Array(U.KVM_CPUID2_LAYOUT.size + entries.length * L.size);
  const dv = new DataView(buf.buffer);
  dv.setUint32(U.KVM_CPUID2_LAYOUT.nent, entries.length, true);
  entries.forEach((e, i) => {
    const at = U.KVM_CPUID2_LAYOUT.entries + i * L.size;
    for (const k of ['function', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const) dv.setUint32(at + L[k], e[k] >>> 0, true);
  });
  return buf;
}

const setBit = (v: number, bit: number, on: boolean) => (on ? v | (1 << bit) : v & ~(1 << bit)) >>> 0;

/** The supported CPUID with the profile's choices applied (a bit the host lacks stays off). */
export function applyCpuidPolicy(supported: Uint8Array, p: CpuidPolicy): Uint8Array {
  const entries = decode(supported).filter((e) => !(p.kvm === undefined && e.function >= 0x40000000 && e.function < 0x40000100));
  for (const e of entries) {
    if (e.function === 1) {
      e.ecx = setBit(e.ecx, 24, p.tscDeadlineTimer && (e.ecx & (1 << 24)) !== 0);
      e.ecx = setBit(e.ecx, 31, p.hypervisor);
    }
    if (e.function === 0x80000007) e.edx = setBit(e.edx, 8, p.invariantTsc && (e.edx & (1 << 8)) !== 0);
    if (e.function === 0x40000001 && p.kvm) e.eax = (e.eax & p.kvm.features) >>> 0;
  }
  if (p.kvm && p.kvm.tscKhz > 0) {
    const base = entries.find((e) => e.function === 0x40000000);
    if (base && base.eax < 0x40000010) base.eax = 0x40000010;
    entries.push({ function: 0x40000010, index: 0, flags: 0, eax: p.kvm.tscKhz, ebx: p.kvm.apicBusKhz, ecx: 0, edx: 0 });
  }
  return encodeCpuid(entries);
}

/** The value of one CPUID register in an encoded table (tests and reports). */
export function cpuidValue(buf: Uint8Array, fn: number, reg: 'eax' | 'ebx' | 'ecx' | 'edx'): number | null {
  const e = decode(buf).find((x) => x.function === fn);
  return e ? e[reg] : null;
}
