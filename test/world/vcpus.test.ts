// Many vCPUs and RDTSC exiting on the scenarios in examples/: the kvmclock_test-style check per VM
// (summary.json kvmclock_warps) and what trapping RDTSC does to a guest on tsc and on kvm-clock.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { InputError } from '../../src/core/errors.ts';
import { parseScenarioText, simulate, type VmSummary } from '../../src/world/index.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const text = (file: string) => readFileSync(join(EXAMPLES, file), 'utf8');
const run = (src: string, file: string) => simulate(parseScenarioText(src, file)).summary;
const vmOf = (vms: VmSummary[], name: string) => vms.find((v) => v.name === name)!;

test('4 vCPUs on synchronised host TSCs: master clock, TSC_STABLE, no cross-vCPU warp in 100,000 reads', () => {
  const s = run(text('4vcpu-stable-tsc.yaml'), '4vcpu-stable-tsc.yaml');
  const w = vmOf(s.vms, 'vm4').kvmclock_warps!;
  assert.equal(w.vcpus, 4);
  assert.equal(w.reads, 100_000);
  assert.deepEqual([w.master_clock, w.tsc_stable, w.host_tsc_unstable], [true, true, false]);
  assert.deepEqual(w.raw, { warps: 0, stalls: 0, worst_warp_ns: '0' });
  assert.deepEqual(w.monotonic, { warps: 0, stalls: 0, worst_warp_ns: '0' });
});

test('4 vCPUs on unsynchronised host TSCs: raw reads warp without the master clock, and by the skew when the host trusts its TSC', () => {
  const s = run(text('4vcpu-unsynced-tsc.yaml'), '4vcpu-unsynced-tsc.yaml');
  const skewed = vmOf(s.vms, 'on-skewed').kvmclock_warps!;
  assert.deepEqual([skewed.master_clock, skewed.tsc_stable, skewed.host_tsc_unstable], [false, false, true]);
  // records anchored at each vCPU's own load against an HPET-quantised host clock (the derivation at 1 GHz
  // is in test/hypervisor/kvmclock-warps.test.ts); here, at 2596.136 MHz, the model gives:
  assert.deepEqual(skewed.raw, { warps: 10_000, stalls: 0, worst_warp_ns: '-8' });
  // pvclock.c's last_value guard turns each of them into a stall
  assert.deepEqual(skewed.monotonic, { warps: 0, stalls: 10_000, worst_warp_ns: '0' });
  const trusted = vmOf(s.vms, 'on-trusted').kvmclock_warps!;
  assert.deepEqual([trusted.master_clock, trusted.tsc_stable, trusted.host_tsc_unstable], [true, true, false]);
  // every vCPU 3 → vCPU 0 read (j = 4, 8, …, 99996) goes back by 4500 ns of skew less the 25 ns between reads
  const expected = { warps: 24_999, stalls: 0, worst_warp_ns: '-4475' };
  assert.deepEqual(trusted.raw, expected);
  assert.deepEqual(trusted.monotonic, expected, 'TSC_STABLE_BIT: the guest skips its guard');
  // the guests themselves run on kvm-clock either way
  assert.equal(vmOf(s.vms, 'on-skewed').final_clocksource, 'kvm-clock');
});

test('RDTSC exiting: uncompensated, the clock is unchanged and each clock_gettime costs the exit; compensated, the guest TSC runs 1.2 % slow', () => {
  const src = text('rdtsc-exiting.yaml');
  const s = run(src, 'rdtsc-exiting.yaml');
  const trapped = vmOf(s.vms, 'tsc-trapped');
  const tsc = vmOf(s.vms, 'tsc-compensated');
  const kc = vmOf(s.vms, 'kvmclock-compensated');
  // the same guest without trapping ends at the same offset, to the ns
  const untrapped = run(src.replace('    rdtsc_exiting: { exit_cost: 1.2us }\n', ''), 'rdtsc-exiting.yaml');
  assert.equal(trapped.final_offset_ns, vmOf(untrapped.vms, 'tsc-trapped').final_offset_ns);
  assert.equal(vmOf(untrapped.vms, 'tsc-trapped').rdtsc_exiting, undefined);
  // vDSO clock_gettime: 15 ns of vDSO work + the 1200 ns exit (kvm-clock: + 8 ns of pvclock arithmetic)
  assert.deepEqual(trapped.rdtsc_exiting, {
    exit_cost_ns: '1200',
    offset_compensation: false,
    rate_per_s: 10_000,
    tsc_hidden_ns: '0',
    clock_gettime_ns: 1215,
    clock_gettime_measured_ns: 1215,
  });
  // 1800 s × 10,000 exits/s × 1.2 µs = 21.6 s taken out of the TSC; the guest measures its reads as free of the exit
  assert.equal(tsc.rdtsc_exiting!.tsc_hidden_ns, '21600000000');
  assert.equal(tsc.rdtsc_exiting!.clock_gettime_measured_ns, 15);
  assert.equal(kc.rdtsc_exiting!.clock_gettime_ns, 1223);
  assert.equal(kc.rdtsc_exiting!.clock_gettime_measured_ns, 23);
  assert.equal(Math.round(tsc.drift_ppm), -12_000);
  assert.ok(BigInt(tsc.max_abs_offset_ns) > 21n * 1_000_000_000n, 'the tsc guest falls behind by all of it');
  // kvm-clock is pulled back to host time whenever KVM rewrites the record (kvmclock_sync_fn every 300 s):
  // it never falls more than 300 s × 1.2 % = 3.6 s (plus the boot-time RTC offset) behind
  assert.ok(BigInt(kc.max_abs_offset_ns) < 3_900_000_000n, kc.max_abs_offset_ns);
  assert.ok(BigInt(kc.max_abs_offset_ns) > 3_600_000_000n, kc.max_abs_offset_ns);
});

test('bad rdtsc_exiting and tsc_skew values are refused with the path and what was expected', () => {
  const bad = (yaml: string) => () => parseScenarioText(yaml, 'x.yaml');
  const head = 'name: x\nduration: 1min\nhosts: [{ name: h, tsc: { freq_khz: 2596136 } }]\n';
  assert.throws(
    bad(`${head}vms: [{ name: v, host: h, rdtsc_exiting: { exit_cost: 100us, rate: 10000 } }]\n`),
    (e: unknown) =>
      e instanceof InputError && e.path === 'vms[0].rdtsc_exiting' && /rate × exit_cost must be below 1 s per second/.test(e.message),
  );
  assert.throws(
    bad(
      'name: x\nduration: 1min\nhosts: [{ name: h, tsc: { freq_khz: 2596136 }, tsc_skew: { per_cpu_ns: [0, 1.5] } }]\nvms: [{ name: v, host: h }]\n',
    ),
    (e: unknown) => e instanceof InputError && e.path === 'hosts[0].tsc_skew.per_cpu_ns[1]',
  );
  assert.throws(
    bad(`${head}vms: [{ name: v, host: h, profile: qemu-tcg, kvmclock_test: {} }]\n`),
    (e: unknown) => e instanceof InputError && e.path === 'vms[0].kvmclock_test' && /needs a KVM profile/.test(e.message),
  );
});
