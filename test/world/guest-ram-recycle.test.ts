// A finished world hands its VMs' RAM to the next world's VMs in the same thread (World.release →
// FlatGuestMemory.recycle): the next VM must see exactly the all-zero RAM a fresh buffer has, so a VM run
// on recycled RAM leaves the same RAM, guest clocks and results as one run on a fresh buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlatGuestMemory, guestRamSpares } from '../../src/hypervisor/guest-memory.ts';
import { parseScenarioText } from '../../src/world/scenario.ts';
import { resolveScenario } from '../../src/world/resolve.ts';
import { simulate, timelineCsv } from '../../src/world/simulation.ts';
import { World } from '../../src/world/world.ts';

const RAM = 0x20_0000;
const json = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));

/** Runs `yaml`'s VMs to its end; returns every VM's whole RAM and clocks, then releases the world. */
function runWorld(yaml: string): string {
  const r = resolveScenario(parseScenarioText(yaml, 'test'));
  const world = new World(r);
  const booted = r.vms.map((vm) => world.bootVm(vm));
  world.engine.run(r.durationNs);
  const out = json(
    booted.map((b) => ({
      ram: Buffer.from(b.vm.memory.bytes).toString('base64'),
      clocks: (['realtime', 'monotonic', 'boottime'] as const).map((id) => b.guest.clockGettime(id)),
      stat: b.guest.procStat(),
    })),
  );
  world.release();
  return out;
}

// a steal-time record that counts (a 70 % CPU share), two vCPUs on kvm-clock: every in-place record KVM keeps
const DIRTY = `
name: dirty
duration: 10m
hosts: [{ name: h, tsc: { freq_khz: 2596136 }, oscillator: { ppm: 7 } }]
vms: [{ name: a, host: h, vcpus: 2, cmdline: 'clocksource=kvm-clock', deschedule: { period: 10ms, run: 7ms } }]
`;
const PROBE = `
name: probe
duration: 5m
hosts: [{ name: h, tsc: { freq_khz: 2200000 } }]
vms:
  - { name: v, host: h, pauses: [{ at: 1m, duration: 30s }], sync: { method: ntp } }
  - { name: w, host: h, vcpus: 2, cmdline: 'clocksource=kvm-clock' }
`;

test('FlatGuestMemory.recycle: the next memory of that size gets the buffer back all zero; the released one refuses reads', () => {
  guestRamSpares.clear();
  const a = new FlatGuestMemory(RAM);
  a.write(0x10_0000n, Uint8Array.of(1, 2, 3));
  a.bytes[RAM - 1] = 0xff; // an in-place write (KVM's records are written through the word views)
  const buf = a.bytes.buffer;
  a.recycle();
  assert.equal(guestRamSpares.count(RAM), 1);
  assert.throws(() => a.read(0x10_0000n, 3), /released/);
  const b = new FlatGuestMemory(RAM);
  assert.equal(b.bytes.buffer, buf, 'the recycled buffer');
  assert.equal(guestRamSpares.count(RAM), 0);
  assert.equal(b.bytes.length, RAM);
  assert.ok(
    b.bytes.every((x) => x === 0),
    'all zero',
  );
  assert.equal(b.words?.u8, b.bytes);
  // another size is not handed this one
  b.recycle();
  assert.notEqual(new FlatGuestMemory(0x1000).bytes.buffer, buf);
});

test('a world on recycled RAM leaves the same RAM, clocks and CPU times as one on fresh RAM', () => {
  guestRamSpares.clear();
  const fresh = runWorld(PROBE);
  runWorld(DIRTY);
  assert.ok(guestRamSpares.count(RAM) >= 1, 'the dirty world handed its RAM back');
  const recycled = runWorld(PROBE);
  assert.equal(recycled, fresh);
});

test('simulate() after another simulate() gives the same result as in a fresh thread', () => {
  guestRamSpares.clear();
  const probe = parseScenarioText(PROBE, 'probe');
  const first = simulate(probe);
  simulate(parseScenarioText(DIRTY, 'dirty'));
  assert.equal(guestRamSpares.count(RAM), 2, 'both worlds released their VMs (a fleet worker reuses them)');
  const again = simulate(probe);
  assert.equal(json(again.summary), json(first.summary));
  assert.equal(timelineCsv(again.timeline), timelineCsv(first.timeline));
  assert.equal(json(again.series), json(first.series));
});
