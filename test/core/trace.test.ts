import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceRecorder } from '../../src/core/trace.ts';

test('a recorder is off by default and records nothing', () => {
  const t = new TraceRecorder();
  assert.equal(t.on, false);
  t.instant(1n, 'vm0', 'pit_timer_fn', ['hrtimer_interrupt']);
  assert.equal(t.recorded.length, 0);
  assert.equal(TraceRecorder.off.on, false);
});

test('events keep name, parent path, source and args; stackCounts folds them', () => {
  const t = new TraceRecorder({ enabled: true });
  t.instant(10n, 'vm0/pit', 'pit_timer_fn', ['hrtimer_interrupt', '__hrtimer_run_queues'], { channel: 0 });
  t.instant(20n, 'vm0/pit', 'pit_timer_fn', ['hrtimer_interrupt', '__hrtimer_run_queues']);
  t.begin(30n, 'vm0/vcpu0', 'kvm_guest_time_update', ['vcpu_enter_guest']);
  t.end(31n, 'vm0/vcpu0', 'kvm_guest_time_update', ['vcpu_enter_guest']);
  assert.equal(t.recorded.length, 4);
  assert.deepEqual(t.recorded[0], {
    ts: 10n,
    name: 'pit_timer_fn',
    path: ['hrtimer_interrupt', '__hrtimer_run_queues'],
    source: 'vm0/pit',
    ph: 'i',
    args: { channel: 0 },
  });
  assert.deepEqual(
    [...t.stackCounts()],
    [
      ['hrtimer_interrupt;__hrtimer_run_queues;pit_timer_fn', 2],
      ['vcpu_enter_guest;kvm_guest_time_update', 1],
    ],
  );
});

test('limit and filter bound what is kept', () => {
  const t = new TraceRecorder({ enabled: true, limit: 2, filter: (n) => n.startsWith('kvm_') });
  for (let i = 0; i < 5; i++) t.instant(BigInt(i), 's', i % 2 ? 'kvm_set_irq' : 'other');
  assert.equal(t.recorded.length, 2);
  assert.equal(t.droppedCount, 0 + 0); // filtered events are not "dropped"
  t.instant(9n, 's', 'kvm_x');
  assert.equal(t.droppedCount, 1);
  t.clear();
  assert.equal(t.recorded.length, 0);
});
