// QEMU_CLOCK_VIRTUAL for the VM's devices: it stands still while the VM is stopped, and device timers on
// it keep the time they had left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { VmVirtualClock } from '../../src/vmm/index.ts';

test('the virtual clock counts from its creation and stands still while stopped', () => {
  const e = new Engine();
  e.run(1000n);
  const vc = new VmVirtualClock(e);
  e.run(1500n);
  assert.equal(vc.clock(), 500n);
  vc.stop();
  e.run(4000n);
  assert.equal(vc.clock(), 500n);
  assert.equal(vc.running, false);
  vc.start();
  e.run(4100n);
  assert.equal(vc.clock(), 600n);
});

test('a timer pending at stop fires after start with the time it had left; expires reads as if restarted now', () => {
  const e = new Engine();
  const vc = new VmVirtualClock(e);
  const fired: bigint[] = [];
  const t = vc.scheduler.timer(() => fired.push(e.now));
  t.armIn(1000n); // due at 1000
  e.run(300n);
  vc.stop();
  e.run(5000n);
  assert.deepEqual(fired, []);
  assert.equal(t.pending, true);
  assert.equal(t.expires, 5000n + 700n);
  vc.start();
  e.run(10_000n);
  assert.deepEqual(fired, [5700n]);
  assert.equal(t.pending, false);
});

test('a timer armed or cancelled while stopped takes effect from the restart', () => {
  const e = new Engine();
  const vc = new VmVirtualClock(e);
  const fired: string[] = [];
  const a = vc.scheduler.timer(() => fired.push(`a@${e.now}`));
  const b = vc.scheduler.timer(() => fired.push(`b@${e.now}`));
  b.armIn(100n);
  vc.stop();
  a.armIn(50n);
  b.cancel();
  e.run(1000n);
  vc.start();
  e.run(2000n);
  assert.deepEqual(fired, ['a@1050']);
});
