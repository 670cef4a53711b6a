// kernel/sched/clock.c on x86 (HAVE_UNSTABLE_SCHED_CLOCK): when "sched_clock: Marking stable" is
// printed and what its four numbers are. Expected numbers are worked by hand from the C.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SchedClock } from '../../src/guest/sched-clock.ts';
import { runGuest } from '../../src/cli/commands/guest.ts';

function fake() {
  const c = { raw: 0n, mono: 0n, log: [] as string[] };
  const sc = new SchedClock({ sched: () => c.raw, ktime: () => c.mono, printk: (l) => c.log.push(l) });
  return { c, sc };
}

test('Marking stable prints the last tick stamps, the init GTOD offset and the continuity offset', () => {
  const { c, sc } = fake();
  c.raw = 249_607_000n;
  c.mono = 248_150_194n;
  sc.init(); // __gtod_offset = raw - mono = 1456806
  c.raw = 463_841_125n;
  c.mono = 432_011_435n;
  sc.tick();
  c.raw = 470_000_000n; // later reads do not matter: the stamps do
  sc.initLate();
  // __sched_clock_offset = 432011435 + 1456806 - 463841125 = -30372884: this machine's own line
  assert.deepEqual(c.log, ['sched_clock: Marking stable (432011435, 1456806)->(463841125, -30372884)']);
  assert.equal(sc.stable, true);
  sc.tick(); // a stable sched_clock takes no stamps
  assert.equal(sc.tickRaw, 463_841_125n);
});

test('a clear before the late initcall means no line; after it, the work marks it unstable', () => {
  const a = fake();
  a.sc.init();
  a.sc.clear();
  a.sc.initLate();
  assert.deepEqual(a.c.log, []);
  const b = fake();
  b.sc.init();
  b.sc.initLate();
  b.c.raw = 5_000n;
  b.c.mono = 4_000n;
  b.sc.clear();
  assert.equal(b.sc.stable, false);
  assert.deepEqual(b.c.log.slice(1), [
    "TSC found unstable after boot, most likely due to broken BIOS. Use 'tsc=unstable'.",
    'sched_clock: Marking unstable (4000, 0)<-(5000, 0)',
  ]);
});

const line = (r: { boot_log: string[] }) => r.boot_log.find((l) => l.startsWith('sched_clock:'));
const nums = (l: string) => [...l.matchAll(/-?\d+/g)].map((m) => BigInt(m[0]));

test('guests print Marking stable unless their sched_clock was cleared first', () => {
  // kvm-clock with the stable bit (Firecracker), and a native TSC sched_clock (QEMU TCG)
  for (const profile of ['firecracker', 'qemu-tcg']) {
    const l = line(runGuest({ profile, kernel: 'distro', cmdline: '', host: {} }));
    assert.ok(l, profile);
    const [gtod, gtodOff, raw, off] = nums(l!);
    assert.equal(off, gtod! + gtodOff! - raw!, l);
  }
  // tsc=unstable with the native sched_clock: mark_tsc_unstable clears it
  assert.equal(line(runGuest({ profile: 'qemu-tcg', kernel: 'distro', cmdline: 'tsc=unstable', host: {} })), undefined);
  // ... but not with kvm-clock's paravirt sched_clock
  assert.ok(line(runGuest({ profile: 'firecracker', kernel: 'distro', cmdline: 'tsc=unstable', host: {} })));
  // kvmtool's Yocto guest: TSC calibration fails, "could not calculate TSC khz" clears it
  assert.equal(line(runGuest({ profile: 'kvmtool', kernel: 'yocto-qemux86', cmdline: '', host: {} })), undefined);
});

test('no TSC: jiffies-based sched_clock and GTOD both start at 0 (offset 0), refined-jiffies then runs 250 ns per jiffy ahead', async () => {
  // The structure of the recorded no-TSC QEMU TCG guest's line (test/fixtures/doctor/qemu-tcg-jiffies-only):
  // "sched_clock: Marking stable (1064018000, 0)->(1064000000, 18000)".
  const { Engine } = await import('../../src/core/engine.ts');
  const { bootGuest, DEFAULT_BOOT_PHASES: ph } = await import('../../src/guest/boot.ts');
  const { KERNEL_PRESETS } = await import('../../src/vmm/kernels.ts');
  const e = new Engine();
  const g = bootGuest({
    platform: {
      cpuid: { vendor: 'amd', tsc: false, tscDeadlineTimer: false, hypervisor: true, invariantTsc: false, tscAdjust: false, arat: false },
      devices: { pit: { speakerPort: true }, hpet: null, acpi: null, rtc: false, lapic: true },
      vcpus: 1,
      rdtsc: () => 0n,
      tscTrueHz: () => 0,
      pitRateRatio: 1,
      pioReadNs: 1500,
      mmioReadNs: 2000,
    },
    kernel: KERNEL_PRESETS.distro!,
    scheduler: e,
  });
  e.run(ph.schedClockLate + 1n);
  // Ticks start at x86_late_time_init (249.607 ms): the last before sched_clock_init_late (434.462 ms)
  // is jiffy 46 (433.607 ms), so tick_raw = 46 × 4 ms. clocksource_done_booting (309.322 ms, jiffy 14)
  // switches GTOD to refined-jiffies, 4000250 ns per jiffy (mult 1024064000 >> 8): 14 × 4 ms + 32 × 4.00025 ms.
  assert.equal(line({ boot_log: g.bootLog() }), 'sched_clock: Marking stable (184008000, 0)->(184000000, 8000)');
});

test('kvm-clock without the stable bit: the sched offset is still printed, sched_clock is never marked stable', async () => {
  const { Engine } = await import('../../src/core/engine.ts');
  const { bootVm, guestReport, kernelPreset, machineProfile } = await import('../../src/vmm/index.ts');
  const fc = machineProfile('firecracker');
  // KVM_FEATURE_CLOCKSOURCE_STABLE_BIT (24) withheld, as a VMM may do
  const profile = {
    ...fc,
    cpuid: (h: Parameters<typeof fc.cpuid>[0]) => {
      const c = fc.cpuid(h);
      return { ...c, kvm: { ...c.kvm!, features: (c.kvm!.features & ~(1 << 24)) >>> 0 } };
    },
  };
  const e = new Engine();
  const b = bootVm({ profile, kernel: kernelPreset('distro'), scheduler: e, kvmclockAtInitNs: 52_991_526n });
  e.run(b.kernelEntryAt + 2_000_000_000n);
  const log = guestReport(b).boot_log;
  assert.ok(log.includes('kvm-clock: using sched offset of 52991526 cycles'));
  assert.equal(line({ boot_log: log }), undefined);
  assert.equal(b.guest.schedClock.stable, false);
});
