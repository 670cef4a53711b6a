// Which clock_gettime() calls the vDSO answers in userspace and which fall back to the system call
// (lib/vdso/gettimeofday.c, arch/x86/include/asm/vdso/gettimeofday.h): the high-resolution clocks
// read in userspace only when the current clocksource has a vDSO clock mode (TSC, or pvclock with
// the stable bit); *_COARSE clocks always do. The per-read costs are a model (see docs/fidelity.md); under
// RDTSC exiting every RDTSC (the tsc and pvclock reads) costs a VM exit instead of ~10 ns.
import type { Clocksource } from './clocksource.ts';
import type { GuestPlatform } from './platform.ts';

export type VdsoClock =
  | 'CLOCK_REALTIME'
  | 'CLOCK_MONOTONIC'
  | 'CLOCK_MONOTONIC_RAW'
  | 'CLOCK_BOOTTIME'
  | 'CLOCK_TAI'
  | 'CLOCK_REALTIME_COARSE'
  | 'CLOCK_MONOTONIC_COARSE';

export interface VdsoReadCost {
  clock: VdsoClock;
  path: 'vdso' | 'syscall';
  /** Modelled ns per clock_gettime() call. */
  ns: number;
  /**
   * What the guest's own TSC-based clocks say the call took: ns, less the RDTSC exit a compensating VMM
   * hid from the guest TSC (the call costs `ns` of real time but appears to cost this).
   */
  measuredNs: number;
}

/** Modelled costs of the pieces, ns: a vDSO read with rdtsc, the pvclock extra, a syscall round trip
 *  (230 ns: CLOCK_*_COARSE through syscall(228) on this workplace's Firecracker guest, docs/performance.md ## doctor). */
export const VDSO_COST = { base: 15, rdtsc: 10, pvclockExtra: 8, syscall: 230, coarse: 8, jiffiesRead: 2 } as const;

/** Cost of one RDTSC: native, or a VM exit when the VMM traps RDTSC (GuestPlatform.rdtscExit). */
export function rdtscCostNs(p: GuestPlatform): number {
  return p.rdtscExit?.costNs ?? VDSO_COST.rdtsc;
}

/** Whether reading this clocksource executes RDTSC (tsc, and kvm-clock's pvclock read: rdtsc_ordered). */
function readsTsc(cs: Clocksource): boolean {
  return cs.name === 'tsc' || cs.name === 'tsc-early' || cs.name === 'kvm-clock';
}

/** Cost of cs->read() inside the kernel. */
export function clocksourceReadNs(cs: Clocksource, p: GuestPlatform): number {
  switch (cs.name) {
    case 'tsc':
    case 'tsc-early':
      return rdtscCostNs(p);
    case 'kvm-clock':
      return rdtscCostNs(p) + VDSO_COST.pvclockExtra;
    case 'hpet':
      return p.mmioReadNs;
    case 'acpi_pm':
      return p.pioReadNs;
    default:
      return VDSO_COST.jiffiesRead;
  }
}

export function vdsoReadCosts(cs: Clocksource, p: GuestPlatform): VdsoReadCost[] {
  const inUser = cs.vdsoClockMode !== 'none';
  const userNs = VDSO_COST.base + rdtscCostNs(p) + (cs.vdsoClockMode === 'pvclock' ? VDSO_COST.pvclockExtra : 0);
  const sysNs = VDSO_COST.syscall + clocksourceReadNs(cs, p);
  // a compensating VMM subtracts each exit's time from the TSC offset: the exit is invisible to the TSC
  const hidden = p.rdtscExit?.compensated && readsTsc(cs) ? p.rdtscExit.costNs : 0;
  const cost = (clock: VdsoClock, path: VdsoReadCost['path'], ns: number): VdsoReadCost => ({ clock, path, ns, measuredNs: ns - hidden });
  const hres: VdsoClock[] = ['CLOCK_REALTIME', 'CLOCK_MONOTONIC', 'CLOCK_MONOTONIC_RAW', 'CLOCK_BOOTTIME', 'CLOCK_TAI'];
  return [
    ...hres.map((clock): VdsoReadCost => (inUser ? cost(clock, 'vdso', userNs) : cost(clock, 'syscall', sysNs))),
    { clock: 'CLOCK_REALTIME_COARSE', path: 'vdso', ns: VDSO_COST.coarse, measuredNs: VDSO_COST.coarse },
    { clock: 'CLOCK_MONOTONIC_COARSE', path: 'vdso', ns: VDSO_COST.coarse, measuredNs: VDSO_COST.coarse },
  ];
}
