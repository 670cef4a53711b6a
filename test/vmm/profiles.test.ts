// What each machine profile and kernel preset boot into (issue 4 must-shows), and the options that change it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runGuest } from '../../src/cli/commands/guest.ts';
import { InputError } from '../../src/core/errors.ts';

const boot = (profile: string, kernel = 'distro', cmdline = '', tscKhz = 2_596_136) =>
  runGuest({ profile, kernel, cmdline, host: { tscKhz } });

test('KVM guest with invariant TSC on a 2,596,136 kHz host: the lines real Linux prints, kvm-clock then tsc', () => {
  const r = boot('firecracker');
  const log = r.boot_log;
  for (const line of [
    'kvm-clock: Using msrs 4b564d01 and 4b564d00',
    'clocksource: kvm-clock: mask: 0xffffffffffffffff max_cycles: 0x1cd42e4dffb, max_idle_ns: 881590591483 ns',
    'tsc: Detected 2596.136 MHz processor',
    'clocksource: tsc: mask: 0xffffffffffffffff max_cycles: 0x256bfa33b32, max_idle_ns: 440795297408 ns',
  ])
    assert.ok(log.includes(line), line);
  const switches = log.filter((l) => l.startsWith('clocksource: Switched'));
  assert.deepEqual(switches, ['clocksource: Switched to clocksource kvm-clock', 'clocksource: Switched to clocksource tsc']);
  assert.equal(r.available_clocksource, 'tsc kvm-clock \n');
  assert.equal(r.current_clocksource, 'tsc\n');
});

test('kvmtool + yocto-qemux86 shows only refined-jiffies jiffies: no kvm-clock, TSC calibration fails', () => {
  const r = boot('kvmtool', 'yocto-qemux86');
  assert.equal(r.available_clocksource, 'refined-jiffies jiffies \n');
  assert.equal(r.current_clocksource, 'refined-jiffies\n');
  assert.ok(r.boot_log.includes('tsc: Fast TSC calibration failed'));
  assert.ok(r.boot_log.includes('tsc: Unable to calibrate against PIT'));
  assert.ok(r.boot_log.includes('tsc: No reference (HPET/PMTIMER) available'));
  assert.ok(r.boot_log.includes('tsc: Marking TSC unstable due to could not calculate TSC khz'));
  assert.equal(r.tick_mode, 'periodic');
});

test('a distro kernel under kvmtool gets kvm-clock (and the TSC frequency from it)', () => {
  const r = boot('kvmtool', 'distro');
  assert.ok(r.available_clocksource.split(' ').includes('kvm-clock'));
  assert.ok(r.boot_log.includes('tsc: Detected 2596.136 MHz processor'));
});

test('qemu-tcg: no KVM leaves, Fast TSC calibration using PIT, registers tsc, hpet and acpi_pm', () => {
  const r = boot('qemu-tcg');
  assert.ok(r.boot_log.includes('tsc: Fast TSC calibration using PIT'));
  assert.ok(!r.boot_log.some((l) => l.includes('kvm-clock')));
  assert.ok(r.boot_log.some((l) => l.startsWith('tsc: Refined TSC clocksource calibration: 2596.136 MHz')));
  assert.equal(r.available_clocksource, 'tsc hpet acpi_pm \n');
  assert.equal(r.wall_clock_source, 'cmos');
});

test('qemu-kvm without invariant TSC keeps kvm-clock at rating 400 and shows the classic four', () => {
  const r = boot('qemu-kvm-noinvtsc');
  assert.equal(r.available_clocksource, 'kvm-clock tsc hpet acpi_pm \n');
  assert.equal(r.current_clocksource, 'kvm-clock\n');
  assert.equal(r.clocksources.find((c) => c.name === 'kvm-clock')!.rating, 400);
});

test('kvm-clock rating drops to 299 with constant+nonstop TSC', () => {
  assert.equal(boot('qemu-kvm').clocksources.find((c) => c.name === 'kvm-clock')!.rating, 299);
});

test('command line: clocksource=hpet, tsc=unstable, hpet=disable, no-kvmclock, nohz/highres off', () => {
  assert.equal(boot('qemu-kvm', 'distro', 'clocksource=hpet').current_clocksource, 'hpet\n');
  const unstable = boot('qemu-kvm', 'distro', 'tsc=unstable');
  assert.ok(unstable.boot_log.includes('tsc: Marking TSC unstable due to boot parameter'));
  assert.equal(unstable.current_clocksource, 'kvm-clock\n');
  assert.ok(!unstable.available_clocksource.includes('tsc'));
  assert.ok(!boot('qemu-kvm', 'distro', 'hpet=disable').available_clocksource.includes('hpet'));
  const nokvm = boot('firecracker', 'distro', 'no-kvmclock');
  assert.ok(!nokvm.available_clocksource.includes('kvm-clock'));
  assert.ok(nokvm.boot_log.includes('tsc: Fast TSC calibration using PIT'));
  const periodic = boot('firecracker', 'distro', 'nohz=off highres=off');
  assert.equal(periodic.tick_mode, 'periodic');
  assert.equal(periodic.available_clocksource, 'tsc kvm-clock refined-jiffies jiffies \n');
});

test('vDSO: TSC and stable pvclock read in userspace; jiffies and no-kvmclock-vsyscall fall back to the syscall', () => {
  const mono = (r: ReturnType<typeof boot>) => r.vdso.find((v) => v.clock === 'CLOCK_MONOTONIC')!;
  assert.equal(mono(boot('firecracker')).path, 'vdso');
  assert.equal(mono(boot('qemu-kvm-noinvtsc')).path, 'vdso');
  assert.equal(mono(boot('qemu-kvm-noinvtsc', 'distro', 'no-kvmclock-vsyscall')).path, 'syscall');
  const y = mono(boot('kvmtool', 'yocto-qemux86'));
  assert.equal(y.path, 'syscall');
  assert.ok(y.ns > mono(boot('firecracker')).ns);
});

test('bad input is an InputError naming the option', () => {
  assert.throws(
    () => boot('nope'),
    (e: unknown) => e instanceof InputError && e.where === '--profile',
  );
  assert.throws(
    () => boot('firecracker', 'nope'),
    (e: unknown) => e instanceof InputError && e.where === '--kernel',
  );
  assert.throws(
    () => boot('firecracker', 'distro', 'console="ttyS0'),
    (e: unknown) => e instanceof InputError && e.where === '--cmdline',
  );
  assert.throws(
    () => boot('firecracker', 'distro', '', 0),
    (e: unknown) => e instanceof InputError && e.where === '--host-tsc-khz',
  );
});

test('runtime switching through current_clocksource, and clocksource=tsc on a guest without invariant TSC', () => {
  const r = boot('qemu-kvm-noinvtsc', 'distro', 'clocksource=tsc');
  assert.equal(r.current_clocksource, 'tsc\n');
  assert.ok(r.boot_log.includes('clocksource: Switched to clocksource tsc'));
});

test('echo NAME > current_clocksource switches at once; an unknown name changes nothing', async () => {
  const { Engine } = await import('../../src/core/engine.ts');
  const { bootVm, machineProfile, kernelPreset } = await import('../../src/vmm/index.ts');
  const e = new Engine();
  const b = bootVm({ profile: machineProfile('qemu-kvm'), kernel: kernelPreset('distro'), scheduler: e });
  e.run(b.kernelEntryAt + 3_000_000_000n);
  const g = b.guest;
  assert.equal(g.currentClocksource(), 'tsc\n');
  g.writeCurrentClocksource('hpet\n');
  assert.equal(g.currentClocksource(), 'hpet\n');
  assert.equal(g.bootLog().at(-1), 'clocksource: Switched to clocksource hpet');
  g.writeCurrentClocksource('nonexistent');
  assert.equal(g.currentClocksource(), 'tsc\n');
  assert.equal(g.availableClocksource(), 'tsc kvm-clock hpet acpi_pm \n');
});

test('cloud-hypervisor at 2,904,000 kHz: the kvm-clock and tsc lines of a published Cloud Hypervisor boot log', async () => {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const real = readFileSync(join(import.meta.dirname, '../fixtures/doctor/cloud-hypervisor-kvm/dmesg.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/^\[ *[\d.]+\] /, ''))
    // "kvm-clock: cpu 0, msr …, primary cpu clock" is a pre-5.19 kernel's line; the sched offset depends on that boot
    .filter((l) => /^(kvm-clock: Using|clocksource: kvm-clock|tsc: Detected)/.test(l));
  const r = boot('cloud-hypervisor', 'distro', '', 2_904_000);
  for (const l of real) assert.ok(r.boot_log.includes(l), l);
  assert.equal(real.length, 3);
  assert.equal(r.available_clocksource, 'tsc kvm-clock acpi_pm \n');
});

test('kvmclock_at_init: the guest prints exactly the kvm-clock reading it was set up at', () => {
  // this machine's own line: "kvm-clock: using sched offset of 52991526 cycles"
  for (const ns of [52_991_526n, 1n, 1_000_000_007n]) {
    const r = runGuest({ profile: 'firecracker', kernel: 'distro', cmdline: '', host: { tscKhz: 2_596_134 }, kvmclockAtInitNs: ns });
    assert.ok(r.boot_log.includes(`kvm-clock: using sched offset of ${ns} cycles`), `${ns}: ${r.boot_log[2]}`);
  }
  // without it, the profile's firmware time: 52 ms for Firecracker, read through kvm-clock's
  // 32.32 scale, which truncates (52000000 ns of TSC reads as 51999999)
  assert.ok(boot('firecracker').boot_log.includes('kvm-clock: using sched offset of 51999999 cycles'));
});
