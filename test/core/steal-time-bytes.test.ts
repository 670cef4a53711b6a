// The steal-time record's byte-level decode/encode (src/core/pvclock-abi.ts) read little-endian by hand
// (a DataView per record cost more than the decode): checked against DataView on seeded random records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/core/prng.ts';
import { decodeStealTime, KVM_STEAL_TIME_LAYOUT, le32, putLe32, putLe64 } from '../../src/core/pvclock-abi.ts';

test('decodeStealTime equals a DataView decode of the same bytes, at any offset', () => {
  const rng = new Prng(15);
  const L = KVM_STEAL_TIME_LAYOUT;
  for (let i = 0; i < 2000; i++) {
    const off = i % 9;
    const buf = new Uint8Array(off + 64);
    for (let j = 0; j < buf.length; j++) buf[j] = rng.nextU32() & 0xff;
    if (i === 0) buf.fill(0xff); // all ones: u64 2^64−1, u32 2^32−1
    const dv = new DataView(buf.buffer);
    assert.deepEqual(decodeStealTime(buf, off), {
      steal: dv.getBigUint64(off + L.steal, true),
      version: dv.getUint32(off + L.version, true),
      flags: dv.getUint32(off + L.flags, true),
      preempted: dv.getUint8(off + L.preempted),
    });
    assert.equal(le32(buf, off + 4), dv.getUint32(off + 4, true));
  }
  assert.throws(() => decodeStealTime(new Uint8Array(16)), RangeError);
});

test('putLe32 and putLe64 write what DataView writes', () => {
  const rng = new Prng(16);
  for (let i = 0; i < 2000; i++) {
    const v32 = rng.nextU32();
    const v64 = i === 0 ? 2n ** 64n - 1n : (BigInt(rng.nextU32()) << 32n) | BigInt(rng.nextU32());
    const a = new Uint8Array(16);
    const b = new Uint8Array(16);
    putLe32(a, 1, v32);
    putLe64(a, 6, v64);
    const dv = new DataView(b.buffer);
    dv.setUint32(1, v32, true);
    dv.setBigUint64(6, v64, true);
    assert.deepEqual(a, b);
  }
});
