// What Linux 6.1's rtc_cmos driver prints when it probes the CMOS RTC as an ACPI PNP device (PNP0B00),
// with the RTC class registration and rtc_hctosys in between:
//   drivers/rtc/rtc-cmos.c cmos_wake_setup: "RTC can wake from S4" when the FADT sets ACPI_FADT_S4_RTC_WAKE;
//   drivers/rtc/class.c __devm_rtc_register_device: "registered as rtc0", then (CONFIG_RTC_HCTOSYS_DEVICE
//     "rtc0") rtc_hctosys: "setting system clock to …";
//   rtc-cmos.c cmos_do_probe's last line: "alarms up to one day|month|year", ", y3k" when the FADT names a
//     century register, the NVRAM size (address space − NVRAM_OFFSET), ", hpet irqs" when use_hpet_alarm()
//     (the HPET is enabled and the ACPI alarm is not used).
// The device name is the PNP device's, "%02x:%02x" of the protocol number (0 for PnP ACPI) and the order
// in which drivers/pnp/pnpacpi/core.c found it (pnpacpiDeviceName).
import type { RtcCmosDevice } from './platform.ts';

/** dev_name() of the n-th (0-based) device pnpacpi_add_device registered: "%02x:%02x", protocol 0. */
export function pnpacpiDeviceName(index: number): string {
  return `00:${index.toString(16).padStart(2, '0')}`;
}

/** The probe lines, in order, around `hctosysLine` (rtc_hctosys's message without the device prefix). */
export function rtcCmosProbeLines(d: RtcCmosDevice, acpi: boolean, hpetEnabled: boolean, hctosysLine: string): string[] {
  if (!acpi) return [`rtc_cmos rtc_cmos: ${hctosysLine}`];
  const dev = `rtc_cmos ${d.pnpName}:`;
  const alarms = d.monthAlarm ? 'alarms up to one year' : d.dayAlarm ? 'alarms up to one month' : 'alarms up to one day';
  return [
    ...(d.s4RtcWake ? [`${dev} RTC can wake from S4`] : []),
    `${dev} registered as rtc0`,
    `${dev} ${hctosysLine}`,
    `${dev} ${alarms}${d.century ? ', y3k' : ''}, ${d.nvramBytes} bytes nvram${hpetEnabled ? ', hpet irqs' : ''}`,
  ];
}
