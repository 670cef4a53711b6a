// The `pc` machine as far as timers go: QEMU's i440FX/PIIX board (hw/i386/pc.c pc_basic_device_init)
// with its RTC at 0x70, PIT at 0x40 and port 0x61, HPET at 0xfed00000, optional ACPI PM timer, RAM,
// and 24 interrupt lines standing for the IOAPIC inputs that qtest's `irq_intercept_in ioapic` reports.
// As in QEMU, the PIT and RTC reach their lines through the HPET, which disconnects them in
// LegacyReplacement mode (hpet_handle_legacy_irq).
import { Engine } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import type { TraceRecorder } from '../core/index.ts';
import { AcpiPmTimer, type AcpiPmTimerState } from './acpi-pm.ts';
import { InputError } from '../core/index.ts';
import { type AccessSize, type MmioDevice, MmioBus, PortBus, type PortDevice } from './bus.ts';
import { Hpet, HPET_BASE, HPET_LEN, type HpetCmp64Write, type HpetPeriodicAdvance, type HpetState } from './hpet.ts';
import { type IrqLine, RecordingIrq } from './irq.ts';
import type { DeviceDeps } from './common.ts';
import { Pit, type PitCommon, type PitState, SpeakerPort } from './pit.ts';
import { CmosRtc, type CmosRtcState, type LostTickPolicy } from './rtc.ts';

export const GSI_NUM_PINS = 24;

export interface PcMachineState {
  version: 1;
  now: string;
  rtc: CmosRtcState;
  pit: PitState;
  speaker: ReturnType<SpeakerPort['saveState']>;
  hpet: HpetState;
  acpiPm: AcpiPmTimerState;
  pci: PciHostState;
  ram: Record<string, string>;
}

export interface PcMachineOptions {
  /** RTC time in UTC seconds at virtual time 0 (QEMU -rtc base=...,clock=vm). */
  rtcBaseSeconds: bigint;
  lostTickPolicy?: LostTickPolicy;
  /** Build the PIT from its deps: QEMU's userspace Pit by default, or KVM's in-kernel one (src/hypervisor KvmPit). */
  createPit?: (deps: DeviceDeps) => PitCommon;
  /** How 64-bit HPET comparator writes land: 'split' as QEMU 7.2 (default) or 'atomic' (see HpetOptions). */
  hpetCmp64Write?: HpetCmp64Write;
  /** When a periodic HPET comparator advances: 'past' as QEMU 7.2 (default) or 'reached' (see HpetOptions). */
  hpetPeriodicAdvance?: HpetPeriodicAdvance;
  /**
   * Program the PIIX4 PM base to this port at start, as firmware does (SeaBIOS: 0x600). Without it the
   * PM block appears only once the guest writes PMBA/PMREGMISC through PCI config, as under qtest.
   */
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

/**
 * PCI configuration mechanism #1 (ports 0xcf8/0xcfc, hw/pci/pci_host.c) with just enough of the pc
 * board's functions to answer vendor/device reads, plus the PIIX4 power-management function 00:01.3,
 * whose PMBA (0x40) and PMREGMISC (0x80) decide where the ACPI PM block appears (hw/acpi/piix4.c
 * pm_io_space_update: base = PMBA & 0xffc0, enabled by PMREGMISC bit 0).
 */
class PciHost implements PortDevice {
  private configReg = 0;
  private readonly ids = new Map<number, number>([
    [0x00, 0x12378086], // 00:00.0 i440FX host bridge
    [0x08, 0x70008086], // 00:01.0 PIIX3 ISA bridge
    [0x09, 0x70108086], // 00:01.1 PIIX3 IDE
    [0x0b, 0x71138086], // 00:01.3 PIIX4 ACPI (power management)
  ]);
  private readonly pmConfig = new Uint8Array(256);
  private mapped: number | null = null;

  constructor(
    private readonly ports: PortBus,
    private readonly pm: AcpiPmTimer,
  ) {
    this.pmConfig[0x40] = 0x01; // PMBA: I/O space indicator
  }

  portRead(port: number, size: 1 | 2 | 4): number {
    if (port === 0xcf8) return size === 4 ? this.configReg >>> 0 : ONES[size];
    const addr = this.address(port);
    if (addr === null) return ONES[size];
    const devfn = (addr >> 8) & 0xff;
    const reg = addr & 0xff;
    const id = this.ids.get(devfn);
    if ((addr >> 16) & 0xff || id === undefined) return ONES[size];
    let v = 0;
    for (let i = 0; i < size; i++) {
      const r = reg + i;
      const byte = devfn === 0x0b && r >= 0x04 ? this.pmConfig[r]! : r < 4 ? (id >>> (8 * r)) & 0xff : 0;
      v += byte * 2 ** (8 * i);
    }
    return v;
  }

  portWrite(port: number, size: 1 | 2 | 4, value: number): void {
    if (port === 0xcf8) {
      if (size === 4) this.configReg = value >>> 0;
      return;
    }
    const addr = this.address(port);
    if (addr === null || addr >> 8 !== 0x0b) return; // only the PM function's registers are writable here
    const reg = addr & 0xff;
    for (let i = 0; i < size && reg + i < 256; i++) {
      if (reg + i < 0x40) continue; // header: not modelled
      this.pmConfig[reg + i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    }
    this.pmConfig[0x40] |= 0x01;
    this.pmIoSpaceUpdate();
  }

  private address(port: number): number | null {
    if (!(this.configReg & 0x80000000)) return null;
    return ((this.configReg & 0x00fffffc) | (port & 3)) >>> 0;
  }

  /** pm_io_space_update */
  pmIoSpaceUpdate(): void {
    const c = this.pmConfig;
    const base = (c[0x40]! | (c[0x41]! << 8)) & 0xffc0;
    const enabled = (c[0x80]! & 1) === 1;
    if (this.mapped !== null) this.ports.unmap(this.mapped, AcpiPmTimer.LENGTH, this.pm);
    this.mapped = null;
    if (enabled) {
      this.pm.base = base;
      this.ports.map(base, AcpiPmTimer.LENGTH, this.pm, 4, true);
      this.mapped = base;
    }
  }

  saveState(): PciHostState {
    return { configReg: this.configReg, pmConfig: Array.from(this.pmConfig.subarray(0x40)) };
  }

  restore(s: PciHostState): void {
    this.configReg = s.configReg >>> 0;
    this.pmConfig.fill(0, 0x40);
    this.pmConfig.set(s.pmConfig.slice(0, 0xc0), 0x40);
    this.pmIoSpaceUpdate();
  }

  /** What firmware does on the pc machine: PMBA = base, PMIOSE = 1. */
  firmwareSetup(base: number): void {
    this.pmConfig[0x40] = (base & 0xc0) | 1;
    this.pmConfig[0x41] = (base >> 8) & 0xff;
    this.pmConfig[0x80] = 1;
    this.pmIoSpaceUpdate();
  }
}

const ONES = [0, 0xff, 0xffff, 0, 0xffffffff] as const;

/** The PCI host's address latch and the PM function's config bytes 0x40-0xff. */
export interface PciHostState {
  configReg: number;
  pmConfig: number[];
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
  /** Written pages, base64 by page number. */
  saveState(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [n, p] of [...this.pages].sort((a, b) => a[0] - b[0])) out[n] = Buffer.from(p).toString('base64');
    return out;
  }
  restore(s: Record<string, string>): void {
    this.pages.clear();
    for (const [n, b64] of Object.entries(s)) this.pages.set(Number(n), new Uint8Array(Buffer.from(b64, 'base64')));
  }
}

export class PcMachine {
  readonly engine = new Engine();
  readonly ports = new PortBus();
  readonly mmio = new MmioBus();
  readonly gsi: RecordingIrq[] = Array.from({ length: GSI_NUM_PINS }, () => new RecordingIrq());
  readonly rtc: CmosRtc;
  readonly pit: PitCommon;
  readonly speaker: SpeakerPort;
  readonly hpet: Hpet;
  readonly acpiPm: AcpiPmTimer;
  readonly pci: PciHost;
  private readonly ram = new Ram();
  private readonly pitOut: GatedIrq;
  private readonly rtcOut: GatedIrq;

  constructor(opts: PcMachineOptions) {
    const scheduler = this.engine;
    const trace = opts.trace;
    const pitOut = new GatedIrq(this.gsi[0]!);
    const rtcOut = new GatedIrq(this.gsi[8]!);
    this.pitOut = pitOut;
    this.rtcOut = rtcOut;
    const pitDeps: DeviceDeps = { scheduler, irq: pitOut, name: 'pc/pit', ...(trace ? { trace } : {}) };
    this.pit = opts.createPit ? opts.createPit(pitDeps) : new Pit(pitDeps);
    this.speaker = new SpeakerPort(this.pit);
    this.rtc = new CmosRtc({
      scheduler,
      irq: rtcOut,
      trace,
      name: 'pc/rtc',
      baseSeconds: opts.rtcBaseSeconds,
      startNs: 0n,
      lostTickPolicy: opts.lostTickPolicy ?? 'discard',
    });
    this.hpet = new Hpet({
      scheduler,
      irqs: this.gsi,
      trace,
      name: 'pc/hpet',
      ...(opts.hpetCmp64Write ? { cmp64Write: opts.hpetCmp64Write } : {}),
      ...(opts.hpetPeriodicAdvance ? { periodicAdvance: opts.hpetPeriodicAdvance } : {}),
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
    this.mmio.map(0n, BigInt(opts.ramBytes ?? 128 * 2 ** 20), this.ram);
    this.acpiPm = new AcpiPmTimer({ scheduler, irq: this.gsi[9]!, trace, name: 'pc/acpi-pm', base: 0 });
    this.pci = new PciHost(this.ports, this.acpiPm);
    this.ports.map(0xcf8, 8, this.pci, 4);
    if (opts.acpiPmBase !== undefined) this.pci.firmwareSetup(opts.acpiPmBase);
  }

  get now(): Ns {
    return this.engine.now;
  }

  /** Run the machine's timers up to virtual time `t`. */
  runUntil(t: Ns): void {
    this.engine.run(t);
  }

  /** At most how many timer events running the machine for `span` ns can dispatch. */
  timerEventBound(span: Ns): number {
    return (
      this.pit.timerEventBound(span) + this.rtc.timerEventBound(span) + this.hpet.timerEventBound(span) + this.acpiPm.timerEventBound(span)
    );
  }

  saveState(): PcMachineState {
    return {
      version: 1,
      now: this.engine.now.toString(),
      rtc: this.rtc.saveState(),
      pit: this.pit.saveState(),
      speaker: this.speaker.saveState(),
      hpet: this.hpet.saveState(),
      acpiPm: this.acpiPm.saveState(),
      pci: this.pci.saveState(),
      ram: this.ram.saveState(),
    };
  }

  /**
   * Load a saved machine into a freshly built one, as QEMU loads a migration stream into a new VM. The
   * PIT and RTC take their state first (their timers are absolute times, all at or after the saved
   * time), the clock jumps to the saved time without replaying anything, then the HPET and PM timer,
   * which count from the clock. As in QEMU, what the state does not hold is not carried over: the
   * registers of the HPET timer past the last.
   */
  restore(s: PcMachineState): void {
    if (s.version !== 1) throw new InputError(`unsupported pc machine state version ${String(s.version)}`);
    const now = BigInt(s.now);
    if (now < this.engine.now) throw new InputError(`machine state at ${now} ns is before this machine's clock (${this.engine.now} ns)`);
    this.rtc.restore(s.rtc);
    this.pit.restore(s.pit);
    this.speaker.restore(s.speaker);
    this.pci.restore(s.pci);
    this.ram.restore(s.ram);
    const next = this.engine.nextEventTime();
    if (next !== null && next < now) throw new InputError('a machine state can only be restored into a freshly built machine');
    this.engine.advanceTo(now);
    this.hpet.restore(s.hpet);
    this.acpiPm.restore(s.acpiPm);
    const legacy = (BigInt(s.hpet.config) & 2n) !== 0n; // HPET_CFG_LEGACY gates the PIT and RTC outputs
    this.pitOut.open = !legacy;
    this.rtcOut.open = !legacy;
  }
}
