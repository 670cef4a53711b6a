// kvmtool's CMOS RTC (kvmtool hw/rtc.c cmos_ram_io): not an MC146818 model but a window on the host
// clock. Every read of a time register formats time(NULL) through gmtime in BCD (24-hour values,
// whatever register B says); register A is plain CMOS RAM (0 unless the guest writes it), so UIP is
// never set and a reader never waits; register D reads VRT (0x80); C and D ignore writes; other
// indices are 128 bytes of RAM. It has no timers and raises no interrupt.
import { NSEC_PER_SEC, type Clock } from '../core/index.ts';
import type { PortDevice } from '../devices/index.ts';

const RTC_REG_C = 0x0c;
const RTC_REG_D = 0x0d;
const RTC_REG_D_VRT = 0x80;

const bin2bcd = (v: number): number => ((Math.trunc(v / 10) << 4) + (v % 10)) & 0xff;

export class KvmtoolRtc implements PortDevice {
  private index = 0;
  private readonly data = new Uint8Array(128);

  /** `hostRealtime`: the host's CLOCK_REALTIME in ns (time(2) is its whole seconds). */
  constructor(private readonly hostRealtime: Clock) {
    this.data[RTC_REG_D] = RTC_REG_D_VRT; // rtc__init
  }

  portRead(port: number, _size: 1 | 2 | 4 = 1): number {
    if ((port & 1) === 0) return 0xff; // the index register is write-only (nothing is written to data)
    const d = new Date(Number(this.hostRealtime() / NSEC_PER_SEC) * 1000);
    switch (this.index) {
      case 0x00:
        return bin2bcd(d.getUTCSeconds());
      case 0x02:
        return bin2bcd(d.getUTCMinutes());
      case 0x04:
        return bin2bcd(d.getUTCHours());
      case 0x06:
        return bin2bcd(d.getUTCDay() + 1);
      case 0x07:
        return bin2bcd(d.getUTCDate());
      case 0x08:
        return bin2bcd(d.getUTCMonth() + 1);
      case 0x09:
        return bin2bcd(d.getUTCFullYear() % 100);
      case 0x32:
        return bin2bcd(Math.trunc(d.getUTCFullYear() / 100));
      default:
        return this.data[this.index]!;
    }
  }

  portWrite(port: number, _size: 1 | 2 | 4, value: number): void {
    if ((port & 1) === 0) {
      this.index = value & 0x7f; // bit 7 is the NMI mask
      return;
    }
    if (this.index === RTC_REG_C || this.index === RTC_REG_D) return;
    this.data[this.index] = value & 0xff;
  }
}
