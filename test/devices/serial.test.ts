// The 16550A model, register by register as QEMU's hw/char/serial.c implements them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordingIrq } from '../../src/devices/irq.ts';
import { COM1_BASE, Serial16550 } from '../../src/devices/serial.ts';

const setup = () => {
  const irq = new RecordingIrq();
  const out: number[] = [];
  const uart = new Serial16550({ irq, transmit: (b) => out.push(b) });
  const rd = (off: number) => uart.portRead(COM1_BASE + off, 1);
  const wr = (off: number, v: number) => uart.portWrite(COM1_BASE + off, 1, v);
  return { irq, out, uart, rd, wr };
};

test('16550 reset state: IIR no interrupt, LSR THRE|TEMT, MCR OUT2, MSR DCD|DSR|CTS, divisor 12', () => {
  const { rd, wr } = setup();
  assert.equal(rd(2), 0x01);
  assert.equal(rd(5), 0x60);
  assert.equal(rd(4), 0x08);
  assert.equal(rd(6), 0xb0);
  wr(3, 0x80); // DLAB
  assert.equal(rd(0), 0x0c);
  assert.equal(rd(1), 0x00);
});

test('16550 THR write transmits at once; with IER.THRI the THR-empty interrupt is raised and cleared by reading IIR', () => {
  const { irq, out, rd, wr } = setup();
  wr(0, 0x41);
  assert.deepEqual(out, [0x41]);
  assert.equal(rd(5) & 0x60, 0x60, 'THRE and TEMT back at once');
  assert.equal(irq.level, false, 'no interrupt without IER');
  wr(1, 0x02); // enabling THRI with THR empty makes it pending (serial_ioport_write, UART_IER_THRI)
  assert.equal(irq.level, true);
  assert.equal(rd(2), 0x02);
  assert.equal(irq.level, false, 'reading IIR with THRI pending clears it');
  assert.equal(rd(2), 0x01);
});

test('16550 receive: RBR holds a byte (LSR.DR), a second before it is read overruns (LSR.OE, cleared by reading LSR)', () => {
  const { irq, uart, rd, wr } = setup();
  wr(1, 0x05); // RDI | RLSI
  uart.receive(0x61);
  assert.equal(irq.level, true);
  assert.equal(rd(2), 0x04, 'received data available');
  uart.receive(0x62);
  assert.equal(rd(2), 0x06, 'line status (overrun) outranks data');
  assert.equal(rd(5) & 0x03, 0x03);
  assert.equal(rd(5) & 0x02, 0, 'OE clears on LSR read');
  assert.equal(rd(0), 0x62);
  assert.equal(rd(5) & 0x01, 0);
  assert.equal(irq.level, false);
});

test('16550 loopback (MCR bit 4): transmitted bytes come back in RBR, MSR mirrors MCR', () => {
  const { out, rd, wr } = setup();
  wr(4, 0x1f);
  wr(0, 0x5a);
  assert.deepEqual(out, []);
  assert.equal(rd(0), 0x5a);
  assert.equal(rd(6), 0xf0);
});

test('16550 state saves and restores as plain data', () => {
  const a = setup();
  a.wr(3, 0x03);
  a.wr(7, 0x99);
  a.wr(1, 0x02);
  const s = a.uart.saveState();
  const b = setup();
  b.uart.restore(JSON.parse(JSON.stringify(s)));
  assert.deepEqual(b.uart.saveState(), s);
  assert.equal(b.rd(7), 0x99);
  assert.throws(() => b.uart.restore({ ...s, version: 2 as 1 }), /unsupported serial state/);
});
