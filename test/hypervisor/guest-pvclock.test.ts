import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePvclock, encodeWallClock, PVCLOCK_GUEST_STOPPED, PVCLOCK_TSC_STABLE_BIT } from '../../src/core/index.ts';
import { PvclockGuest, PvclockTornError } from '../../src/guest/pvclock.ts';
import { FlatGuestMemory } from '../../src/hypervisor/index.ts';

const GPA = 0x100n;
const rec = (over: Partial<Parameters<typeof encodePvclock>[0]> = {}) =>
  encodePvclock({ version: 2, tscTimestamp: 1000n, systemTime: 5_000n, tscToSystemMul: 2 ** 31, tscShift: 1, flags: 0, ...over }); // 1 cycle = 1 ns

test('reads system_time + scaled TSC delta (1 GHz record: 1 ns per cycle)', () => {
  const mem = new FlatGuestMemory(0x1000);
  mem.write(GPA, rec({ flags: PVCLOCK_TSC_STABLE_BIT }));
  const g = new PvclockGuest({ stableBitTrusted: true });
  assert.equal(g.read(mem, GPA, () => 1500n).ns, 5_500n);
});

test('an odd version (update in progress) is retried until the hypervisor finishes', () => {
  const mem = new FlatGuestMemory(0x1000);
  mem.write(GPA, rec({ version: 3, systemTime: 1n }));
  let reads = 0;
  const wrapped = {
    read: (gpa: bigint, len: number) => {
      // the hypervisor completes its update after the guest's second look
      if (++reads === 3) mem.write(GPA, rec({ version: 4, systemTime: 9_000n }));
      return mem.read(gpa, len);
    },
    write: (gpa: bigint, b: Uint8Array) => mem.write(gpa, b),
  };
  const r = new PvclockGuest().read(wrapped, GPA, () => 1000n);
  assert.equal(r.ns, 9_000n);
  assert.equal(r.attempts, 2);
});

test('a record that changes during the read (version moved on) is read again', () => {
  const mem = new FlatGuestMemory(0x1000);
  mem.write(GPA, rec({ version: 2, systemTime: 100n }));
  let reads = 0;
  const wrapped = {
    read: (gpa: bigint, len: number) => {
      const out = mem.read(gpa, len);
      if (++reads === 1) mem.write(GPA, rec({ version: 4, systemTime: 200n })); // update lands between begin and retry
      return out;
    },
    write: (gpa: bigint, b: Uint8Array) => mem.write(gpa, b),
  };
  const r = new PvclockGuest().read(wrapped, GPA, () => 1000n);
  assert.equal(r.ns, 200n);
  assert.equal(r.attempts, 2);
});

test('a record stuck at an odd version is reported, not spun on forever', () => {
  const mem = new FlatGuestMemory(0x1000);
  mem.write(GPA, rec({ version: 5 }));
  assert.throws(() => new PvclockGuest().read(mem, GPA, () => 1000n, 10), PvclockTornError);
});

test('without the stable bit, last_value keeps the clock monotonic across vCPUs', () => {
  const mem = new FlatGuestMemory(0x1000);
  mem.write(GPA, rec({ systemTime: 5_000n }));
  mem.write(GPA + 0x40n, rec({ systemTime: 4_900n })); // vCPU1's record lags by 100 ns
  const g = new PvclockGuest({ stableBitTrusted: true }); // trusted, but the records lack TSC_STABLE
  assert.equal(g.read(mem, GPA, () => 1000n).ns, 5_000n);
  const r = g.read(mem, GPA + 0x40n, () => 1050n); // 4950 < 5000
  assert.deepEqual([r.ns, r.clamped], [5_000n, true]);
  assert.equal(g.read(mem, GPA + 0x40n, () => 1200n).ns, 5_100n);
});

test('with TSC_STABLE trusted, a lagging read is returned as is (no global guard)', () => {
  const mem = new FlatGuestMemory(0x1000);
  mem.write(GPA, rec({ systemTime: 5_000n, flags: PVCLOCK_TSC_STABLE_BIT }));
  mem.write(GPA + 0x40n, rec({ systemTime: 4_900n, flags: PVCLOCK_TSC_STABLE_BIT }));
  const g = new PvclockGuest({ stableBitTrusted: true });
  g.read(mem, GPA, () => 1000n);
  assert.equal(g.read(mem, GPA + 0x40n, () => 1050n).ns, 4_950n);
  // A guest that does not trust the bit (no KVM_FEATURE_CLOCKSOURCE_STABLE_BIT) still guards.
  const g2 = new PvclockGuest();
  g2.read(mem, GPA, () => 1000n);
  assert.equal(g2.read(mem, GPA + 0x40n, () => 1050n).ns, 5_000n);
});

test('GUEST_STOPPED is consumed: the guest clears the flag and touches its watchdogs once', () => {
  const mem = new FlatGuestMemory(0x1000);
  mem.write(GPA, rec({ flags: PVCLOCK_TSC_STABLE_BIT | PVCLOCK_GUEST_STOPPED }));
  const g = new PvclockGuest({ stableBitTrusted: true });
  assert.equal(g.read(mem, GPA, () => 1000n).guestStopped, true);
  assert.equal(mem.read(GPA + 29n, 1)[0], PVCLOCK_TSC_STABLE_BIT);
  assert.equal(g.read(mem, GPA, () => 1000n).guestStopped, false);
  assert.equal(g.watchdogTouches, 1);
});

test('pvclock_read_wallclock adds the boot epoch to the current kvmclock', () => {
  const mem = new FlatGuestMemory(0x1000);
  mem.write(GPA, rec({ systemTime: 2_000_000_000n, flags: PVCLOCK_TSC_STABLE_BIT }));
  mem.write(0x800n, encodeWallClock({ version: 2, sec: 1_700_000_000, nsec: 999_999_000 }));
  const ts = new PvclockGuest({ stableBitTrusted: true }).readWallclock(mem, 0x800n, GPA, () => 3000n);
  // 1700000000.999999000 + 2.000002000 = 1700000003.000001000
  assert.deepEqual(ts, { sec: 1_700_000_003n, nsec: 1_000 });
});

test('readNs (in place on flat RAM) returns what read() returns, with the same last_value guard', () => {
  const mem = new FlatGuestMemory(0x1000);
  mem.write(GPA, rec({ systemTime: 5_000n }));
  mem.write(GPA + 0x40n, rec({ systemTime: 4_900n })); // lags vCPU0's record by 100 ns
  const fast = new PvclockGuest();
  const slow = new PvclockGuest();
  const copy = { read: (gpa: bigint, len: number) => mem.read(gpa, len), write: (gpa: bigint, b: Uint8Array) => mem.write(gpa, b) };
  // hand-derived: 1 ns per cycle from tsc_timestamp 1000
  const steps: [bigint, bigint, bigint][] = [
    [GPA, 1000n, 5_000n],
    [GPA + 0x40n, 1050n, 5_000n], // 4950 clamped to last_value
    [GPA + 0x40n, 1200n, 5_100n],
    [GPA, 1100n, 5_100n], // 5100 = last_value
  ];
  for (const [gpa, tsc, want] of steps) {
    assert.equal(
      fast.readNs(mem, gpa, () => tsc),
      want,
    );
    assert.equal(slow.read(copy, gpa, () => tsc).ns, want);
  }
  assert.equal(fast.lastValue, slow.lastValue);
});

test('readNs consumes GUEST_STOPPED and reports a stuck odd version like read()', () => {
  const mem = new FlatGuestMemory(0x1000);
  mem.write(GPA, rec({ flags: PVCLOCK_TSC_STABLE_BIT | PVCLOCK_GUEST_STOPPED }));
  const g = new PvclockGuest({ stableBitTrusted: true });
  assert.equal(
    g.readNs(mem, GPA, () => 1500n),
    5_500n,
  );
  assert.equal(mem.read(GPA + 29n, 1)[0], PVCLOCK_TSC_STABLE_BIT);
  assert.equal(g.watchdogTouches, 1);
  mem.write(GPA, rec({ version: 7 }));
  assert.throws(() => g.readNs(mem, GPA, () => 1000n), PvclockTornError);
  // a record outside RAM is the memory's error, as on the copying path
  assert.throws(() => g.readNs(mem, 0x1000n - 16n, () => 1000n), /outside guest memory/);
});
