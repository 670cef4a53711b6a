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
