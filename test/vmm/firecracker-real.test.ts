// The firecracker profile against this workplace's own machine (a real Firecracker KVM guest,
// Linux 6.18): clock boot lines and sysfs texts recorded in test/fixtures/guest/firecracker-6.18.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runGuest } from '../../src/cli/commands/guest.ts';

const dir = join(import.meta.dirname, '../fixtures/guest/firecracker-6.18');
const fixture = (f: string): string => readFileSync(join(dir, f), 'utf8');

// Lines in the recorded grep that the model does not produce (not timekeeping, or not modelled).
const NOT_MODELLED = [/^\[Firmware Bug\]/, /^Timer migration/, /^posixtimers/, /^acpi PNP/, /^PTP clock/, /^clk:/];
// The four sched_clock numbers depend on this boot's lost jiffies (docs/fidelity.md, guest section).
const sched = (l: string): string =>
  l.replace(/^sched_clock: Marking stable \(-?\d+, -?\d+\)->\(-?\d+, -?\d+\)$/, 'sched_clock: Marking stable (N, N)->(N, N)');

test('firecracker at 2596134 kHz prints the clock lines this 6.18 Firecracker guest printed, in order', () => {
  // kvm-clock read 52991526 ns at kvmclock_init on this boot (its "using sched offset" line)
  const r = runGuest({ profile: 'firecracker', kernel: 'distro', cmdline: '', host: { tscKhz: 2_596_134 }, kvmclockAtInitNs: 52_991_526n });
  const real = fixture('dmesg-clock-lines.txt')
    .trim()
    .split('\n')
    .filter((l) => !NOT_MODELLED.some((re) => re.test(l)));
  const model = r.boot_log.filter((l) => /clock|tsc|hpet|timer/i.test(l));
  assert.deepEqual(model.map(sched), real.map(sched));
});

test('firecracker sysfs texts are byte-exact: available, current clocksource and clockevent device', () => {
  const r = runGuest({ profile: 'firecracker', kernel: 'distro', cmdline: '', host: { tscKhz: 2_596_134 } });
  assert.equal(r.available_clocksource, fixture('available_clocksource'));
  assert.equal(r.current_clocksource, fixture('current_clocksource'));
  assert.equal(r.clockevent_device, fixture('clockevent0_current_device'));
});

test('the recorded CPU flags are what the profile offers: constant_tsc, nonstop_tsc, tsc_known_freq, tsc_deadline_timer, tsc_adjust', () => {
  const flags = fixture('cpuinfo-flags.txt').split(/\s+/);
  for (const f of ['constant_tsc', 'nonstop_tsc', 'tsc_known_freq', 'tsc_deadline_timer', 'tsc_adjust', 'hypervisor'])
    assert.ok(flags.includes(f), f);
});
