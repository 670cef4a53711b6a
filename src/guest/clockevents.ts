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

/**
 * Boot-time choice: the global timer (hpet_time_init: HPET if enabled, else the PIT) is the first
 * tick device; setup_boot_APIC_clock() registers the local APIC timer, which replaces it on each
 * CPU and leaves the global one as broadcast device. TSC deadline mode needs the CPUID bit and a
 * TSC with a known frequency (tsc_init clears the bit when calibration fails).
 */
export function setupTick(p: GuestPlatform, k: KernelConfig, t: TimeParams, hpetEnabled: boolean, tscUsable: boolean): TickSetup {
  const lines: string[] = [];
  const global = hpetEnabled ? HPET : p.devices.pit ? PIT : null;
  const lapicOk = p.devices.lapic && k.localApic && !t.nolapic;
  if (!lapicOk) return { device: global, broadcast: null, lines };
  const deadline = p.cpuid.tscDeadlineTimer && tscUsable;
  return { device: deadline ? LAPIC_DEADLINE : LAPIC, broadcast: global, lines };
}
