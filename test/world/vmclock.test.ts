// The VMClock device (include/uapi/linux/vmclock-abi.h): the layout, the guest's read as
// drivers/ptp/ptp_vmclock.c computes it, and what QEMU and Firecracker bump across restores and migrations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeVmclock,
  encodeVmclock,
  VMCLOCK_ABI_BYTES,
  VMCLOCK_MAGIC,
  VMCLOCK_OFFSETS,
  type VmclockRecord,
  vmclockReadNs,
} from '../../src/core/vmclock-abi.ts';
import { parseScenarioText, simulate } from '../../src/world/index.ts';

const rec = (over: Partial<VmclockRecord>): VmclockRecord => ({
  magic: VMCLOCK_MAGIC,
  size: 4096,
  version: 1,
  counterId: 1,
  timeType: 0,
  seqCount: 2,
  disruptionMarker: 7n,
  flags: 0n,
  clockStatus: 2,
  counterPeriodShift: 8,
  counterValue: 1000n,
  counterPeriodFracSec: 0n,
  timeSec: 100n,
  timeFracSec: 0n,
  timeEsterrorNanosec: 0n,
  timeMaxerrorNanosec: 0n,
  vmGenerationCounter: 3n,
  ...over,
});

test('struct vmclock_abi: 112 bytes, fields at the offsets the header gives them, round trip', () => {
  // magic 0, size 4, version 8, counter_id 10, time_type 11, seq_count 12, disruption_marker 16, flags 24, pad 32-33,
  // clock_status 34, … counter_period_shift 39, counter_value 40, 3 period words 48-71, time_sec 72, time_frac_sec 80,
  // the two error words 88-103, vm_generation_counter 104
  assert.equal(VMCLOCK_ABI_BYTES, 112);
  assert.deepEqual(
    [
      VMCLOCK_OFFSETS.seq_count,
      VMCLOCK_OFFSETS.clock_status,
      VMCLOCK_OFFSETS.counter_value,
      VMCLOCK_OFFSETS.time_sec,
      VMCLOCK_OFFSETS.vm_generation_counter,
    ],
    [12, 34, 40, 72, 104],
  );
  const r = rec({ counterPeriodFracSec: 123n, timeFracSec: 5n << 60n });
  const b = encodeVmclock(r);
  assert.equal(new DataView(b.buffer).getUint32(0, true), 0x4b4c4356); // "VCLK"
  assert.deepEqual(decodeVmclock(b), r);
});

test('the guest read: (Δcounter · period) >> shift + frac, seconds above 2^64, ns = frac · 10^9 >> 64', () => {
  // a 1 GHz counter: period = floor(2^72 / 10^9) = 4,722,366,482,869 (units of 2^-72 s)
  const period = (1n << 72n) / 1_000_000_000n;
  assert.equal(period, 4_722_366_482_869n);
  const r = rec({ counterPeriodFracSec: period });
  // one second of counts: 10^9 · 4,722,366,482,869 >> 8 = 18,446,744,073,707,031,250 (10^9 / 2^8 = 3,906,250 exactly) — just under 2^64 (the floor
  // of the period), so 0 s + that fraction, which is 999,999,999 ns: the device's time is 1 ns short after 1 s
  assert.equal((1_000_000_000n * period) >> 8n, 18_446_744_073_707_031_250n);
  assert.equal(vmclockReadNs(r, 1000n + 1_000_000_000n), 100n * 1_000_000_000n + 999_999_999n);
  // a counter behind counter_value wraps as u64, as in C
  assert.equal(vmclockReadNs(rec({ clockStatus: 4 }), 0n), null); // VMCLOCK_STATUS_UNRELIABLE: the driver fails
});

const YAML = `duration: 20min
sample_interval: 1min
hosts:
  - { name: a, tsc: { freq_khz: 2596136 }, oscillator: { ppm: 30 } }
  - { name: b, tsc: { freq_khz: 2596136 }, oscillator: { ppm: -20 } }
vms:
  - { name: q, host: a, profile: qemu-kvm-noinvtsc, vmclock: {}, migrations: [{ at: 5min, to: b, downtime: 50ms }] }
  - { name: fc, host: a, profile: firecracker, vmclock: { precise: true }, snapshots: [{ at: 5min, restore_after: 1min }] }
  - { name: fc2, host: a, profile: firecracker, vmclock: {}, snapshots: [{ at: 5min, restore_after: 1min }, { at: 10min, restore_after: 1min }] }
`;

test('QEMU bumps disruption_marker at realize and on every incoming migration; Firecracker bumps it and the generation on restore', () => {
  const vms = simulate(parseScenarioText(YAML)).summary.vms;
  const by = (n: string) => vms.find((v) => v.name === n)!.vmclock!;
  assert.deepEqual([by('q').disruption_marker, by('q').vm_generation_counter], ['2', '0']); // realize + one migration
  assert.deepEqual([by('fc2').disruption_marker, by('fc2').vm_generation_counter], ['2', '2']); // two restores
  assert.equal(by('q').time_offset_ns, null); // QEMU publishes no counter → time relation (counter_id INVALID)
});

test('a host that publishes the TSC → UTC relation gives the guest true time through VMClock while its clock is a minute behind', () => {
  const fc = simulate(parseScenarioText(YAML)).summary.vms.find((v) => v.name === 'fc')!;
  assert.ok(BigInt(fc.final_offset_ns) < -59_000_000_000n, fc.final_offset_ns);
  // published each second from the TSC's true rate; read at the instant of a publish the guest gets the published UTC
  assert.equal(fc.vmclock!.time_offset_ns, '0');
  assert.equal(fc.vmclock!.clock_status, 2);
});

test('a profile without a VMClock device refuses the option', () => {
  assert.throws(
    () => parseScenarioText(YAML.replace('profile: qemu-kvm-noinvtsc, vmclock: {}', 'profile: cloud-hypervisor, vmclock: {}'), 'v.yaml'),
    /vms\[0\]|no VMClock device/,
  );
});
