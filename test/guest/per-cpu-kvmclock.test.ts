// The guest's kvm-clock on each CPU: every vCPU registers its own record (kvm_setup_secondary_clock) and
// reads it with its own TSC; the vDSO's cost model under RDTSC exiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { hvClockGpa } from '../../src/guest/index.ts';
import { bootVm, kernelPreset, machineProfile } from '../../src/vmm/index.ts';

const S = 1_000_000_000n;

function boot(opts: { skew?: bigint[]; reliable?: boolean; rdtsc?: { exitCostNs: bigint; offsetCompensation: boolean } } = {}) {
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile('qemu-kvm-noinvtsc'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    vcpus: 4,
    host: { tscKhz: 1_000_000 },
    ...(opts.skew ? { hostTscSkew: { cycles: opts.skew, tscReliable: opts.reliable ?? false } } : {}),
    ...(opts.rdtsc ? { rdtscExiting: { ...opts.rdtsc, ratePerSec: 10_000 } } : {}),
  });
  e.run(10n * S);
  return { e, b };
}

test('each vCPU registers its own pvclock record, 64 bytes apart, and reads the same kvm-clock on a synchronised host', () => {
  const { b } = boot();
  const kc = b.guest.kvmclock!;
  for (const [i, v] of b.vm.vcpus.entries()) assert.equal(v.pvTimeGpa, hvClockGpa(i));
  const reads = [0, 1, 2, 3].map((cpu) => kc.readOn(cpu));
  assert.deepEqual(reads, [reads[0], reads[0], reads[0], reads[0]]);
});

test("on a host that trusts skewed TSCs, kvm-clock read on vCPU k is ahead by host CPU k's skew (1 GHz: cycles = ns)", () => {
  const { b } = boot({ skew: [0n, 1000n, 2000n, 3000n], reliable: true });
  const kc = b.guest.kvmclock!;
  assert.equal(kc.stable, true);
  const r0 = kc.readOn(0);
  assert.deepEqual(
    [1, 2, 3].map((cpu) => kc.readOn(cpu) - r0),
    [1000n, 2000n, 3000n],
  );
});

test("CLOCK_MONOTONIC read on a given CPU goes through that CPU's kvm-clock record: skewed by its host CPU when KVM trusts the TSCs", () => {
  const synced = boot().b.guest;
  assert.deepEqual(
    [1, 2, 3].map((cpu) => synced.clockGettime('monotonic', cpu) - synced.clockGettime('monotonic', 0)),
    [0n, 0n, 0n],
  );
  const g = boot({ skew: [0n, 1000n, 2000n, 3000n], reliable: true }).b.guest;
  assert.equal(g.currentClocksource().trim(), 'kvm-clock');
  // kvm-clock is registered at 1 GHz: mult = 2^shift, so the timekeeper passes the skew through to the ns
  const m0 = g.clockGettime('monotonic', 0);
  assert.deepEqual(
    [1, 2, 3].map((cpu) => g.clockGettime('monotonic', cpu) - m0),
    [1000n, 2000n, 3000n],
  );
  assert.equal(g.clockGettime('monotonic'), m0, 'without a CPU: the boot CPU');
});

test('vDSO clock_gettime under RDTSC exiting: the exit is paid on every read; compensated, the guest clock does not see it', () => {
  const native = boot()
    .b.guest.vdso()
    .find((c) => c.clock === 'CLOCK_MONOTONIC')!;
  assert.deepEqual(native, { clock: 'CLOCK_MONOTONIC', path: 'vdso', ns: 33, measuredNs: 33 }); // 15 + rdtsc 10 + pvclock 8
  const trapped = boot({ rdtsc: { exitCostNs: 1500n, offsetCompensation: false } }).b.guest.vdso();
  assert.deepEqual(
    trapped.find((c) => c.clock === 'CLOCK_MONOTONIC'),
    { clock: 'CLOCK_MONOTONIC', path: 'vdso', ns: 1523, measuredNs: 1523 },
  );
  const hidden = boot({ rdtsc: { exitCostNs: 1500n, offsetCompensation: true } }).b.guest.vdso();
  assert.deepEqual(
    hidden.find((c) => c.clock === 'CLOCK_MONOTONIC'),
    { clock: 'CLOCK_MONOTONIC', path: 'vdso', ns: 1523, measuredNs: 23 },
  );
  // the coarse clocks read no counter: no exit
  assert.equal(hidden.find((c) => c.clock === 'CLOCK_MONOTONIC_COARSE')!.ns, 8);
});
