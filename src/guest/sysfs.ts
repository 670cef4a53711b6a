// Texts userspace reads from the guest, formatted as the kernel formats them: the kernel log as dmesg
// prints it, and the clockevents sysfs file (the clocksource files come from ClocksourceCore).
import type { Ns } from '../core/index.ts';
import type { ClockeventDevice } from './clockevents.ts';

export interface LogLine {
  /** ns since kernel entry (the dmesg timestamp). */
  t: Ns;
  line: string;
}

/** dmesg lines with "[%5lu.%06lu] " timestamps (kernel/printk/printk.c print_time). */
export function dmesgLines(log: readonly LogLine[]): string[] {
  return log.map((l) => {
    const us = l.t / 1000n;
    return `[${String(us / 1_000_000n).padStart(5)}.${String(us % 1_000_000n).padStart(6, '0')}] ${l.line}`;
  });
}

/** /sys/devices/system/clockevents/clockevent0/current_device (kernel/time/clockevents.c). */
export function clockeventDeviceText(device: ClockeventDevice | null): string {
  return `${device?.name ?? ''}\n`;
}
