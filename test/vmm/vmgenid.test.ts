// The VMGenID device (src/vmm/vmgenid.ts) and the guest driver (src/guest/vmgenid.ts), byte by byte.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prng } from '../../src/core/index.ts';
import { VMFORK_RESEED_LINE, VmgenidDriver } from '../../src/guest/index.ts';
import { FlatGuestMemory } from '../../src/hypervisor/index.ts';
import { guidText, VmgenidDevice } from '../../src/vmm/index.ts';

const GPA = 0x2028n;
const random = (seed = 7) => {
  const p = new Prng(seed);
  return () => p.nextU32();
};

test('QEMU guid=<uuid>: the guest reads the GUID with its three first fields little-endian, and every load writes the same', () => {
  const mem = new FlatGuestMemory(0x4000);
  const dev = new VmgenidDevice(mem, GPA, 'qemu', { guid: '324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87', random: random() });
  assert.deepEqual([...mem.read(GPA, 4)], [0xaf, 0x6e, 0x4e, 0x32]); // qemu_uuid_bswap: time_low little-endian
  assert.equal(guidText(dev.read()), '324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87');
  assert.equal(dev.load(), true); // vmgenid_post_load notifies regardless
  assert.equal(guidText(dev.read()), '324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87');
  assert.equal(dev.generations, 0);
});

test('QEMU guid=auto: a version-4 UUID per QEMU process (qemu_uuid_generate), a new one on each load; same seed, same GUIDs', () => {
  const mem = new FlatGuestMemory(0x4000);
  const dev = new VmgenidDevice(mem, GPA, 'qemu', { guid: 'auto', random: random() });
  const first = guidText(dev.read());
  assert.match(first, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  dev.load();
  assert.notEqual(guidText(dev.read()), first);
  assert.equal(dev.generations, 1);
  const again = new VmgenidDevice(new FlatGuestMemory(0x4000), GPA, 'qemu', { guid: 'auto', random: random() });
  assert.equal(guidText(again.read()), first);
});

test('Firecracker: 16 random bytes (u128 little-endian) at boot and at every restore', () => {
  const mem = new FlatGuestMemory(0x4000);
  const dev = new VmgenidDevice(mem, GPA, 'firecracker', { guid: 'auto', random: random(3) });
  const a = dev.read().slice();
  dev.load();
  assert.notDeepEqual(dev.read(), a);
  assert.equal(dev.generations, 1);
});

test('the guest driver reseeds only when the identifier changed (vmgenid_notify memcmp), printing add_vmfork_randomness’s line', () => {
  const mem = new FlatGuestMemory(0x4000);
  const fixed = new VmgenidDevice(mem, GPA, 'qemu', { guid: '324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87', random: random() });
  const log: string[] = [];
  const drv = new VmgenidDriver(
    () => mem.read(GPA, 16),
    (l) => log.push(l),
  );
  assert.equal(fixed.load() && drv.notify(), false);
  assert.deepEqual(log, []);
  const auto = new VmgenidDevice(mem, GPA, 'qemu', { guid: 'auto', random: random() }); // another process wrote its GUID
  assert.equal(auto.load() && drv.notify(), true);
  assert.deepEqual(log, [VMFORK_RESEED_LINE]);
  assert.equal(VMFORK_RESEED_LINE, 'random: crng reseeded due to virtual machine fork');
  assert.equal(drv.notify(), false); // notified again with nothing new
  assert.equal(drv.reseeds, 1);
});
