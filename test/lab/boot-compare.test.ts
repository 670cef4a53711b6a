// The lab's boot comparison without QEMU: the guest model, given the device set of the QEMU command line
// the lab runs, against clock lines the real guests printed (a lab boot recorded on a loaded host, and the
// doctor's recording of a one-serial-port QEMU TCG guest). Every deterministic line must match as text.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { calibrateDelayLine, lpjFromKhz, pnpacpiDeviceName } from '../../src/guest/index.ts';
import {
  bootDifferences,
  compareBootLogs,
  comparableBootLines,
  LOAD_DEPENDENT_LINES,
  LOAD_DEPENDENT_NUMBERS,
  modelBootQemuTcg,
  qemuPcHpetTableAddress,
  qemuPcIsaSet,
  qemuPcPnpDevices,
  tscKhzFromLog,
} from '../../src/lab/index.ts';

const labFixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/lab-boot-loaded.json'), 'utf8')) as {
  qemu_args: string[];
  boot_log: string[];
  boot_log_slower: string[];
};
const doctorDmesg = readFileSync(join(import.meta.dirname, '../fixtures/doctor/qemu-tcg-pc/dmesg.txt'), 'utf8').split('\n');
// test/fixtures/doctor/README.md: the same kernel under -machine pc -accel tcg, console on one -serial, 256 MiB (its e820 map)
const DOCTOR_ARGS = ['-machine', 'pc', '-accel', 'tcg', '-m', '256', '-nodefaults', '-serial', 'stdio'];
const T0 = 1_795_795_010_000_000_000n;

test("pnpacpi numbers QEMU pc's ISA devices newest first: the lab's -device isa-serial is 00:00, the RTC 00:05", () => {
  const lab = qemuPcIsaSet(labFixture.qemu_args);
  assert.deepEqual(lab, { serials: 1, isaSerialDevices: 1, memoryMiB: 256 });
  assert.deepEqual(qemuPcPnpDevices(lab), ['COM2', 'KBD', 'MOU', 'FDC0', 'COM1', 'RTC']);
  // one serial port: the doctor's recording says rtc_cmos 00:04 and "found 5 devices"
  assert.deepEqual(qemuPcPnpDevices(qemuPcIsaSet(DOCTOR_ARGS)), ['KBD', 'MOU', 'FDC0', 'COM1', 'RTC']);
  assert.ok(doctorDmesg.some((l) => l.endsWith('pnp: PnP ACPI: found 5 devices')));
  assert.equal(pnpacpiDeviceName(5), '00:05');
  assert.equal(pnpacpiDeviceName(10), '00:0a'); // "%02x:%02x"
});

test('the HPET table moves by the 53-byte COM2 AML in the DSDT: 0x0FFE1A1D with one serial port, 0x0FFE1A52 with two', () => {
  assert.equal(qemuPcHpetTableAddress(qemuPcIsaSet(DOCTOR_ARGS)), 0x0ffe1a1d);
  assert.equal(qemuPcHpetTableAddress(qemuPcIsaSet(labFixture.qemu_args)), 0x0ffe1a52);
});

test('lab boot recorded on a loaded host: every deterministic clock line of the model equals the real one, in order', () => {
  const m = modelBootQemuTcg({ hostStartNs: T0, qemuArgs: labFixture.qemu_args, hostTscKhz: 2_596_140 });
  const c = compareBootLogs(labFixture.boot_log, m.boot_log);
  assert.equal(c.firstDifference, null);
  assert.equal(c.real.length, 23);
  // the four rtc_cmos lines and both ACPI HPET table lines are among the compared ones
  assert.equal(c.real.filter((l) => l.startsWith('rtc_cmos 00:05: ')).length, 4);
  assert.ok(c.real.includes('ACPI: Reserving HPET table memory at [mem 0xffe1a52-0xffe1a89]'));
  // what the loaded host changed is left out, each rule with its reason
  const left = labFixture.boot_log
    .map((l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, ''))
    .filter((l) => LOAD_DEPENDENT_LINES.some((r) => r.match.test(l)));
  assert.deepEqual(left, [
    'tsc: Unable to calibrate against PIT',
    'tsc: using HPET reference calibration',
    'tsc: Detected 2594.292 MHz processor',
  ]);
  assert.ok(c.real.includes('Calibrating delay loop (skipped), value calculated using timer frequency.. N BogoMIPS (lpj=N)'));
  for (const r of [...LOAD_DEPENDENT_LINES, ...LOAD_DEPENDENT_NUMBERS]) assert.ok(r.why.length > 40, String(r.match));
});

test('a slower boot on a busier host: the TSC refinement overtakes sched_clock_init_late, APIC calibration complains; still equal', () => {
  const m = modelBootQemuTcg({ hostStartNs: T0, qemuArgs: labFixture.qemu_args, hostTscKhz: 2_596_140 });
  const c = compareBootLogs(labFixture.boot_log_slower, m.boot_log);
  assert.equal(c.firstDifference, null);
  const i = labFixture.boot_log_slower.findIndex((l) => l.includes('Refined TSC'));
  assert.ok(i < labFixture.boot_log_slower.findIndex((l) => l.includes('sched_clock: Marking stable')));
});

test("the doctor's one-serial recording: the same model, given that command line's devices, prints its clock lines", () => {
  const m = modelBootQemuTcg({ hostStartNs: T0, qemuArgs: DOCTOR_ARGS, hostTscKhz: 2_596_136 });
  const c = compareBootLogs(doctorDmesg, m.boot_log);
  assert.equal(c.firstDifference, null);
  assert.ok(c.real.includes('rtc_cmos 00:04: alarms up to one day, y3k, 242 bytes nvram, hpet irqs'));
  assert.ok(c.real.includes('ACPI: HPET 0x000000000FFE1A1D 000038 (v01 BOCHS  BXPC     00000001 BXPC 00000001)'));
});

test('a missing or wrong deterministic line fails the comparison', () => {
  const m = modelBootQemuTcg({ hostStartNs: T0, qemuArgs: labFixture.qemu_args, hostTscKhz: 2_596_140 });
  // the model without the lab's device set: the old single rtc_cmos 00:04 line
  const plain = modelBootQemuTcg({ hostStartNs: T0, qemuArgs: DOCTOR_ARGS, hostTscKhz: 2_596_140 });
  assert.notEqual(compareBootLogs(labFixture.boot_log, plain.boot_log).firstDifference, null);
  const dropped = m.boot_log.filter((l) => !l.includes('registered as rtc0'));
  assert.deepEqual(compareBootLogs(labFixture.boot_log, dropped).firstDifference, {
    index: 16,
    real: 'rtc_cmos 00:05: registered as rtc0',
    model: 'rtc_cmos 00:05: setting system clock to T UTC (S)',
  });
  // a load-dependent line is left out; an unknown one is not
  const withLost = [...labFixture.boot_log, '[    1.376707] hpet: Lost 2 RTC interrupts'];
  assert.equal(compareBootLogs(withLost, m.boot_log).firstDifference, null);
  const withOther = [...labFixture.boot_log, '[    1.4] clocksource: Switched to clocksource hpet'];
  assert.notEqual(compareBootLogs(withOther, m.boot_log).firstDifference, null);
});

test('masked numbers: only the load-dependent ones', () => {
  assert.deepEqual(
    comparableBootLines([
      '[    1.2] sched_clock: Marking stable (1244096518, -38877025)->(1237523469, -32303976)',
      'clocksource: hpet: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 19112604467 ns',
      'clocksource: tsc: mask: 0xffffffffffffffff max_cycles: 0x256bebd7b28, max_idle_ns: 440795322263 ns',
    ]),
    [
      'sched_clock: Marking stable (N, N)->(N, N)',
      'clocksource: hpet: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 19112604467 ns',
      'clocksource: tsc: mask: 0xffffffffffffffff max_cycles: N, max_idle_ns: N ns',
    ],
  );
  assert.equal(tscKhzFromLog(labFixture.boot_log, 'detected'), 2_594_292);
  assert.equal(tscKhzFromLog(labFixture.boot_log, 'refined'), 2_596_121);
});

test("the model runs on the given TSC: this machine's kHz, not the profile's", () => {
  const m = modelBootQemuTcg({ hostStartNs: T0, qemuArgs: labFixture.qemu_args, hostTscKhz: 2_096_007 });
  assert.equal(tscKhzFromLog(m.boot_log, 'detected'), 2_096_007);
  assert.equal(tscKhzFromLog(m.boot_log, 'refined'), 2_096_007);
  // calibrate_delay: lpj_fine = 2096007·1000/250 = 8384028; BogoMIPS 8384028/2000 = 4192, (8384028/20) % 100 = 1
  assert.ok(
    m.boot_log.includes('Calibrating delay loop (skipped), value calculated using timer frequency.. 4192.01 BogoMIPS (lpj=8384028)'),
  );
});

test("calibrate_delay's line from the real guests' numbers: the recorded lpj and BogoMIPS follow from their tsc_khz", () => {
  // the lab's loaded boot detected 2594.292 MHz and printed 5188.58 BogoMIPS (lpj=10377168); the doctor's
  // kvmclock recording (firecracker-pvm) printed the preset variant for 2596.134 MHz
  assert.equal(
    calibrateDelayLine(null, lpjFromKhz(2_594_292, 250), 250),
    'Calibrating delay loop (skipped), value calculated using timer frequency.. 5188.58 BogoMIPS (lpj=10377168)',
  );
  assert.equal(
    calibrateDelayLine(lpjFromKhz(2_596_134, 250), 0, 250),
    'Calibrating delay loop (skipped) preset value.. 5192.26 BogoMIPS (lpj=10384536)',
  );
  assert.equal(calibrateDelayLine(null, null, 250), null);
});

test('lab boot names what the twin cannot remove, with the measured figures', () => {
  const d = bootDifferences({
    hostTsc: { khz: 2_596_140, source: 'dmesg' },
    modelKhz: 2_596_140,
    real_detected_khz: 2_594_413,
    real_refined_khz: 2_596_120,
    realOffset: -0.386,
    modelOffset: -0.195,
    predicted: -0.3861,
    rtcReadHostS: 11.52,
    modelReadHostS: 1.329,
  });
  assert.equal(d.length, 3);
  assert.match(d[0]!, /detected 2594413 kHz \(-665\.2 ppm from this machine's 2596140 kHz\)/);
  assert.match(d[1]!, /refinement gave 2596120 kHz \(-7\.7 ppm\)/);
  assert.match(d[2]!, /read the RTC 11\.520 s after QEMU started, the model at 1\.329 s.*gives -0\.386 s against the real -0\.386 s/);
  // nothing to explain when the calibrations hit the host's rate and the read instants are unknown
  const none = bootDifferences({
    hostTsc: { khz: 2_596_140, source: 'dmesg' },
    modelKhz: 2_596_140,
    real_detected_khz: 2_596_140,
    real_refined_khz: 2_596_140,
    realOffset: 0,
    modelOffset: 0,
    predicted: null,
    rtcReadHostS: null,
    modelReadHostS: null,
  });
  assert.deepEqual(none, []);
  const unread = bootDifferences({
    hostTsc: undefined,
    modelKhz: 2_596_136,
    real_detected_khz: null,
    real_refined_khz: null,
    realOffset: 0,
    modelOffset: 0,
    predicted: null,
    rtcReadHostS: null,
    modelReadHostS: null,
  });
  assert.deepEqual(unread, ["this machine's TSC frequency could not be read, so the model ran on the profile's 2596136 kHz"]);
});
