// 16550A UART at COM1 (ports 0x3f8-0x3ff), following QEMU's hw/char/serial.c: a byte written to THR is
// transmitted at once to the backend (a chardev that always accepts: THRE/TEMT come straight back and the
// THR-empty interrupt is pending again), received bytes wait in RBR, and the interrupt line follows
// serial_update_irq's priority order. Timing of the wire (baud rate) is not modelled, as QEMU's
// transmit path does not model it for an accepting chardev either.
import { InputError } from '../core/index.ts';
import type { PortDevice } from './bus.ts';
import type { DeviceDeps } from './common.ts';

const UART_IER_RDI = 0x01;
const UART_IER_THRI = 0x02;
const UART_IER_RLSI = 0x04;
const UART_IER_MSI = 0x08;
const UART_IIR_NO_INT = 0x01;
const UART_IIR_ID = 0x06;
const UART_IIR_MSI = 0x00;
const UART_IIR_THRI = 0x02;
const UART_IIR_RDI = 0x04;
const UART_IIR_RLSI = 0x06;
const UART_IIR_FE = 0xc0;
const UART_FCR_FE = 0x01;
const UART_LCR_DLAB = 0x80;
const UART_MCR_LOOP = 0x10;
const UART_MCR_OUT2 = 0x08;
const UART_LSR_DR = 0x01;
const UART_LSR_OE = 0x02;
const UART_LSR_BI = 0x10;
const UART_LSR_THRE = 0x20;
const UART_LSR_TEMT = 0x40;
const UART_LSR_INT_ANY = 0x1e;
const UART_MSR_DCD = 0x80;
const UART_MSR_DSR = 0x20;
const UART_MSR_CTS = 0x10;
const UART_MSR_ANY_DELTA = 0x0f;

export const COM1_BASE = 0x3f8;

export interface Serial16550Options extends Pick<DeviceDeps, 'irq' | 'name'> {
  /** Port base (0x3f8 for COM1). */
  base?: number;
  /** The chardev: receives every transmitted byte. */
  transmit?: (byte: number) => void;
}

export interface Serial16550State {
  version: 1;
  divider: number;
  rbr: number;
  thr: number;
  ier: number;
  iir: number;
  lcr: number;
  mcr: number;
  lsr: number;
  msr: number;
  scr: number;
  fcr: number;
  thrIpending: boolean;
}

export class Serial16550 implements PortDevice {
  private readonly irq: DeviceDeps['irq'];
  private readonly base: number;
  private readonly transmit: (byte: number) => void;
  private s: Omit<Serial16550State, 'version'>;
  /** Bytes transmitted since construction. */
  transmitted = 0;

  constructor(opts: Serial16550Options) {
    this.irq = opts.irq;
    this.base = opts.base ?? COM1_BASE;
    this.transmit = opts.transmit ?? (() => {});
    // serial_reset
    this.s = {
      divider: 0x0c,
      rbr: 0,
      thr: 0,
      ier: 0,
      iir: UART_IIR_NO_INT,
      lcr: 0,
      mcr: UART_MCR_OUT2,
      lsr: UART_LSR_TEMT | UART_LSR_THRE,
      msr: UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS,
      scr: 0,
      fcr: 0,
      thrIpending: false,
    };
  }

  portRead(port: number, _size: 1 | 2 | 4 = 1): number {
    const s = this.s;
    switch ((port - this.base) & 7) {
      case 0:
        if (s.lcr & UART_LCR_DLAB) return s.divider & 0xff;
        s.lsr &= ~(UART_LSR_DR | UART_LSR_BI);
        this.updateIrq();
        return s.rbr;
      case 1:
        return s.lcr & UART_LCR_DLAB ? (s.divider >> 8) & 0xff : s.ier;
      case 2: {
        const ret = s.iir;
        if ((ret & UART_IIR_ID) === UART_IIR_THRI) {
          s.thrIpending = false;
          this.updateIrq();
        }
        return ret;
      }
      case 3:
        return s.lcr;
      case 4:
        return s.mcr;
      case 5: {
        const ret = s.lsr;
        if (s.lsr & (UART_LSR_BI | UART_LSR_OE)) {
          s.lsr &= ~(UART_LSR_BI | UART_LSR_OE);
          this.updateIrq();
        }
        return ret;
      }
      case 6:
        if (s.mcr & UART_MCR_LOOP) return ((s.mcr & 0x0c) << 4) | ((s.mcr & 0x02) << 3) | ((s.mcr & 0x01) << 5);
        return s.msr;
      default:
        return s.scr;
    }
  }

  portWrite(port: number, _size: number, value: number): void {
    const s = this.s;
    const val = value & 0xff;
    switch ((port - this.base) & 7) {
      case 0:
        if (s.lcr & UART_LCR_DLAB) {
          s.divider = (s.divider & 0xff00) | val;
          return;
        }
        s.thr = val;
        s.thrIpending = false;
        s.lsr &= ~(UART_LSR_THRE | UART_LSR_TEMT);
        this.updateIrq();
        this.xmit();
        return;
      case 1: {
        if (s.lcr & UART_LCR_DLAB) {
          s.divider = (s.divider & 0xff) | (val << 8);
          return;
        }
        const changed = (s.ier ^ val) & 0x0f;
        s.ier = val & 0x0f;
        if (changed & UART_IER_THRI) s.thrIpending = (s.ier & UART_IER_THRI) !== 0 && (s.lsr & UART_LSR_THRE) !== 0;
        if (changed) this.updateIrq();
        return;
      }
      case 2:
        s.fcr = val & 0xc9;
        s.iir = s.fcr & UART_FCR_FE ? s.iir | UART_IIR_FE : s.iir & ~UART_IIR_FE;
        return;
      case 3:
        s.lcr = val;
        return;
      case 4:
        s.mcr = val & 0x1f;
        return;
      case 5:
        return; // LSR is read-only
      case 6:
        return; // MSR writes are ignored
      default:
        s.scr = val;
    }
  }

  /** Bytes from the outside world (RBR holds one; a second before it is read overruns, LSR.OE). */
  receive(byte: number): void {
    const s = this.s;
    if (s.lsr & UART_LSR_DR) s.lsr |= UART_LSR_OE;
    s.rbr = byte & 0xff;
    s.lsr |= UART_LSR_DR;
    this.updateIrq();
  }

  /** serial_xmit for a chardev that accepts every byte: loopback feeds RBR instead. */
  private xmit(): void {
    const s = this.s;
    if (s.mcr & UART_MCR_LOOP) this.receive(s.thr);
    else this.transmit(s.thr);
    this.transmitted++;
    s.lsr |= UART_LSR_THRE | UART_LSR_TEMT;
    s.thrIpending = true;
    this.updateIrq();
  }

  /** serial_update_irq: the highest-priority pending source, or none. */
  private updateIrq(): void {
    const s = this.s;
    let id = UART_IIR_NO_INT;
    if (s.ier & UART_IER_RLSI && s.lsr & UART_LSR_INT_ANY) id = UART_IIR_RLSI;
    else if (s.ier & UART_IER_RDI && s.lsr & UART_LSR_DR) id = UART_IIR_RDI;
    else if (s.ier & UART_IER_THRI && s.thrIpending) id = UART_IIR_THRI;
    else if (s.ier & UART_IER_MSI && s.msr & UART_MSR_ANY_DELTA) id = UART_IIR_MSI;
    s.iir = id | (s.iir & 0xf0);
    if (id !== UART_IIR_NO_INT) this.irq.raise();
    else this.irq.lower();
  }

  saveState(): Serial16550State {
    return { version: 1, ...this.s };
  }

  restore(st: Serial16550State): void {
    if (st.version !== 1) throw new InputError('unsupported serial state');
    const { version: _v, ...rest } = st;
    this.s = { ...rest };
  }
}
