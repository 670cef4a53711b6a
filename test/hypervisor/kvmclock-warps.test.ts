// The kvm-unit-tests kvmclock_test-style check (src/vmm/kvmclock-test.ts): zero warps with a stable
// master clock; with unsynchronised host TSCs exactly the warps derived here by hand from the records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HOST_HPET_PERIOD_FS, LinuxHostTimekeeper } from '../../src/hypervisor/index.ts';
import { runKvmclockTest, type WarpCount } from '../../src/vmm/index.ts';

const GHZ = 1_000_000; // kHz: kvmclock's scale is exact at 1 GHz, so a cycle is a ns
const MS = 1_000_000n;
const base = { vcpus: 4, reads: 20_000, readIntervalNs: 25n, wakeIntervalNs: 4n * MS };

test('synchronised host TSCs: master clock, TSC_STABLE, no warp and no stall in 20,000 interleaved reads', () => {
  const r = runKvmclockTest({ ...base, host: { tscKhz: GHZ } });
  assert.equal(r.masterClock, true);
  assert.equal(r.tscStable, true);
  assert.deepEqual(r.raw, { warps: 0, stalls: 0, worstNs: 0n });
  assert.deepEqual(r.monotonic, { warps: 0, stalls: 0, worstNs: 0n });
});

test('tsc=reliable over skewed TSCs: KVM keeps TSC_STABLE, the guard is off, and vCPU 3 → vCPU 0 goes back by the skew', () => {
  const r = runKvmclockTest({ ...base, host: { tscKhz: GHZ, tscSkewNs: [0, 1500, 3000, 4500], tscReliable: true } });
  assert.equal(r.hostTscUnstable, false);
  assert.equal(r.masterClock, true);
  assert.equal(r.tscStable, true);
  // one snapshot for all records, so a read on vCPU k is C + t + skew_k: read j (vCPU j mod 4) minus read j-1
  // is 25 + 1500 except from vCPU 3 to vCPU 0, 25 - 4500; that happens at j = 4, 8, …, 19996
  const expected: WarpCount = { warps: (20_000 - 1 - ((20_000 - 1) % 4)) / 4, stalls: 0, worstNs: 25n - 4500n };
  assert.deepEqual(r.raw, expected);
  assert.deepEqual(r.monotonic, expected, 'PVCLOCK_TSC_STABLE_BIT in the record: pvclock.c skips last_value');
});

test('skew detected by the host: no master clock; raw reads warp exactly as the per-vCPU anchors predict, the guard hides every warp', () => {
  const skew = [0, 1500, 3000, 4500];
  const r = runKvmclockTest({ ...base, host: { tscKhz: GHZ, tscSkewNs: skew } });
  assert.equal(r.hostTscUnstable, true);
  assert.equal(r.masterClock, false);
  assert.equal(r.tscStable, false);
  // Derivation. The host runs on the HPET: kernel_ns K(t) = baseNsAt(host TSC of CPU 0). Each vCPU's record
  // is written when the vCPU is loaded (an unstable host TSC makes every load a global clock update) with
  // system_time = K(a) + kvmclock_offset and tsc_timestamp = its guest TSC then; the skew of its host CPU is
  // in both the timestamp and later reads, so at 1 GHz a read at t gives K(a) + offset + (t - a). vCPU i is
  // brought up at i ms, loaded again at 4 + i ms and every 4 ms; reads run from 8 ms every 25 ns for 0.5 ms,
  // so the anchors are a = 8, 5, 6, 7 ms for vCPUs 0…3 (the 8 ms load runs before the read at 8 ms).
  const tsc0 = 3600n * 1_000_000_000n; // the host TSC when the check starts (an hour of uptime, 1 GHz)
  const host = new LinuxHostTimekeeper({ tscKhz: GHZ, rdtsc: () => 0n, hpet: { periodFs: HOST_HPET_PERIOD_FS } });
  const anchors = [8n * MS, 5n * MS, 6n * MS, 7n * MS];
  const err = anchors.map((a) => host.baseNsAt(tsc0 + a) - (tsc0 + a)); // K(a) - a, up to one HPET tick below 0
  const raw: WarpCount = { warps: 0, stalls: 0, worstNs: 0n };
  const mono: WarpCount = { warps: 0, stalls: 0, worstNs: 0n };
  let lastRaw = 0n;
  let lastMono = 0n;
  const first = 8n * MS;
  for (let j = 0; j < base.reads; j++) {
    const t = tsc0 + first + BigInt(j) * base.readIntervalNs;
    const v = t + err[j % 4]!; // the common kvmclock_offset drops out of every difference but the first
    const d = j === 0 ? 1n : v - lastRaw;
    if (d < 0n) {
      raw.warps++;
      if (d < raw.worstNs) raw.worstNs = d;
    } else if (d === 0n) raw.stalls++;
    lastRaw = v;
    // pvclock.c's guard: "if (ret <= last) return last"
    if (j > 0 && v <= lastMono) mono.stalls++;
    else lastMono = v;
  }
  assert.ok(raw.warps > 0, 'the derivation predicts warps');
  assert.deepEqual(r.raw, raw);
  assert.deepEqual(r.monotonic, mono);
});

test('the check refuses a placement that does not name one host CPU per vCPU', () => {
  assert.throws(() => runKvmclockTest({ ...base, placement: [0, 1], host: { tscKhz: GHZ } }), /placement names 2 host CPUs for 4 vCPUs/);
});
