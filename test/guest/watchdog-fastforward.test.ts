// The clocksource watchdog's fast-forward against the event-by-event watchdog: the same guest run
// both ways must print the same lines at the same dmesg times, mark the TSC unstable at the same
// interval, keep the same clocksource and read the same clocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { Prng } from '../../src/core/prng.ts';
import { NSEC_PER_SEC, type Ns } from '../../src/core/time.ts';
import { bootVm, type BootVmOptions, type BootedVm } from '../../src/vmm/boot-vm.ts';
import { kernelPreset } from '../../src/vmm/kernels.ts';
import { machineProfile } from '../../src/vmm/profiles.ts';
import { VmLifecycle } from '../../src/vmm/lifecycle.ts';
import { Host } from '../../src/world/host.ts';
import { DEFAULT_BOOT_PHASES } from '../../src/guest/boot.ts';

const S = NSEC_PER_SEC;
const MS = 1_000_000n;
const WATCHDOG_INTERVAL = 500n * MS; // HZ >> 1 jiffies

interface Run {
  b: BootedVm;
  e: Engine;
  /** Clocks read by events along the way (what a sampler sees). */
  samples: string[];
}

interface Plan {
  opts: Omit<BootVmOptions, 'scheduler' | 'kernel'> & { kernel?: BootVmOptions['kernel'] };
  until: Ns;
  /** Extra work scheduled on the engine (pauses, samples), given the booted VM. */
  world?: (r: Run) => void;
  /** A world-owned host with a wandering oscillator drives the TSC. */
  wanderingHost?: boolean;
}

function run(plan: Plan, fastForward: boolean): Run {
  const e = new Engine();
  const opts: BootVmOptions = { kernel: kernelPreset('distro'), scheduler: e, ...plan.opts };
  if (plan.wanderingHost) {
    const host = new Host(
      {
        name: 'h',
        oscillator: { ppm: -3, wanderSigmaPpm: 0.05, wanderIntervalNs: 600n * S },
        tsc: { freqKhz: 2_000_000, constant: true, nonstop: true, invariant: false },
        ntp: true,
      },
      new Prng(7),
      0n,
    );
    const wander = e.timer(() => {
      host.oscillator.wanderStep(e.now);
      wander.armIn(600n * S);
    });
    wander.armIn(600n * S);
    opts.hostTscAt = (t) => host.rdtsc(t);
    opts.hostUptimeNs = 0n;
  }
  const b = bootVm(opts);
  const r: Run = { b, e, samples: [] };
  e.run(b.kernelEntryAt);
  b.guest.watchdog.fastForward = fastForward;
  plan.world?.(r);
  e.run(plan.until);
  return r;
}

function sample(r: Run): void {
  const g = r.b.guest;
  r.samples.push(
    `${r.e.now} ${g.clockGettime('monotonic')} ${g.clockGettime('realtime')} ${g.clockGettime('monotonic_raw')} checks=${g.watchdog.checks}`,
  );
}

/** Run both ways and require identical observations; returns the fast-forwarded run. */
function bothWays(plan: Plan): Run {
  const slow = run(plan, false);
  const fast = run(plan, true);
  assert.equal(slow.b.guest.watchdog.fastForwarded, 0);
  assert.deepEqual(fast.b.guest.dmesg(), slow.b.guest.dmesg());
  assert.deepEqual(fast.samples, slow.samples);
  assert.equal(fast.b.guest.currentClocksource(), slow.b.guest.currentClocksource());
  assert.equal(fast.b.guest.availableClocksource(), slow.b.guest.availableClocksource());
  assert.equal(fast.b.guest.watchdog.checks, slow.b.guest.watchdog.checks);
  assert.equal(fast.b.guest.tscUnstable, slow.b.guest.tscUnstable);
  assert.equal(fast.b.guest.kvmclock?.pvclock.lastValue, slow.b.guest.kvmclock?.pvclock.lastValue);
  assert.equal(fast.b.guest.watchdog.fastForwardMisses, 0);
  return fast;
}

/** Model time of the watchdog's k-th grid point: it starts when tsc-early registers (x86_late_time_init). */
const grid = (b: BootedVm, k: bigint): Ns => b.kernelEntryAt + DEFAULT_BOOT_PHASES.lateTimeInit + k * WATCHDOG_INTERVAL;

const dmesgTime = (b: BootedVm, t: Ns): string => {
  const us = (t - b.kernelEntryAt) / 1000n;
  return `[${String(us / 1_000_000n).padStart(5)}.${String(us % 1_000_000n).padStart(6, '0')}]`;
};

test('a 2000 ppm TSC rate change after 20 quiet minutes is caught at the same interval both ways (HPET watchdog, 300 s updates)', () => {
  // qemu-tcg: no KVM, so the only events after boot are the 300-s timekeeping updates
  const probe = bootVm({ profile: machineProfile('qemu-tcg'), kernel: kernelPreset('distro'), scheduler: new Engine() });
  const K = 2400n; // 20 minutes of intervals
  // 100 ms into interval K+1: 400 ms at +2000 ppm is 800 µs of skew, over the 2 × 250 µs margin
  const atNs = grid(probe, K) + 100n * MS;
  const plan: Plan = {
    opts: { profile: machineProfile('qemu-tcg'), updateIntervalNs: 300n * S, tscRateChange: { atNs, ppm: 2000 } },
    until: atNs + 60n * S,
  };
  const fast = bothWays(plan);
  const b = fast.b;
  assert.ok(b.guest.watchdog.fastForwarded > 2000, `fast-forwarded ${b.guest.watchdog.fastForwarded} intervals`);
  const mark = b.guest.dmesg().find((l) => l.includes("Marking clocksource 'tsc' as unstable"));
  assert.ok(mark, b.guest.dmesg().join('\n'));
  assert.ok(mark.startsWith(dmesgTime(b, grid(b, K + 1n))), `${mark} expected at ${dmesgTime(b, grid(b, K + 1n))}`);
  assert.equal(b.guest.currentClocksource(), 'hpet\n');
  // The interval's ends are whole µs, so the HPET (100 MHz, mult/2^shift = 10 ns) counts exactly 500,000,000 ns and
  // the TSC 1,298,068,000 cycles plus the rate change's 400 ms × 2,596,136 kHz × 2000 ppm = 2,076,908.8 → 2,076,908
  // (src/vmm/machine.ts floors it): 1,300,144,908 × 6,462,379 >> 24 = 500,799,962 ns, skewed 799,962 ns.
  const skewLine = b.guest.bootLog().find((l) => l.includes("Clocksource 'tsc' skewed"))!;
  assert.equal((1_300_144_908n * 6_462_379n) >> 24n, 500_799_962n);
  assert.match(skewLine, /skewed 799962 ns \(0 ms\) over watchdog 'hpet' interval of 500000000 ns/);
});

test('a 500 ppm change stays inside the margin both ways, and the watchdog keeps sleeping through spans', () => {
  const probe = bootVm({ profile: machineProfile('qemu-tcg'), kernel: kernelPreset('distro'), scheduler: new Engine() });
  const atNs = grid(probe, 1200n) + 100n * MS;
  const fast = bothWays({
    opts: { profile: machineProfile('qemu-tcg'), updateIntervalNs: 300n * S, tscRateChange: { atNs, ppm: 500 } },
    until: atNs + 1800n * S,
  });
  assert.ok(!fast.b.guest.bootLog().some((l) => l.includes('unstable')));
  assert.equal(fast.b.guest.currentClocksource(), 'tsc\n');
  assert.ok(fast.b.guest.watchdog.fastForwarded > 4000);
});

test('the 2000 ppm case of runtime.test.ts (4-ms updates, nothing to skip) is the same both ways', () => {
  const fast = bothWays({ opts: { profile: machineProfile('qemu-tcg'), tscRateChange: { atNs: 5n * S, ppm: 2000 } }, until: 8n * S });
  assert.equal(fast.b.guest.currentClocksource(), 'hpet\n');
  assert.equal(fast.b.guest.watchdog.fastForwarded, 0);
});

test('kvm-clock watching the TSC on a wandering host with 300-s vCPU entries, samples and a pause: identical both ways', () => {
  const plan: Plan = {
    opts: { profile: machineProfile('qemu-kvm-noinvtsc'), updateIntervalNs: 300n * S, vcpuEntryIntervalNs: 300n * S },
    until: 4n * 3600n * S,
    wanderingHost: true,
    world: (r) => {
      const lc = new VmLifecycle(r.b);
      for (let t = 1000n; t < 4n * 3600n; t += 1777n) r.e.at(t * S + 123n, () => sample(r));
      r.e.at(5000n * S, () => lc.pause(5600n * S));
      r.e.at(5600n * S, () => {
        lc.resume();
        sample(r);
      });
    },
  };
  const fast = bothWays(plan);
  assert.ok(fast.b.guest.watchdog.fastForwarded > 10_000, `fast-forwarded ${fast.b.guest.watchdog.fastForwarded}`);
  // the plan's samples: t = 1000 + 1777 k s below 4 h (8 of them, none inside the pause) and one at the resume
  assert.equal(fast.samples.length, 9);
});

test('a counter changed outside any scheduler event is noticed at the end of the span, not skipped over (and a v6.3+ kernel skips the stretched interval)', () => {
  // the VMM resumes a paused VM from outside the engine (between two run() calls): kvm-clock is set
  // back by the pause, which the fast-forward cannot have foreseen
  const r = run(
    { opts: { profile: machineProfile('qemu-kvm-noinvtsc'), updateIntervalNs: 300n * S, vcpuEntryIntervalNs: 300n * S }, until: 100n * S },
    true,
  );
  const lc = new VmLifecycle(r.b);
  lc.pause();
  r.e.run(130n * S);
  lc.resume();
  r.e.run(400n * S);
  const wd = r.b.guest.watchdog;
  assert.equal(wd.fastForwardMisses, 1);
  assert.equal(wd.fastForward, false); // event by event from then on
  // the distro kernel (6.12) does not judge the stretched interval (clocksource.c, v6.3+): it reports it,
  // and the TSC's extra 30 s over kvm-clock is the pause. The last real check was at 2.099607 s (the watchdog
  // starts at 350 + 249.607 ms; two quiet intervals later it sleeps) and the sleep ends at the last grid point
  // before the next scheduler event (the 300-s vCPU entry): 299.599607 s. Over those 297.5 s (772,350,460,000
  // cycles, whole µs at 0 ppm) the tsc clocksource reads × 6,462,379 >> 24 = 297,499,978,145 ns; kvm-clock reads
  // kvmclock(100 s) − kvmclock(2.099607 s) on the creation record plus kvmclock(299.599607 s − 130 s) on the one
  // KVM_SET_CLOCK wrote at 130 s: 267,499,999,995 ns. (An event-by-event watchdog would have checked at 130.099607 s.)
  const line = r.b.guest.bootLog().find((l) => l.includes('Long readout interval, skipping watchdog check'));
  const tsc = (t: bigint) => (t * 2_596_136n) / 1_000_000n;
  const pvclock = (c: bigint) => ((c >> 1n) * 3_308_738_291n) >> 32n;
  const [g, t] = [2_099_607_000n, 299_599_607_000n];
  const csNsec = ((tsc(t) - tsc(g)) * 6_462_379n) >> 24n;
  const wdNsec = pvclock(tsc(100n * S)) - pvclock(tsc(g)) + pvclock(tsc(t) - tsc(130n * S));
  assert.equal(`${csNsec} ${wdNsec}`, '297499978145 267499999995');
  assert.equal(line, `clocksource: Long readout interval, skipping watchdog check: cs_nsec: ${csNsec} wd_nsec: ${wdNsec}`);
  assert.equal(r.b.guest.tscUnstable, false);
});

test('spans shorter than the HPET wrap but crossing it (20-s updates, 32-bit HPET wraps every 42.9 s) fast-forward cleanly', () => {
  const fast = bothWays({ opts: { profile: machineProfile('qemu-tcg'), updateIntervalNs: 20n * S }, until: 600n * S });
  const wd = fast.b.guest.watchdog;
  assert.equal(wd.fastForwardMisses, 0);
  assert.equal(wd.fastForward, true);
  assert.ok(wd.fastForwarded > 900, `fast-forwarded ${wd.fastForwarded}`);
});

test('4 vCPUs on a skewed host (TSC catch-up at every entry) with RDTSC offset compensation: the same observations both ways', () => {
  const plan: Plan = {
    opts: {
      profile: machineProfile('qemu-kvm'),
      host: { tscAdjust: false }, // else check_system_tsc_reliable() turns the TSC watchdog off
      vcpus: 4,
      updateIntervalNs: 300n * S,
      vcpuEntryIntervalNs: 300n * S,
      hostTscSkew: { cycles: [0n, 3000n, 6000n, 9000n], tscReliable: false },
      rdtscExiting: { exitCostNs: 1200n, offsetCompensation: true, ratePerSec: 2000 },
    },
    until: 20n * 60n * S,
    world: (r) => {
      const t = r.e.timer(() => {
        sample(r);
        t.armIn(60n * S);
      });
      t.armIn(60n * S);
    },
  };
  const fast = bothWays(plan);
  assert.ok(fast.b.guest.watchdog.fastForwarded > 0, 'the watchdog was fast-forwarded');
  // 2000 exits/s × 1.2 µs hidden: the TSC runs 2400 ppm slow (1.2 ms per 0.5 s interval), yet the watchdog never
  // objects: on KVM it is kvm-clock (rating 299 > hpet's 250), whose pvclock read uses the same compensated TSC
  assert.equal(fast.b.guest.dmesg().filter((l) => l.includes('as unstable')).length, 0, fast.b.guest.dmesg().join('\n'));
  assert.equal(fast.b.guest.currentClocksource(), 'tsc\n');
});
