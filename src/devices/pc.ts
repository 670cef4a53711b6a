// The `pc` machine as far as timers go: QEMU's i440FX/PIIX board (hw/i386/pc.c pc_basic_device_init)
// with its RTC at 0x70, PIT at 0x40 and port 0x61, HPET at 0xfed00000, optional ACPI PM timer, RAM,
// and 24 interrupt lines standing for the IOAPIC inputs that qtest's `irq_intercept_in ioapic` reports.
// As in QEMU, the PIT and RTC reach their lines through the HPET, which disconnects them in
// LegacyReplacement mode (hpet_handle_legacy_irq).
import { Engine } from '../core/engine.ts';
import type { Ns } from '../core/time.ts';
import type { TraceRecorder } from '../core/trace.ts';
import { AcpiPmTimer } from './acpi-pm.ts';
import { type AccessSize, type MmioDevice, MmioBus, PortBus } from './bus.ts';
import { Hpet, HPET_BASE, HPET_LEN } from './hpet.ts';
import { type IrqLine, RecordingIrq } from './irq.ts';
import { type KvmPitOptions, Pit, SpeakerPort } from './pit.ts';
import { CmosRtc, type LostTickPolicy } from './rtc.ts';

export const GSI_NUM_PINS = 24;

export interface PcMachineOptions {
  /** RTC time in UTC seconds at virtual time 0 (QEMU -rtc base=...,clock=vm). */
  rtcBaseSeconds: bigint;
  lostTickPolicy?: LostTickPolicy;
  /** Model KVM's in-kernel PIT (channel 0) instead of QEMU's userspace one. */
  kvmPit?: KvmPitOptions;
  /** Put an ACPI PM1a event block + PM timer at this port (firmware's PMBA); none by default, as under qtest without firmware. */
  acpiPmBase?: number;
  /** RAM size in bytes (QEMU's default 128 MiB). */
  ramBytes?: number;
  trace?: TraceRecorder;
}

/** Level passthrough that can be disconnected (the HPET's legacy gate for PIT and RTC outputs). */
class GatedIrq implements IrqLine {
  level = false;
  open = true;
  constructor(private readonly out: IrqLine) {}
  raise(): boolean {
    this.level = true;
    return this.open ? this.out.raise() : true;
  }
  lower(): void {
    this.level = false;
    if (this.open) this.out.lower();
  }
}

/** Sparse guest RAM in 4 KiB pages. */
class Ram implements MmioDevice {
  private readonly pages = new Map<number, Uint8Array>();
  readByte(a: number): number {
    return this.pages.get(Math.floor(a / 4096))?.[a % 4096] ?? 0;
  }
  writeByte(a: number, v: number): void {
    const n = Math.floor(a / 4096);
    let p = this.pages.get(n);
    if (!p) this.pages.set(n, (p = new Uint8Array(4096)));
    p[a % 4096] = v & 0xff;
  }
  mmioRead(offset: number, size: AccessSize): bigint {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.readByte(offset + i));
    return v;
  }
  mmioWrite(offset: number, size: AccessSize, value: bigint): void {
    for (let i = 0; i < size; i++) this.writeByte(offset + i, Number((value >> BigInt(8 * i)) & 0xffn));
  }
}

export class PcMachine {
  readonly engine = new Engine();
  readonly ports = new PortBus();
  readonly mmio = new MmioBus();
  readonly gsi: RecordingIrq[] = Array.from({ length: GSI_NUM_PINS }, () => new RecordingIrq());
  readonly rtc: CmosRtc;
  readonly pit: Pit;
  readonly speaker: SpeakerPort;
  readonly hpet: Hpet;
  readonly acpiPm: AcpiPmTimer | null;

  constructor(opts: PcMachineOptions) {
    const scheduler = this.engine;
    const trace = opts.trace;
    const pitOut = new GatedIrq(this.gsi[0]!);
    const rtcOut = new GatedIrq(this.gsi[8]!);
    this.pit = new Pit({ scheduler, irq: pitOut, trace, name: 'pc/pit', ...(opts.kvmPit ? { kvm: opts.kvmPit } : {}) });
    this.speaker = new SpeakerPort(this.pit);
    this.rtc = new CmosRtc({ scheduler, irq: rtcOut, trace, name: 'pc/rtc', baseSeconds: opts.rtcBaseSeconds, startNs: 0n, lostTickPolicy: opts.lostTickPolicy ?? 'discard' });
    this.hpet = new Hpet({
      scheduler,
      irqs: this.gsi,
      trace,
      name: 'pc/hpet',
      onLegacyRoute: (on) => {
        pitOut.open = !on;
        rtcOut.open = !on;
        this.pit.setIrqDisabled(on);
        if (!on && rtcOut.level) this.gsi[8]!.raise(); // qemu_set_irq(irqs[RTC_ISA_IRQ], rtc_irq_level)
      },
    });
    this.ports.map(0x70, 2, this.rtc);
    this.ports.map(0x40, 4, this.pit);
    this.ports.map(0x61, 1, this.speaker);
    this.mmio.map(HPET_BASE, HPET_LEN, this.hpet, { min: 4, max: 8 });
    this.mmio.map(0n, BigInt(opts.ramBytes ?? 128 * 2 ** 20), new Ram());
    this.acpiPm = null;
    if (opts.acpiPmBase !== undefined) {
      this.acpiPm = new AcpiPmTimer({ scheduler, irq: this.gsi[9]!, trace, name: 'pc/acpi-pm', base: opts.acpiPmBase });
      this.ports.map(opts.acpiPmBase, AcpiPmTimer.LENGTH, this.acpiPm, 4);
    }
  }

  get now(): Ns {
    return this.engine.now;
  }

  /** Run the machine's timers up to virtual time `t`. */
  runUntil(t: Ns): void {
    this.engine.run(t);
  }

  saveState() {
    return {
      version: 1 as const,
      now: this.engine.now.toString(),
      rtc: this.rtc.saveState(),
      pit: this.pit.saveState(),
      speaker: this.speaker.saveState(),
      hpet: this.hpet.saveState(),
      acpiPm: this.acpiPm?.saveState() ?? null,
    };
  }
}
