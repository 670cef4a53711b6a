import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodePvclock,
  encodePvclock,
  decodeStealTime,
  encodeStealTime,
  decodeWallClock,
  encodeWallClock,
  KVM_STEAL_VALID_BITS,
  KVM_STEAL_RESERVED_MASK,
} from '../../src/core/index.ts';

test('pvclock_vcpu_time_info encodes at the offsets of pvclock-abi.h (32 bytes, little endian, s8 shift)', () => {
  const buf = encodePvclock({
    version: 2,
    tscTimestamp: 0x0102030405060708n,
    systemTime: 0x1112131415161718n,
    tscToSystemMul: 0xc5380a73,
    tscShift: -1,
    flags: 1,
  });
  assert.equal(buf.length, 32);
  assert.deepEqual([...buf.subarray(0, 4)], [2, 0, 0, 0]);
  assert.deepEqual([...buf.subarray(8, 16)], [8, 7, 6, 5, 4, 3, 2, 1]);
  assert.deepEqual([...buf.subarray(16, 24)], [0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]);
  assert.deepEqual([...buf.subarray(24, 28)], [0x73, 0x0a, 0x38, 0xc5]);
  assert.equal(buf[28], 0xff);
  assert.equal(buf[29], 1);
  assert.deepEqual(decodePvclock(buf), {
    version: 2,
    tscTimestamp: 0x0102030405060708n,
    systemTime: 0x1112131415161718n,
    tscToSystemMul: 0xc5380a73,
    tscShift: -1,
    flags: 1,
  });
});

test('kvm_steal_time: steal at 0, version at 8, flags at 12, preempted at 16 (64 bytes)', () => {
  const buf = encodeStealTime({ steal: 258n, version: 4, flags: 0, preempted: 1 });
  assert.equal(buf.length, 64);
  assert.deepEqual([...buf.subarray(0, 2)], [2, 1]);
  assert.equal(buf[8], 4);
  assert.equal(buf[16], 1);
  assert.deepEqual(decodeStealTime(buf), { steal: 258n, version: 4, flags: 0, preempted: 1 });
});

test('pvclock_wall_clock is packed: version, sec, nsec (12 bytes)', () => {
  const buf = encodeWallClock({ version: 2, sec: 1_700_000_000, nsec: 999_999_999 });
  assert.equal(buf.length, 12);
  assert.deepEqual(decodeWallClock(buf), { version: 2, sec: 1_700_000_000, nsec: 999_999_999 });
});

test('steal-time MSR masks: 64-byte aligned GPA, bits 1..5 reserved', () => {
  assert.equal(KVM_STEAL_VALID_BITS, 0xffff_ffff_ffff_ffc0n);
  assert.equal(KVM_STEAL_RESERVED_MASK, 0x3en);
});
