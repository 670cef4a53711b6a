// CMOS RTC, register by register, with a fake interrupt line and explicit virtual time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../src/core/engine.ts';
import { CmosRtc, RecordingIrq, rtcBaseSeconds } from '../../src/devices/index.ts';

const S = 1_000_000_000n;

function make(base: string, opts: { slew?: boolean } = {}) {
  const engine = new Engine();
  const irq = new RecordingIrq();
  const rtc = new CmosRtc({
    scheduler: engine,
    irq,
    baseSeconds: rtcBaseSeconds(base, 0n),
    lostTickPolicy: opts.slew ? 'slew' : 'discard',
  });
  const rd = (i: number) => (rtc.portWrite(0x70, 1, i), rtc.portRead(0x71, 1));
  const wr = (i: number, v: number) => (rtc.portWrite(0x70, 1, i), rtc.portWrite(0x71, 1, v));
  const at = (t: bigint) => engine.run(t);
  const time = () => [0, 2, 4, 6, 7, 8, 9, 0x32].map(rd);
  return { engine, irq, rtc, rd, wr, at, time };
}

test('reset values of registers A-D are 0x26, 0x02, 0x00, 0x80 (QEMU rtc_realizefn)', () => {
  const { rd } = make('2020-01-01T00:00:00');
  assert.deepEqual([rd(0x0a), rd(0x0b), rd(0x0c), rd(0x0d)], [0x26, 0x02, 0x00, 0x80]);
});

test('BCD time registers roll over midnight, month, year and century; day of week counts from Sunday=1', () => {
  const r = make('2019-12-31T23:59:59');
  // sec min hour dow dom mon year century; 2019-12-31 is a Tuesday (3)
  assert.deepEqual(r.time(), [0x59, 0x59, 0x23, 0x03, 0x31, 0x12, 0x19, 0x20]);
  r.at(S);
  assert.deepEqual(r.time(), [0x00, 0x00, 0x00, 0x04, 0x01, 0x01, 0x20, 0x20]);
  const c = make('2099-12-31T23:59:59');
  c.at(S);
  assert.deepEqual(c.time(), [0x00, 0x00, 0x00, 0x06, 0x01, 0x01, 0x00, 0x21]); // 2100-01-01 is a Friday (6)
});

test('binary mode (DM) encodes the same time as plain numbers', () => {
  const r = make('2019-12-31T23:59:59');
  r.wr(0x0b, 0x06);
  assert.deepEqual(r.time(), [59, 59, 23, 3, 31, 12, 19, 20]);
  r.at(S);
  assert.deepEqual(r.time(), [0, 0, 0, 4, 1, 1, 20, 20]);
});

test('12-hour mode: 11 PM has bit 7 set, midnight reads 12 AM, noon reads 12 PM, in BCD and binary', () => {
  const r = make('2020-01-01T23:59:59');
  r.wr(0x0b, 0x00); // 12-hour, BCD
  assert.equal(r.rd(4), 0x80 | 0x11);
  r.at(S);
  assert.equal(r.rd(4), 0x12); // 12 AM
  r.wr(0x0b, 0x04); // 12-hour, binary
  assert.equal(r.rd(4), 12);
  const n = make('2020-01-01T11:59:59');
  n.wr(0x0b, 0x04);
  assert.equal(n.rd(4), 11);
  n.at(S);
  assert.equal(n.rd(4), 0x80 | 12); // 12 PM
  n.wr(0x0b, 0x00);
  assert.equal(n.rd(4), 0x92);
});

test('UIP is set in the 244 µs before an update and clear again once the seconds have advanced', () => {
  const r = make('2020-01-01T00:00:00');
  const hold = 244_140n; // 8 cycles of 32.768 kHz, truncated to ns
  r.at(S - hold - 1n);
  assert.equal(r.rd(0x0a) & 0x80, 0);
  assert.equal(r.rd(0), 0x00);
  r.at(S - hold);
  assert.equal(r.rd(0x0a) & 0x80, 0x80);
  assert.equal(r.rd(0), 0x00, 'the old second is still visible during UIP');
  r.at(S);
  assert.equal(r.rd(0x0a) & 0x80, 0);
  assert.equal(r.rd(0), 0x01);
});

test('a guest that waits for UIP to clear and then reads the time gets the new second', () => {
  const r = make('2020-01-01T00:00:41');
  r.at(S - 100_000n); // inside the UIP window
  let t = r.engine.now;
  while (r.rd(0x0a) & 0x80) r.at((t += 10_000n)); // poll every 10 µs
  assert.ok(r.engine.now >= S && r.engine.now < S + 10_000n);
  assert.equal(r.rd(0), 0x42);
});

test('update-ended interrupt: UF and IRQF set once per second with UIE, register C clears on read and lowers the line', () => {
  const r = make('2020-01-01T00:00:00');
  r.wr(0x0b, 0x12); // UIE | 24h
  r.at(S - 1n);
  assert.equal(r.irq.level, false);
  r.at(S);
  assert.equal(r.irq.level, true);
  assert.equal(r.rd(0x0c), 0x90);
  assert.equal(r.irq.level, false);
  assert.equal(r.rd(0x0c), 0x00, 'read-to-clear');
  r.at(2n * S);
  assert.equal(r.rd(0x0c), 0x90);
});

test('UF is latched in C without UIE, and enabling UIE afterwards raises the interrupt at once', () => {
  const r = make('2020-01-01T00:00:00');
  r.at(S);
  assert.equal(r.irq.level, false);
  r.wr(0x0b, 0x12);
  assert.equal(r.irq.level, true);
  assert.equal(r.rd(0x0c), 0x90);
});

test('periodic interrupt rates follow rate select: 1024 Hz (6), 2 Hz (15), 8192 Hz (3), and rates 1-2 alias 8-9', () => {
  const cases: [number, bigint][] = [
    [0x26, 1024n],
    [0x2f, 2n],
    [0x23, 8192n],
    [0x21, 256n],
    [0x22, 128n],
  ];
  for (const [a, hz] of cases) {
    const r = make('2020-01-01T00:00:00');
    r.wr(0x0a, a);
    r.wr(0x0b, 0x42); // PIE
    r.at(S + 1n); // the n-th interrupt comes at n*period + 1 ns (periodic_timer_update)
    assert.equal(BigInt(r.irq.raises), hz, `rate select ${a & 15}`);
    assert.equal(r.rd(0x0c), 0xd0, 'IRQF | PF, and UF from the update cycle at 1 s');
  }
});

test('rate select 0 or PIE off means no periodic interrupt; PF is still not set without the timer', () => {
  const r = make('2020-01-01T00:00:00');
  r.wr(0x0a, 0x20);
  r.wr(0x0b, 0x42);
  r.at(S);
  assert.equal(r.irq.raises, 0);
  r.wr(0x0a, 0x26);
  r.wr(0x0b, 0x02);
  r.at(2n * S);
  assert.equal(r.irq.raises, 0);
});

test('alarm with "don\'t care" hours and minutes fires every minute at the alarm second', () => {
  const r = make('2020-01-01T00:00:00');
  r.wr(0x01, 0x05);
  r.wr(0x03, 0xff);
  r.wr(0x05, 0xff);
  r.wr(0x0b, 0x22); // AIE
  r.at(5n * S - 1n);
  assert.equal(r.irq.level, false);
  r.at(5n * S);
  assert.equal(r.irq.level, true);
  assert.equal(r.rd(0x0c) & 0xa0, 0xa0);
  r.at(64n * S);
  assert.equal(r.irq.level, false);
  r.at(65n * S);
  assert.equal(r.rd(0x0c) & 0xa0, 0xa0);
});

test("SET stops the clock and forces UIE off; clearing SET starts from the written time in the hidden clock's phase", () => {
  const r = make('2020-01-01T00:00:00');
  r.at(S / 4n);
  r.wr(0x0b, 0x92); // SET | UIE | 24h -> UIE dropped
  assert.equal(r.rd(0x0b), 0x82);
  r.wr(0x00, 0x30);
  r.wr(0x02, 0x15);
  r.at(5n * S);
  assert.equal(r.rd(0x00), 0x30, 'frozen while SET');
  r.wr(0x0b, 0x02); // at 5.0 s of the hidden clock: offset = 0 (get_guest_rtc_ns % 1 s)
  assert.equal(r.rd(0x02), 0x15);
  r.at(6n * S - 1n);
  assert.equal(r.rd(0x00), 0x30);
  r.at(6n * S);
  assert.equal(r.rd(0x00), 0x31);
});

test('divider reset (DV=11x) stops the clock; leaving it, the first update comes half a second later', () => {
  const r = make('2020-01-01T00:00:00');
  r.wr(0x0a, 0x66);
  r.at(10n * S);
  assert.equal(r.rd(0), 0x00);
  r.wr(0x0a, 0x26);
  r.at(10n * S + S / 2n - 1n);
  assert.equal(r.rd(0), 0x00);
  r.at(10n * S + S / 2n);
  assert.equal(r.rd(0), 0x01);
});

test('writing the time registers while running sets the clock', () => {
  const r = make('2020-01-01T00:00:00');
  r.wr(0x09, 0x24); // year 2024
  r.wr(0x08, 0x02);
  r.wr(0x07, 0x29); // 2024-02-29 (a Thursday)
  r.at(S);
  assert.deepEqual([r.rd(9), r.rd(8), r.rd(7)], [0x24, 0x02, 0x29]);
});

test('CMOS RAM bytes store any value; C and D are read-only; index port reads 0xff and masks to 7 bits; 0x37 aliases the century', () => {
  const r = make('2020-01-01T00:00:00');
  for (let i = 0x0e; i < 0x80; i++) if (i !== 0x32 && i !== 0x37) r.wr(i, (i * 7) & 0xff);
  for (let i = 0x0e; i < 0x80; i++) if (i !== 0x32 && i !== 0x37) assert.equal(r.rd(i), (i * 7) & 0xff);
  r.wr(0x0c, 0xff);
  r.wr(0x0d, 0x00);
  assert.equal(r.rd(0x0c), 0);
  assert.equal(r.rd(0x0d), 0x80);
  assert.equal(r.rtc.portRead(0x70, 1), 0xff);
  r.rtc.portWrite(0x70, 1, 0x80 | 0x40);
  assert.equal(r.rtc.portRead(0x71, 1), (0x40 * 7) & 0xff);
  assert.equal(r.rd(0x37), 0x20);
});

test('driftfix slew: periodic ticks the guest did not take are counted and reinjected one per acknowledgement', () => {
  const r = make('2020-01-01T00:00:00', { slew: true });
  r.wr(0x0a, 0x26);
  r.wr(0x0b, 0x42);
  const period = 976_562n; // 32 cycles of 32.768 kHz
  r.at(10n * period + 10n); // ten ticks, none acknowledged
  assert.equal(r.rtc.coalescedCount, 9);
  // The coalesced timer keeps retrying but the line is still busy; each ack + C read reinjects one.
  r.irq.ack();
  r.rd(0x0c);
  assert.equal(r.rtc.coalescedCount, 8);
  assert.equal(r.rtc.stats.reinjected, 1);
});

test('discard policy: missed periodic ticks are simply lost', () => {
  const r = make('2020-01-01T00:00:00');
  r.wr(0x0a, 0x26);
  r.wr(0x0b, 0x42);
  r.at(S);
  assert.equal(r.rtc.coalescedCount, 0);
  r.irq.ack();
  r.rd(0x0c);
  assert.equal(r.rtc.stats.reinjected, 0);
});

test('saveState/restore: a restored RTC reads the same time and fires the same interrupts', () => {
  const a = make('2020-06-01T12:00:00');
  a.wr(0x0b, 0x12);
  a.wr(0x40, 0x5a);
  a.at(S / 3n);
  const state = JSON.parse(JSON.stringify(a.rtc.saveState()));
  const b = make('1999-01-01T00:00:00');
  b.at(S / 3n);
  b.rtc.restore(state);
  assert.deepEqual(b.time(), a.time());
  assert.equal(b.rd(0x40), 0x5a);
  a.at(S);
  b.at(S);
  assert.equal(b.irq.level, true);
  assert.deepEqual(b.time(), a.time());
});

test('rtcBaseSeconds: utc, localtime and explicit dates, and a clear error for anything else', () => {
  assert.equal(rtcBaseSeconds('utc', 1_600_000_000_123_456_789n), 1_600_000_000n);
  assert.equal(rtcBaseSeconds('localtime', 1_600_000_000_000_000_000n, 3600), 1_600_003_600n);
  assert.equal(rtcBaseSeconds('2020-01-01', 0n), 1_577_836_800n);
  assert.throws(() => rtcBaseSeconds('yesterday', 0n), /invalid RTC base/);
});

test('clock=vm vs clock=host: on the VM clock the RTC stops during a pause and falls behind; on the host clock it keeps counting', () => {
  const engine = new Engine();
  let pausedNs = 0n;
  const vmClock = () => engine.now - pausedNs; // QEMU_CLOCK_VIRTUAL stops while the VM is stopped
  const base = rtcBaseSeconds('2020-01-01T00:00:00', 0n);
  const vm = new CmosRtc({ scheduler: engine, clock: vmClock, irq: new RecordingIrq(), baseSeconds: base });
  const host = new CmosRtc({ scheduler: engine, irq: new RecordingIrq(), baseSeconds: base });
  engine.run(10n * S);
  pausedNs += 30n * S; // a 30 s pause: the engine moves, the VM clock does not
  engine.run(40n * S);
  const sec = (r: CmosRtc) => (r.portWrite(0x70, 1, 0), r.portRead(0x71, 1));
  assert.equal(sec(vm), 0x10);
  assert.equal(sec(host), 0x40);
  assert.equal(host.guestRtcNs() - vm.guestRtcNs(), 30n * S);
});
