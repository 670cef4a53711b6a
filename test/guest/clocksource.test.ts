// Registration arithmetic against numbers real kernels printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clocksourceMask, U64_MAX } from '../../src/core/u64.ts';
import { Clocksource, clocksourceUpdateFreqScale, CLOCK_SOURCE_IS_CONTINUOUS } from '../../src/guest/clocksource.ts';
import { jiffiesClocksource, refinedJiffiesClocksource } from '../../src/guest/jiffies.ts';
import { pvclockTscKhz } from '../../src/guest/kvmclock.ts';

function registered(name: string, mask: bigint, scale: number, freq: number): Clocksource {
  const cs = new Clocksource({ name, rating: 1, mask, flags: CLOCK_SOURCE_IS_CONTINUOUS, read: () => 0n });
  clocksourceUpdateFreqScale(cs, scale, freq);
  return cs;
}

test('tsc at 2,596,136 kHz: the line real Linux prints (issue 4)', () => {
  assert.equal(
    registered('tsc', U64_MAX, 1000, 2_596_136).registerLine(),
    'clocksource: tsc: mask: 0xffffffffffffffff max_cycles: 0x256bfa33b32, max_idle_ns: 440795297408 ns',
  );
});

test('kvm-clock (1 GHz): the line real Linux prints', () => {
  assert.equal(
    registered('kvm-clock', U64_MAX, 1, 1_000_000_000).registerLine(),
    'clocksource: kvm-clock: mask: 0xffffffffffffffff max_cycles: 0x1cd42e4dffb, max_idle_ns: 881590591483 ns',
  );
});

test('tsc-early at 2,596,134 kHz: the line this Firecracker 6.18 guest printed', () => {
  assert.equal(
    registered('tsc-early', U64_MAX, 1000, 2_596_134).registerLine(),
    'clocksource: tsc-early: mask: 0xffffffffffffffff max_cycles: 0x256bf8268dd, max_idle_ns: 440795235267 ns',
  );
});

test('hpet (100 MHz, 32-bit) and acpi_pm (3.579545 MHz, 24-bit) as QEMU guests print them', () => {
  assert.equal(
    registered('hpet', clocksourceMask(32), 1, 100_000_000).registerLine(),
    'clocksource: hpet: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 19112604467 ns',
  );
  assert.equal(
    registered('acpi_pm', clocksourceMask(24), 1, 3_579_545).registerLine(),
    'clocksource: acpi_pm: mask: 0xffffff max_cycles: 0xffffff, max_idle_ns: 2085701024 ns',
  );
});

test('jiffies and refined-jiffies at HZ=250: the lines this 6.18 guest printed', () => {
  const j = jiffiesClocksource(250, () => 0n);
  const rj = refinedJiffiesClocksource(250, 1_193_182, () => 0n);
  clocksourceUpdateFreqScale(j, 0, 0);
  clocksourceUpdateFreqScale(rj, 0, 0);
  assert.equal(
    rj.registerLine(),
    'clocksource: refined-jiffies: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 7645519600211568 ns',
  );
  assert.equal(j.registerLine(), 'clocksource: jiffies: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 7645041785100000 ns');
});

test("pvclock_tsc_khz round-trips KVM's scale for an even kHz and loses one kHz for an odd one", () => {
  // KVM's kvmclock scale for 2,596,136 kHz (recorded on this project's kvm-pvm host): mul 3308738291, shift -1
  assert.equal(pvclockTscKhz({ tscToSystemMul: 3308738291, tscShift: -1 }), 2_596_136);
  // 2,596,135 kHz: tps = 1298067500 after the >>1; KVM's mul = floor(2^32 * 1e9 / 1298067500)
  const mul = Number((1_000_000_000n << 32n) / 1_298_067_500n);
  assert.equal(pvclockTscKhz({ tscToSystemMul: mul, tscShift: -1 }), 2_596_134);
});
