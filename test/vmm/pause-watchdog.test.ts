import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { kernelAtLeast } from '../../src/guest/boot.ts';
import type { KernelConfig } from '../../src/guest/kernel.ts';
import { bootVm, kernelPreset, machineProfile, VmLifecycle } from '../../src/vmm/index.ts';

const S = 1_000_000_000n;

/** A kvm-clock guest with the TSC under watch, paused QEMU-style for 15 s at 60 s. */
function pauseGuest(kernel: KernelConfig) {
  const e = new Engine();
  const b = bootVm({ profile: machineProfile('qemu-kvm-noinvtsc'), kernel, scheduler: e, updateIntervalNs: S });
  e.run(60n * S);
  const lc = new VmLifecycle(b);
  lc.pause(75n * S);
  e.run(75n * S);
  lc.resume();
  e.run(80n * S);
  return b.guest;
}

test('kernel version comparison', () => {
  assert.equal(kernelAtLeast('6.12', 6, 3), true);
  assert.equal(kernelAtLeast('6.3', 6, 3), true);
  assert.equal(kernelAtLeast('6.1.0-amd64', 6, 3), false);
  assert.equal(kernelAtLeast('5.19', 6, 3), false);
  assert.equal(kernelAtLeast('garbage', 6, 3), false);
});

test('after a QEMU pause a v6.3+ guest skips the stretched watchdog interval; an older one marks the TSC unstable', () => {
  assert.equal(kernelPreset('debian12').watchdogLongIntervalSkip, true); // Debian's 6.1.y carries the backport
  // kvmclock is restored (it skips the 15 s), the TSC is not: the first check after resume spans the pause
  const modern = pauseGuest(kernelPreset('distro'));
  const line = modern.dmesg().find((l) => l.includes('Long readout interval'));
  assert.ok(line, modern.dmesg().slice(-5).join('\n'));
  // The last check before the pause is at grid point 59.599607 s (350 ms entry + 249.607 ms + 0.5 s k). The next
  // fires at 60.099607 s on a stopped vCPU and waits for the resume; resumed from outside the engine after 75 s, it
  // finds the vCPU still stopped at 75 s and runs one interval later, 75.5 s. The TSC saw all 15.900393 s
  // (41,279,582,682 cycles at 0 ppm × 6,462,379 >> 24 = 15,900,391,832 ns); kvm-clock saw 59.599607 → 60 s on the
  // creation record and 75 → 75.5 s on the record KVM_SET_CLOCK wrote at 75 s: 900,392,999 ns.
  const tsc = (t: bigint) => (t * 2_596_136n) / 1_000_000n;
  const pvclock = (c: bigint) => ((c >> 1n) * 3_308_738_291n) >> 32n;
  const [g, t] = [59_599_607_000n, 75_500_000_000n];
  const csNsec = ((tsc(t) - tsc(g)) * 6_462_379n) >> 24n;
  const wdNsec = pvclock(tsc(60n * S)) - pvclock(tsc(g)) + pvclock(tsc(t) - tsc(75n * S));
  assert.equal(`${csNsec} ${wdNsec}`, '15900391832 900392999');
  assert.ok(line!.endsWith(`cs_nsec: ${csNsec} wd_nsec: ${wdNsec}`), line);
  assert.equal(modern.tscUnstable, false);
  const old = pauseGuest({ ...kernelPreset('debian12'), version: '6.1.0', watchdogLongIntervalSkip: undefined }); // a 6.1 without the backport
  assert.equal(old.tscUnstable, true);
  assert.ok(old.dmesg().some((l) => l.includes("Marking clocksource 'tsc' as unstable because the skew is too large")));
});

/** A distro guest with every check an event, recording when each check really ran. */
function recordedWatchdog(deschedule?: { periodNs: bigint; runNs: bigint }) {
  const e = new Engine();
  const kernel = kernelPreset('distro');
  assert.equal(kernel.hz, 250); // TICK_NSEC 4 ms
  const b = bootVm({
    profile: machineProfile('qemu-kvm-noinvtsc'),
    kernel,
    scheduler: e,
    updateIntervalNs: S,
    ...(deschedule ? { deschedule } : {}),
  });
  e.run(b.kernelEntryAt + 1n);
  const wd = b.guest.watchdog;
  wd.fastForward = false;
  // the timer calls this.run(): wrap it to record when a check really ran
  const runs: bigint[] = [];
  const w = wd as unknown as { run: () => void };
  const run = w.run.bind(wd);
  w.run = () => {
    const before = wd.checks;
    run();
    if (wd.checks !== before) runs.push(e.now);
  };
  return { e, b, wd, runs };
}

const grid = (k: bigint) => 1_099_607_000n + 500_000_000n * k; // 350 ms entry + 249.607 ms + WATCHDOG_INTERVAL (k + 1)

test('the watchdog grid is in jiffies: a QEMU pause that stops kvm-clock for 15 s moves it 15 s later, nothing caught up', () => {
  const { e, b, wd, runs } = recordedWatchdog();
  e.run(60n * S);
  const lc = new VmLifecycle(b);
  lc.pause(75n * S);
  e.run(75n * S);
  lc.resume();
  e.run(80n * S);
  // clocksource_watchdog(): watchdog_timer.expires += WATCHDOG_INTERVAL, in jiffies, which follow the guest's clock.
  // kvm-clock is saved at the pause and restored at the resume, so the guest's jiffies skip the 15 s and the expiry
  // due at 60.099607 s (guest time) comes at 75.099607 s; the model's check runs at 75.5 s (see above), the next ones
  // on the grid 15 s later: 75.599607 s + 0.5 s k.
  const expect: bigint[] = [];
  for (let k = 0n; grid(k) < 60n * S; k++) expect.push(grid(k));
  expect.push(75_500_000_000n);
  for (let k = 1n; grid(118n + k) + 15n * S <= 80n * S; k++) expect.push(grid(118n + k) + 15n * S);
  assert.deepEqual(runs, expect);
  assert.equal(expect.length, 118 + 1 + 9);
  assert.equal(wd.checks, expect.length);
});

test('a vCPU off for longer than WATCHDOG_INTERVAL while the guest clock runs: every missed expiry runs at its next run, one jiffy apart, then the grid again', () => {
  // the vCPU thread runs 250 ms of every 2 s from the VM's creation at 0 (deschedule); kvm-clock runs on meanwhile
  const ds = { periodNs: 2n * S, runNs: 250_000_000n };
  const { e, wd, runs } = recordedWatchdog(ds);
  e.run(60n * S);
  const running = (t: bigint) => t % ds.periodNs < ds.runNs;
  const nextRun = (t: bigint) => (running(t) ? t : (t / ds.periodNs + 1n) * ds.periodNs);
  // clocksource_watchdog(): expires += WATCHDOG_INTERVAL; an expiry not after the run fires on the next jiffy
  // (timer wheel: the current bucket), a timer due while the vCPU is off fires when it next runs
  const expect: bigint[] = [];
  let expires = grid(0n);
  let fire = expires;
  for (;;) {
    const at = nextRun(fire);
    if (at > 60n * S) break;
    expect.push(at);
    expires += 500_000_000n;
    fire = expires > at ? expires : at + 4_000_000n;
  }
  assert.deepEqual(runs, expect);
  // no expiry is lost: one check per grid point up to the last run
  assert.equal(expect.length, Number((expires - grid(0n)) / 500_000_000n));
  assert.equal(wd.checks, expect.length);
  // and some ran one jiffy after the one before
  assert.ok(expect.some((t, i) => i > 0 && t - expect[i - 1]! === 4_000_000n));
});
