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
  const m = /cs_nsec: (\d+) wd_nsec: (\d+)/.exec(line)!;
  const [cs, wd] = [BigInt(m[1]!), BigInt(m[2]!)];
  assert.ok(cs - wd > 14_990_000_000n && cs - wd < 15_010_000_000n, `cs ${cs} wd ${wd}`); // the TSC saw the pause
  assert.ok(wd < 1_000_000_000n, `wd ${wd}`); // kvm-clock saw one watchdog interval at most
  assert.equal(modern.tscUnstable, false);
  const old = pauseGuest({ ...kernelPreset('debian12'), version: '6.1.0', watchdogLongIntervalSkip: undefined }); // a 6.1 without the backport
  assert.equal(old.tscUnstable, true);
  assert.ok(old.dmesg().some((l) => l.includes("Marking clocksource 'tsc' as unstable because the skew is too large")));
});
