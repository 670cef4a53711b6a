// The x86 platform timers as the guest finds them: the ACPI lines of acpi_boot_init, the HPET and ACPI PM
// timer clocksources, hpet_late_init's lines, and check_timer's ..TIMER line. Pure functions of the
// platform; GuestKernel prints and registers what they return at its boot steps.
import { clocksourceMask } from '../core/index.ts';
import { acpiTableLines } from './acpi.ts';
import type { TickSetup } from './clockevents.ts';
import { CLOCK_SOURCE_IS_CONTINUOUS, Clocksource } from './clocksource.ts';
import type { TimeParams } from './cmdline.ts';
import type { KernelConfig } from './kernel.ts';
import type { GuestDevices, GuestPlatform } from './platform.ts';

/** acpi_boot_init(): the FADT's PM timer port and the HPET table (acpi_parse_fadt, acpi_parse_hpet). */
export function acpiBootLines(p: GuestPlatform, k: KernelConfig, t: TimeParams): string[] {
  if (!p.devices.acpi || t.noacpi) return [];
  const out: string[] = [];
  // acpi_boot_table_init (earlier in setup_arch) lists the tables; only the HPET's is a clock line
  const hpetTable = p.devices.acpi.hpetTable;
  if (hpetTable && p.devices.hpet) out.push(...acpiTableLines('HPET', hpetTable));
  if (p.devices.acpi.pmTimer && k.acpiPmTimer) out.push(`ACPI: PM-Timer IO Port: 0x${p.devices.acpi.pmTimerPort.toString(16)}`);
  if (p.devices.hpet && k.hpetTimer) out.push(`ACPI: HPET id: 0x${p.devices.hpet.id.toString(16)} base: 0xfed00000`);
  return out;
}

/**
 * hpet_time_init → hpet_enable: the HPET, found through the ACPI HPET table (or hpet=force on chipsets
 * that need it), as a 32-bit clocksource at its counter's rate; null when the guest does not use it.
 */
export function hpetClocksource(p: GuestPlatform, k: KernelConfig, t: TimeParams): { cs: Clocksource; hz: number } | null {
  const acpi = p.devices.acpi && !t.noacpi;
  if (!(p.devices.hpet && k.hpetTimer && !t.hpetDisable && acpi && p.readHpet)) return null;
  const hz = Math.round(1e15 / p.devices.hpet.periodFs);
  const readHpet = p.readHpet;
  const cs = new Clocksource({
    name: 'hpet',
    rating: 250,
    mask: clocksourceMask(32),
    flags: CLOCK_SOURCE_IS_CONTINUOUS,
    read: () => readHpet() & 0xffff_ffffn,
  });
  return { cs, hz };
}

/** Whether drivers/clocksource/acpi_pm.c will register the PM timer. */
export function pmTimerUsable(p: GuestPlatform, k: KernelConfig, t: TimeParams): boolean {
  const acpi = p.devices.acpi && !t.noacpi;
  return !!(acpi && p.devices.acpi?.pmTimer && k.acpiPmTimer && p.readPmTimer);
}

/** The acpi_pm clocksource: 24 bits at 3.579545 MHz. */
export function acpiPmClocksource(read: () => bigint): Clocksource {
  return new Clocksource({
    name: 'acpi_pm',
    rating: 200,
    mask: clocksourceMask(24),
    flags: CLOCK_SOURCE_IS_CONTINUOUS,
    read: () => read() & 0xff_ffffn,
  });
}

/** hpet_late_init → hpet_reserve_platform_timers → drivers/char/hpet.c hpet_alloc. */
export function hpetLateInitLines(h: NonNullable<GuestDevices['hpet']>): string[] {
  const hz = Math.round(1e15 / h.periodFs);
  return [
    `hpet: ${h.comparators} channels of 0 reserved for per-cpu timers`,
    `hpet0: at MMIO 0xfed00000, IRQs ${h.irqs.join(', ')}`,
    `hpet0: ${h.comparators} comparators, ${h.counter64 ? 64 : 32}-bit ${Math.floor(hz / 1e6)}.${String(hz % 1e6).padStart(6, '0')} MHz counter`,
  ];
}

/**
 * check_timer() (arch/x86/kernel/apic/io_apic.c), from setup_IO_APIC in intr_mode_init: only with
 * a global clockevent (HPET or PIT) and the IO-APIC in use (not "noapic"); IRQ0's vector is
 * ISA_IRQ_VECTOR(0) = 0x30, its pin the firmware's routing, and no pin is set up as ExtINT.
 */
export function checkTimerLine(p: GuestPlatform, k: KernelConfig, t: TimeParams, tick: TickSetup): string | null {
  const global = tick.broadcast ?? (tick.device && !tick.device.perCpu ? tick.device : null);
  const pin = p.devices.ioapicIrq0Pin;
  if (!global || pin === undefined || t.noapic || t.nolapic || !p.devices.lapic || !k.localApic) return null;
  return `..TIMER: vector=0x30 apic1=0 pin1=${pin} apic2=-1 pin2=-1`;
}
