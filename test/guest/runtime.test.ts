// Guest clocks after boot: the watchdog, NTP discipline, steal in /proc/stat, the boot wall clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { NSEC_PER_SEC } from '../../src/core/time.ts';
import { bootVm, kernelPreset, machineProfile } from '../../src/vmm/index.ts';
import { DEFAULT_BOOT_PHASES } from '../../src/guest/boot.ts';
import { ADJ_NANO, ADJ_OFFSET, ADJ_STATUS, ADJ_TIMECONST, STA_NANO, STA_PLL } from '../../src/guest/ntp.ts';

const EPOCH = 1_767_225_600n * NSEC_PER_SEC;

test('the watchdog marks a TSC unstable when its rate drifts 2000 ppm from the calibration (HPET watchdog)', () => {
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile('qemu-tcg'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    tscRateChange: { atNs: 5n * NSEC_PER_SEC, ppm: 2000 },
  });
  e.run(4n * NSEC_PER_SEC);
  assert.equal(b.guest.currentClocksource(), 'tsc\n');
  e.run(8n * NSEC_PER_SEC);
  const log = b.guest.bootLog();
  assert.ok(
    log.includes("clocksource: timekeeping watchdog on CPU0: Marking clocksource 'tsc' as unstable because the skew is too large:"),
    log.join('\n'),
  );
  assert.ok(log.includes('tsc: Marking TSC unstable due to clocksource watchdog'));
  assert.equal(b.guest.currentClocksource(), 'hpet\n');
  assert.ok(!b.guest.availableClocksource().includes('tsc'));
});

test('a 500 ppm drift stays inside the watchdog margin (2 × 250 µs per 0.5 s): TSC kept', () => {
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile('qemu-tcg'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    tscRateChange: { atNs: 5n * NSEC_PER_SEC, ppm: 500 },
  });
  e.run(10n * NSEC_PER_SEC);
  assert.equal(b.guest.currentClocksource(), 'tsc\n');
  assert.ok(!b.guest.bootLog().some((l) => l.includes('unstable')));
});

test('kernel NTP discipline (ntpd-style PLL via adjtimex) converges a guest whose host crystal is 50 ppm fast', () => {
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile('firecracker'),
    kernel: kernelPreset('distro'),
    host: { ppm: 50 },
    scheduler: e,
    epochNs: EPOCH,
    updateIntervalNs: 1_000_000_000n,
    vcpuEntryIntervalNs: 1_000_000_000n,
  });
  e.run(b.kernelEntryAt + 2n * NSEC_PER_SEC);
  const g = b.guest;
  const offset = (): bigint => g.clockGettime('realtime') - (EPOCH + e.now);
  // free-running first: 100 s at +50 ppm gains ~5 ms
  const o0 = offset();
  e.run(e.now + 100n * NSEC_PER_SEC);
  const drift = Number(offset() - o0) / 100e3; // ppm
  assert.ok(Math.abs(drift - 50) < 1, `free-running drift ${drift} ppm`);
  g.adjtimex({ modes: ADJ_STATUS | ADJ_NANO | ADJ_TIMECONST, status: STA_PLL | STA_NANO, constant: 4 });
  const poll = 16n * NSEC_PER_SEC;
  for (let i = 0; i < 900; i++) {
    g.adjtimex({ modes: ADJ_OFFSET | ADJ_NANO, offset: -offset() });
    e.run(e.now + poll);
  }
  const tx = g.adjtimex({});
  const freqPpm = Number(tx.freq) / 65536;
  assert.ok(Math.abs(freqPpm + 50) < 0.5, `kernel frequency correction ${freqPpm} ppm, expected about -50`);
  assert.ok(Math.abs(Number(offset())) < 100_000, `offset ${offset()} ns after 4 h`);
});

test('steal time from the host (vCPU threads runnable 25% of the time) appears in the steal column of /proc/stat', () => {
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile('firecracker'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    vcpus: 1,
    stealFraction: 0.25,
    cpuMode: () => 'user',
  });
  e.run(b.kernelEntryAt + 1n * NSEC_PER_SEC);
  const before = b.guest.procStat().split('\n')[1]!.split(' ').map(Number);
  e.run(e.now + 20n * NSEC_PER_SEC);
  const after = b.guest.procStat().split('\n')[1]!.split(' ').map(Number);
  const user = after[1]! - before[1]!;
  const steal = after[8]! - before[8]!;
  assert.ok(Math.abs(steal - 500) <= 10, `steal ${steal} ticks of 2000`);
  assert.ok(Math.abs(user + steal - 2000) <= 5, `user ${user} + steal ${steal}`);
  assert.match(b.guest.procStat(), /^cpu {2}\d+ 0 0 0 0 0 0 \d+ 0 0\ncpu0 /);
});

test('without steal time (kernel without KVM_GUEST) the steal column stays 0', () => {
  const e = new Engine();
  const b = bootVm({ profile: machineProfile('kvmtool'), kernel: kernelPreset('yocto-qemux86'), scheduler: e, stealFraction: 0.25 });
  e.run(b.kernelEntryAt + 5n * NSEC_PER_SEC);
  assert.equal(b.guest.procStat().split('\n')[0]!.split(' ')[9], '0');
});

test('boot wall clock: ns precision from the kvmclock record, whole seconds from the CMOS RTC', () => {
  const e = new Engine();
  const fc = bootVm({
    profile: machineProfile('firecracker'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    epochNs: EPOCH + 123_456_789n,
  });
  // read_persistent_wall_and_boot_offset() runs in timekeeping_init()
  const tkInit = DEFAULT_BOOT_PHASES.timekeepingInit;
  e.run(fc.kernelEntryAt + tkInit + 1n);
  assert.equal(fc.guest.wallClockSource, 'kvmclock');
  // the host's own CLOCK_REALTIME at that moment (its TSC mult is not exact, so it is not true time)
  const hostReal = fc.vm.kvm!.host.realtimeNsAt(fc.vm.hostTsc());
  const d = fc.guest.bootWallNs - hostReal;
  assert.ok(d >= -10n && d <= 10n, `kvmclock wall ${d} ns from the host's CLOCK_REALTIME`);
  assert.notEqual(fc.guest.bootWallNs % NSEC_PER_SEC, 0n);
  const e2 = new Engine();
  const kt = bootVm({
    profile: machineProfile('kvmtool'),
    kernel: kernelPreset('yocto-qemux86'),
    scheduler: e2,
    epochNs: EPOCH + 123_456_789n,
  });
  e2.run(kt.kernelEntryAt + tkInit + 1n);
  assert.equal(kt.guest.wallClockSource, 'cmos');
  assert.equal(kt.guest.bootWallNs % NSEC_PER_SEC, 0n);
  const lag = EPOCH + 123_456_789n + kt.kernelEntryAt + tkInit - kt.guest.bootWallNs;
  assert.ok(lag >= 0n && lag < NSEC_PER_SEC, `CMOS lag ${lag}`);
});

test('timekeeper: MONOTONIC_RAW follows the clocksource, settimeofday steps REALTIME but not MONOTONIC', () => {
  const e = new Engine();
  const b = bootVm({ profile: machineProfile('qemu-kvm'), kernel: kernelPreset('distro'), scheduler: e, epochNs: EPOCH });
  e.run(b.kernelEntryAt + 2n * NSEC_PER_SEC);
  const g = b.guest;
  const m0 = g.clockGettime('monotonic');
  const r0 = g.clockGettime('monotonic_raw');
  e.run(e.now + 10n * NSEC_PER_SEC);
  const dm = g.clockGettime('monotonic') - m0;
  const dr = g.clockGettime('monotonic_raw') - r0;
  assert.ok(dm > 9_999_990_000n && dm < 10_000_010_000n, `monotonic advanced ${dm}`);
  assert.ok(dr > 9_999_990_000n && dr < 10_000_010_000n, `raw advanced ${dr}`);
  const mBefore = g.clockGettime('monotonic');
  g.settimeofday(EPOCH + 1_000n * NSEC_PER_SEC);
  const rAfter = g.clockGettime('realtime');
  assert.ok(rAfter >= EPOCH + 1_000n * NSEC_PER_SEC && rAfter < EPOCH + 1_000n * NSEC_PER_SEC + 1_000n);
  assert.ok(g.clockGettime('monotonic') - mBefore < 1_000n);
});

test('lost ticks: a jiffies-clocked guest whose vCPU runs half of every 100 ms loses the coalesced LAPIC ticks; a TSC guest does not', () => {
  const run = (profile: string, kernel: string, cmdline = '') => {
    const e = new Engine();
    const b = bootVm({
      profile: machineProfile(profile),
      kernel: kernelPreset(kernel),
      cmdline,
      scheduler: e,
      deschedule: { periodNs: 100_000_000n, runNs: 50_000_000n },
    });
    e.run(b.kernelEntryAt + 2n * NSEC_PER_SEC);
    const m0 = b.guest.clockGettime('monotonic');
    e.run(e.now + 20n * NSEC_PER_SEC);
    return { g: b.guest, advanced: Number(b.guest.clockGettime('monotonic') - m0) / 1e9 };
  };
  // 12.5 ticks handled while running + 1 coalesced tick per 100 ms window: about 13.5/25 of true time
  const yocto = run('kvmtool', 'yocto-qemux86');
  assert.equal(yocto.g.currentClocksource(), 'refined-jiffies\n');
  assert.ok(yocto.advanced > 10.2 && yocto.advanced < 11.4, `jiffies guest advanced ${yocto.advanced} s in 20 s`);
  assert.ok(yocto.g.ticksLost > 2000);
  // the PIT in KVM's reinject mode delivers the missed ticks afterwards: nothing lost
  const pit = run('kvmtool', 'yocto-qemux86', 'nolapic');
  assert.equal(pit.g.clockeventDevice(), 'pit\n');
  assert.ok(Math.abs(pit.advanced - 20) < 0.1, `PIT-ticked guest advanced ${pit.advanced} s`);
  // a continuous clocksource keeps time whatever happens to the tick
  const fc = run('firecracker', 'distro');
  assert.ok(Math.abs(fc.advanced - 20) < 1e-3, `tsc guest advanced ${fc.advanced} s`);
});

test('standalone timekeeper: without NTP it runs at the rounded mult (6462379 >> 24), 73 ppb slow at 2,596,136 kHz', async () => {
  const { standaloneTimekeeper } = await import('../../src/guest/timekeeper.ts');
  let now = 0n; // ns of true time
  const khz = 2_596_136n;
  const cycles = (): bigint => (now * khz) / 1_000_000n;
  const tk = standaloneTimekeeper({ name: 'tsc', read: cycles, freq: 2_596_136, scale: 1000, wallNs: EPOCH });
  for (let i = 0; i < 3600; i++) {
    now += NSEC_PER_SEC;
    tk.advance();
  }
  // the kernel's own conversion of the same cycle count: cycles * mult >> shift
  const expected = (cycles() * 6_462_379n) >> 24n;
  const got = tk.get('monotonic');
  assert.ok(got - expected >= -2n && got - expected <= 2n, `timekeeper ${got} vs cyc2ns ${expected}`);
  assert.ok(now - got > 260_000n && now - got < 270_000n, `${now - got} ns behind true time after 1 h`);
  assert.equal(tk.get('realtime') - tk.get('monotonic'), EPOCH);
});

test('adjtimex: frequency clamps at ±500 ppm, ADJ_SETOFFSET steps REALTIME only, adjtime slews at most 500 µs per second', async () => {
  const { standaloneTimekeeper } = await import('../../src/guest/timekeeper.ts');
  const { ADJ_FREQUENCY, ADJ_SETOFFSET, ADJ_OFFSET_SINGLESHOT } = await import('../../src/guest/ntp.ts');
  let now = 0n;
  const tk = standaloneTimekeeper({ name: 'kvm-clock', read: () => now, freq: 1_000_000_000, wallNs: EPOCH });
  // freq is ppm << 16; 600 ppm asks for more than MAXFREQ
  assert.equal(tk.adjtimex({ modes: ADJ_FREQUENCY, freq: 600 * 65536 }).freq, 500n * 65536n);
  assert.equal(tk.adjtimex({ modes: ADJ_FREQUENCY, freq: -600 * 65536 }).freq, -500n * 65536n);
  tk.adjtimex({ modes: ADJ_FREQUENCY, freq: 0 });
  const m0 = tk.get('monotonic');
  tk.adjtimex({ modes: ADJ_SETOFFSET, setOffsetNs: 3n * NSEC_PER_SEC });
  assert.equal(tk.get('realtime') - tk.get('monotonic'), EPOCH + 3n * NSEC_PER_SEC);
  assert.equal(tk.get('monotonic'), m0);
  // adjtime(+2 ms): from the next second_overflow on, 500 µs per second for 4 seconds
  tk.adjtimex({ modes: ADJ_OFFSET_SINGLESHOT, offset: 2000 });
  const r0 = tk.get('realtime');
  for (let s = 1; s <= 6; s++) {
    for (let t = 0; t < 250; t++) {
      now += 4_000_000n;
      tk.advance();
    }
    const gained = tk.get('realtime') - r0 - BigInt(s) * NSEC_PER_SEC;
    const want = BigInt(Math.min(Math.max(s - 1, 0), 4)) * 500_000n;
    assert.ok(gained - want > -20_000n && gained - want < 20_000n, `after ${s} s slewed ${gained} ns, expected ≈ ${want}`);
  }
});

test('NtpKernelClient: steps a 2 s error away at once, then the kernel PLL pulls a +50 ppm guest in', async () => {
  const { NtpKernelClient } = await import('../../src/guest/ntp-client.ts');
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile('qemu-kvm'),
    kernel: kernelPreset('distro'),
    host: { ppm: 50 },
    scheduler: e,
    epochNs: EPOCH - 2n * NSEC_PER_SEC,
    updateIntervalNs: NSEC_PER_SEC,
    vcpuEntryIntervalNs: NSEC_PER_SEC,
  });
  e.run(b.kernelEntryAt + 2n * NSEC_PER_SEC);
  const g = b.guest;
  const client = new NtpKernelClient({
    scheduler: e,
    adjtimex: (t) => g.adjtimex(t),
    measure: () => ({ offsetNs: EPOCH + e.now - g.clockGettime('realtime'), delayNs: 200_000n }),
    pollExp: 4,
  });
  client.start();
  assert.equal(client.steps, 1);
  e.run(e.now + 6n * 3600n * NSEC_PER_SEC);
  const off = g.clockGettime('realtime') - (EPOCH + e.now);
  assert.ok(off > -100_000n && off < 100_000n, `offset ${off} ns after 6 h`);
  assert.ok(Math.abs(g.timekeeper.ntp.freqPpm() + 50) < 0.5, `freq ${g.timekeeper.ntp.freqPpm()} ppm`);
});
