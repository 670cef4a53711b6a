// Clock event devices and the tick (kernel/time/tick-common.c tick_check_new_device,
// tick-sched.c/hrtimer.c one-shot switch, arch/x86/kernel/apic/apic.c lapic/lapic-deadline,
// hpet.c legacy hpet, i8253.c pit). Which device drives CPU 0's tick, which is the broadcast
// device, and whether the tick is periodic or one-shot (NOHZ/high resolution).
import type { KernelConfig } from './kernel.ts';
import type { TimeParams } from './cmdline.ts';
import type { GuestPlatform } from './platform.ts';

export interface ClockeventDevice {
  name: 'lapic-deadline' | 'lapic' | 'hpet' | 'pit';
  rating: number;
  oneshot: boolean;
  perCpu: boolean;
}

// Ratings as registered: lapic 100 (150 when the CPU has ARAT, as KVM guests do), hpet 50, pit 0.
const LAPIC_DEADLINE: ClockeventDevice = { name: 'lapic-deadline', rating: 150, oneshot: true, perCpu: true };
const LAPIC: ClockeventDevice = { name: 'lapic', rating: 100, oneshot: true, perCpu: true };
const HPET: ClockeventDevice = { name: 'hpet', rating: 50, oneshot: true, perCpu: false };
const PIT: ClockeventDevice = { name: 'pit', rating: 0, oneshot: true, perCpu: false };

export interface TickSetup {
  /** /sys/devices/system/clockevents/clockevent0/current_device */
  device: ClockeventDevice | null;
  /** /sys/devices/system/clockevents/broadcast/current_device */
  broadcast: ClockeventDevice | null;
  lines: string[];
}

/** What apic_needs_pit() looks at besides CPUID and the command line (known at x86_late_time_init). */
export interface PitDecisionInputs {
  /** tsc_khz and cpu_khz as tsc_early_init left them (0: calibration failed). */
  tscKhz: number;
  cpuKhz: number;
  /** lapic_timer_period already known (native_calibrate_tsc from CPUID 0x15's crystal); 0 if not. */
  lapicTimerPeriod?: number;
}

/**
 * apic_needs_pit() (arch/x86/kernel/apic/apic.c): whether the PIT is still needed, for TSC or APIC
 * timer calibration or as a tick source. Every modelled VMM provides an MP table or an ACPI MADT, so
 * apic_intr_mode is never APIC_VIRTUAL_WIRE_NO_CONFIG; it is APIC_PIC only when the APIC is
 * disabled (nolapic) or absent.
 */
export function apicNeedsPit(p: GuestPlatform, k: KernelConfig, t: TimeParams, f: PitDecisionInputs): boolean {
  if (!f.tscKhz || !f.cpuKhz) return true; // frequencies unknown: PIT needed to calibrate
  if (!p.devices.lapic || !k.localApic || t.nolapic) return true; // no APIC / apic_is_disabled / APIC_PIC
  if (!p.cpuid.arat) return true; // "Virt guests may lack ARAT, but still have DEADLINE"
  if (p.cpuid.tscDeadlineTimer) return false; // deadline timer is TSC based
  if (t.noapictimer) return true; // disable_apic_timer
  return !f.lapicTimerPeriod;
}

/**
 * use_pit() (arch/x86/kernel/i8253.c): without CONFIG_X86_TSC or a TSC the PIT is always set up,
 * otherwise apic_needs_pit() decides. When it says no, pit_timer_init() stops the PIT
 * (clockevent_i8253_disable) and registers no pit clockevent.
 */
export function usePit(p: GuestPlatform, k: KernelConfig, t: TimeParams, f: PitDecisionInputs): boolean {
  if (!k.x86Tsc || !p.cpuid.tsc) return true;
  return apicNeedsPit(p, k, t, f);
}

/**
 * Boot-time choice: the global timer (hpet_time_init: the HPET legacy clockevent if enabled, else
 * the PIT when use_pit() says so, else none) is the first tick device; setup_boot_APIC_clock()
 * registers the local APIC timer, which replaces it on each CPU and leaves the global one as
 * broadcast device. TSC deadline mode needs the CPUID bit and a TSC with a known frequency
 * (tsc_init clears the bit when calibration fails). Without `freq` (older callers) the
 * frequencies count as known exactly when the TSC is usable.
 */
export function setupTick(
  p: GuestPlatform,
  k: KernelConfig,
  t: TimeParams,
  hpetEnabled: boolean,
  tscUsable: boolean,
  freq?: PitDecisionInputs,
): TickSetup {
  const lines: string[] = [];
  const f = freq ?? { tscKhz: tscUsable ? 1 : 0, cpuKhz: tscUsable ? 1 : 0 };
  const global = hpetEnabled ? HPET : p.devices.pit && usePit(p, k, t, f) ? PIT : null;
  const lapicOk = p.devices.lapic && k.localApic && !t.nolapic;
  if (!lapicOk) return { device: global, broadcast: null, lines };
  const deadline = p.cpuid.tscDeadlineTimer && tscUsable;
  return { device: deadline ? LAPIC_DEADLINE : LAPIC, broadcast: global, lines };
}
