// Guest clocks after boot: the watchdog, NTP discipline, steal in /proc/stat, the boot wall clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { NSEC_PER_SEC } from '../../src/core/time.ts';
import { bootVm, kernelPreset, machineProfile } from '../../src/vmm/index.ts';
import type { KvmPit } from '../../src/hypervisor/index.ts';
import { DEFAULT_BOOT_PHASES } from '../../src/guest/boot.ts';
import { ADJ_NANO, ADJ_OFFSET, ADJ_STATUS, ADJ_TIMECONST, STA_NANO, STA_PLL } from '../../src/guest/ntp.ts';

const EPOCH = 1_767_225_600n * NSEC_PER_SEC;
// Hand model of the stated formulas (not the code under test):
// - a standalone VM's host TSC (src/vmm/machine.ts, the crystal of src/core/oscillator.ts): counts from 1 h of
//   host uptime at VM creation (t = 0); phase(t) = t + t × ppb / 10^9 rounded to the ns (the 2^-64 rate is
//   exact enough for these t), cycles(t) = floor(phase(t) × 2,596,136 kHz / 10^6);
// - the guest's tsc clocksource for 2,596,136 kHz: mult 6,462,379, shift 24 (clocksource_register_khz, u64.test.ts).
//   Without NTP the timekeeper adds cycles × mult to a shifted-ns sum and floors once per read, so an advance of
//   c cycles reads as floor(c × mult / 2^24) or one more, depending on the sub-ns remainder already held.
const hostCycles = (t: bigint, ppb = 0n): bigint => ((t + (t * ppb + 500_000_000n) / 1_000_000_000n) * 2_596_136n) / 1_000_000n;
const tscNs = (cycles: bigint): bigint => (cycles * 6_462_379n) >> 24n;
const floorOrNext = (got: bigint, floor: bigint): boolean => got === floor || got === floor + 1n;
// The free-running guest rate at a 50 ppm crystal: (1 + 50e-6) × 6,462,379 × 2,596,136 / (2^24 × 10^6) − 1
// = 49.926536 ppm (the mult is 73.46 ppb slow); the kernel frequency that cancels it is −e/(1 + e) = −49.924044 ppm.
const FREE_RUNNING_PPM = (1.00005 * (6_462_379 * 2_596_136)) / (2 ** 24 * 1e6) - 1;
const CANCELLING_FREQ_PPM = (1 / (1 + FREE_RUNNING_PPM) - 1) * 1e6;

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
  // Free-running first: kernel entry at 52 ms (firecracker) + 2 s = 2,052,000,000 ns, then 100 s. The host TSC
  // moves from 5,327,537,435 to 264,954,118,115 cycles: 259,626,580,680, which the tsc clocksource reads as
  // 100,004,992,653.62 ns: the guest gains 4,992,653 ns (or 4,992,654 with the remainder it held).
  const o0 = offset();
  e.run(e.now + 100n * NSEC_PER_SEC);
  const t0 = 2_052_000_000n;
  const cycles = hostCycles(t0 + 100n * NSEC_PER_SEC, 50_000n) - hostCycles(t0, 50_000n);
  assert.equal(cycles, 259_626_580_680n);
  assert.ok(floorOrNext(offset() - o0 + 100n * NSEC_PER_SEC, tscNs(cycles)), `gained ${offset() - o0} ns`);
  assert.equal(tscNs(cycles) - 100n * NSEC_PER_SEC, 4_992_653n);
  g.adjtimex({ modes: ADJ_STATUS | ADJ_NANO | ADJ_TIMECONST, status: STA_PLL | STA_NANO, constant: 4 });
  const poll = 16n * NSEC_PER_SEC;
  for (let i = 0; i < 900; i++) {
    g.adjtimex({ modes: ADJ_OFFSET | ADJ_NANO, offset: -offset() });
    e.run(e.now + poll);
  }
  // The PLL's state after 4 h is not derivable by hand; its mechanism bounds it. The frequency converges on
  // CANCELLING_FREQ_PPM; it can be off by the readout's truncation to 2^-16 ppm (1.5e-5), one poll's kick from an
  // offset the size of the dither below (155 ns × 16 s × 2^-16 /s^2 = 0.038 ns/s: 3.8e-5 ppm), and what is left of
  // the transient: with time constant 4 the linearised loop's roots (s^2 + s/64 + 2^-16) give a slow mode with
  // τ ≈ 955 s, so after 14,400 s the 50 ppm start is down to 50 × e^-15.07 = 1.4e-5 ppm. Sum: < 7e-5 ppm.
  const tx = g.adjtimex({});
  const freqPpm = Number(tx.freq) / 65536;
  assert.ok(Math.abs(freqPpm - CANCELLING_FREQ_PPM) < 7e-5, `kernel frequency correction ${freqPpm} ppm, want ${CANCELLING_FREQ_PPM}`);
  // The offset: the timekeeper follows the tick length through mult ± 1 chosen once per 1-s update
  // (timekeeping_adjust), so it strays up to one mult unit over one update's cycles: 2,596,266,000 × 2^-24 = 155 ns;
  // the transient's slow mode (≈ 1e7 ns at the start) is down to ≈ 3 ns. Bound: 160 ns.
  assert.ok(offset() >= -160n && offset() <= 160n, `offset ${offset()} ns after 4 h`);
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
  // Kernel entry 52 ms; the 4-ms ticks start with the runtime at +309.322 ms (361.322 ms), so both reads (1.052 s,
  // 21.052 s) come 2.678 ms after a tick (1.049322 s, 21.049322 s: ticks 172 and 5172), and each tick's steal
  // clock is the record KVM wrote at the last 10-ms vCPU entry (1.04 s, 21.04 s): run_delay = 25% of uptime =
  // 260,000,000 and 5,260,000,000 ns, less the 90,330,500 ns the record held when accounting began (the MSR write
  // at 361.322 ms): 169,669,500 → 16 and 5,169,669,500 → 516 USER_HZ ticks (floored): 500. User time is the ticks
  // less the steal: 172 × 4 ms − 169,669,500 = 518,330,500 → 51; 5172 × 4 ms − 5,169,669,500 → 1551: 1500.
  assert.equal(steal, 500, `steal ${steal} ticks of 2000`);
  assert.equal(user, 1500, `user ${user}`);
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
  // KVM writes the wall-clock record as host REALTIME − kvmclock from one host TSC reading and the guest adds its
  // kvm-clock at the same instant (master clock, one scale), so the boot wall clock is exactly the host's
  // CLOCK_REALTIME at timekeeping_init (52 ms + 248.153 ms = 300,153,000 ns): REALTIME = (epoch − 1 h of uptime) +
  // tsc × 6,462,379 >> 24 with tsc = 9,346,089,600,000 + 779,238,008 cycles (its TSC mult is not exact either).
  const tsc = hostCycles(3_600n * NSEC_PER_SEC) + hostCycles(tkInit + 52_000_000n);
  assert.equal(tsc, 9_346_089_600_000n + 779_238_008n);
  assert.equal(fc.guest.bootWallNs, EPOCH + 123_456_789n - 3_600n * NSEC_PER_SEC + tscNs(tsc));
  assert.equal(fc.guest.bootWallNs, 1_767_225_600_423_345_310n);
  const e2 = new Engine();
  const kt = bootVm({
    profile: machineProfile('kvmtool'),
    kernel: kernelPreset('yocto-qemux86'),
    scheduler: e2,
    epochNs: EPOCH + 123_456_789n,
  });
  e2.run(kt.kernelEntryAt + tkInit + 1n);
  assert.equal(kt.guest.wallClockSource, 'cmos');
  // the CMOS shows the second the host's REALTIME is in: 123.456789 ms + 40 ms (kvmtool) + 248.153 ms = 411.609789 ms
  // into EPOCH's second, so the guest starts at EPOCH itself, 411,609,789 ns behind
  assert.equal(kt.kernelEntryAt, 40_000_000n);
  assert.equal(kt.guest.bootWallNs, EPOCH);
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
  // 10 s of TSC at 0 ppm = 25,961,360,000 cycles → 9,999,999,265.4 ns on the tsc clocksource, floored after the
  // remainder each base already held: 9,999,999,265 or …266 (no NTP: MONOTONIC and RAW use the same mult)
  assert.equal(tscNs(25_961_360_000n), 9_999_999_265n);
  assert.ok(floorOrNext(dm, 9_999_999_265n), `monotonic advanced ${dm}`);
  assert.ok(floorOrNext(dr, 9_999_999_265n), `raw advanced ${dr}`);
  const mBefore = g.clockGettime('monotonic');
  g.settimeofday(EPOCH + 1_000n * NSEC_PER_SEC);
  // do_settimeofday64 sets xtime to the ns with no sub-ns remainder and moves wall_to_monotonic by the step:
  // read at the same instant, REALTIME is exactly the value set and MONOTONIC has not moved
  assert.equal(g.clockGettime('realtime'), EPOCH + 1_000n * NSEC_PER_SEC);
  assert.equal(g.clockGettime('monotonic'), mBefore);
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
    const lost0 = b.vm.devices.timerIrqStats().ticksLost;
    const pit0 = (b.vm.devices.pit as KvmPit).stats.expiries;
    e.run(e.now + 20n * NSEC_PER_SEC);
    return {
      g: b.guest,
      advanced: b.guest.clockGettime('monotonic') - m0,
      lost: b.vm.devices.timerIrqStats().ticksLost - lost0,
      pitExpiries: BigInt((b.vm.devices.pit as KvmPit).stats.expiries - pit0),
    };
  };
  // The periodic LAPIC timer (TMICT 250,000 at divide 16: 4 ms) starts at x86_late_time_init, 40 ms (kvmtool) +
  // 249.607 ms, so its expiries fall at 1.607 + 4k ms into each 100-ms window (100 = 25 × 4): 13 in the running half
  // (1.607 … 49.607 ms) are handled, 12 in the descheduled half find the vCPU out: the first waits in the IRR and is
  // taken at the next window's start, 11 coalesce with it (lapic.c apic_timer_expired). 14 jiffies per window; the
  // 20 s from 2.04 s are 200 whole windows: 2,800 jiffies and 2,200 lost, and refined-jiffies counts
  // 1,024,064,000 >> 8 = 4,000,250 ns per jiffy.
  const yocto = run('kvmtool', 'yocto-qemux86');
  assert.equal(yocto.g.currentClocksource(), 'refined-jiffies\n');
  assert.equal(yocto.g.clockeventDevice(), 'lapic\n');
  assert.equal(yocto.advanced, 2_800n * 4_000_250n, `jiffies guest advanced ${yocto.advanced} ns in 20 s`);
  assert.equal(yocto.lost, 2_200);
  // the PIT in KVM's reinject mode delivers the missed ticks afterwards, one per EOI: every expiry becomes a jiffy
  // (2.04 s and 22.04 s are inside running halves, after the backlog was taken)
  const pit = run('kvmtool', 'yocto-qemux86', 'nolapic');
  assert.equal(pit.g.clockeventDevice(), 'pit\n');
  assert.ok(pit.pitExpiries === 4_999n || pit.pitExpiries === 5_000n, `${pit.pitExpiries} expiries of 4,000,227 ns in 20 s`);
  assert.equal(pit.advanced, pit.pitExpiries * 4_000_250n, `PIT-ticked guest advanced ${pit.advanced} ns`);
  assert.equal(pit.lost, 0);
  // a continuous clocksource keeps time whatever happens to the tick: 20 s of TSC = 51,922,720,000 cycles →
  // 19,999,998,530.8 ns, floored after the remainder held
  const fc = run('firecracker', 'distro');
  assert.equal(tscNs(51_922_720_000n), 19_999_998_530n);
  assert.ok(floorOrNext(fc.advanced, 19_999_998_530n), `tsc guest advanced ${fc.advanced} ns`);
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
  // The timekeeper starts at a whole second (no sub-ns remainder) and, without NTP, adds cycles × mult exactly:
  // MONOTONIC is the kernel's own conversion of the cycle count, 9,346,089,600,000 × 6,462,379 >> 24
  // = 3,599,999,735,543 ns, 264,457 ns behind true time after 1 h.
  const got = tk.get('monotonic');
  assert.equal(got, (cycles() * 6_462_379n) >> 24n);
  assert.equal(now - got, 264_457n);
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
    // Slewing, the tick is 4,002,000 ns: mult 2^23 × 1.0005 = 8,392,802.3, dithered ±1 once per 4-ms update
    // (timekeeping_adjust), so the clock is within 4e6 × 2^-23 = 0.48 ns of the tick length's line and the floored
    // read is the exact slew or 1 ns less.
    assert.ok(gained === want || gained === want - 1n, `after ${s} s slewed ${gained} ns, expected ${want}`);
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
  // As in the adjtimex discipline test above: after 6 h (22 τ of the slow mode) only the timekeeper's ±1-mult
  // dither is left, up to 155 ns (one mult unit over one 1-s update's 2,596,266,000 cycles), and the frequency
  // sits on CANCELLING_FREQ_PPM within one poll's kick (155 ns × 16 s × 2^-16 /s^2: 3.8e-5 ppm; no readout
  // truncation in time_freq itself).
  assert.ok(off >= -155n && off <= 155n, `offset ${off} ns after 6 h`);
  const freq = g.timekeeper.ntp.freqPpm();
  assert.ok(Math.abs(freq - CANCELLING_FREQ_PPM) < 3.8e-5, `freq ${freq} ppm, want ${CANCELLING_FREQ_PPM}`);
});
