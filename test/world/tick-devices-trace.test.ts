// The global clock event devices in a whole simulation's trace (issue 12): a nolapic guest's tick on QEMU's
// HPET (hpet_timer, then the guest's IRQ0 handler, periodic at boot and hrtimer_interrupt once one-shot), and
// on KVM's in-kernel PIT in one-shot mode (pit_load_count → create_pit_timer, the hrtimer, kvm_set_irq).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inOrder } from '../trace/in-order.ts';
import { countPaths, runTrace, tracePipeLines } from '../../src/trace/index.ts';
import { parseScenarioText } from '../../src/world/scenario.ts';

const SCENARIO = `
name: global-ticks
duration: 3s
sample_interval: 1s
hosts:
  - name: h
    tsc: { freq_khz: 2596136 }
vms:
  - name: hpet
    host: h
    profile: qemu-kvm-noinvtsc
    cmdline: nolapic
    timer_interrupts: wired
  - name: pit
    host: h
    profile: firecracker
    cmdline: nolapic
    timer_interrupts: wired
`;

test('the trace reads as the kernel runs it: hpet_timer → timer_interrupt → tick_handle_periodic, then hrtimer_interrupt → tick_sched_timer; the one-shot PIT through create_pit_timer and pit_timer_fn', () => {
  const run = runTrace(parseScenarioText(SCENARIO, 'global-ticks'));
  const lines = run.events.flatMap((e) => tracePipeLines(e, run.vmOrder));
  const paths = countPaths(run.events).map((c) => c.path.join(' → '));
  for (const p of [
    'common_interrupt → timer_interrupt → tick_handle_periodic',
    'common_interrupt → timer_interrupt → hrtimer_interrupt → __hrtimer_run_queues → tick_sched_timer',
    'timerlist_run_timers → hpet_timer',
    'kernel_pio → pit_ioport_write → pit_load_count → create_pit_timer',
    'hrtimer_expire_entry → pit_timer_fn → pit_do_work → kvm_set_irq',
  ])
    assert.ok(paths.includes(p), `${p} not among\n${paths.join('\n')}`);
  // QEMU's HPET timer expires, the guest takes IRQ0: periodic during boot, hrtimer_interrupt once one-shot
  inOrder(lines, [/hpet_timer/, /tick_handle_periodic <-timer_interrupt$/, /hpet_timer/, /tick_sched_timer <-__hrtimer_run_queues$/]);
  // the one-shot PIT: each count load arms KVM's hrtimer, which raises GSI 0 and runs the guest's tick
  inOrder(lines, [
    /create_pit_timer <-pit_load_count$/,
    /hrtimer_expire_entry: hrtimer=[0-9a-f]{16} function=pit_timer_fn now=\d+$/,
    /kvm_set_irq: gsi 0 level 1 source 2$/,
    /tick_sched_timer <-__hrtimer_run_queues$/,
  ]);
});
