// How each model event reads on a real KVM host: as a kernel tracepoint with its TP_printk fields, as a
// function-tracer entry ("func <-parent"), or as a QEMU trace event written through QEMU's ftrace
// backend into trace_marker. The formats are the kernel's own:
//   arch/x86/kvm/trace.h          kvm_pvclock_update, kvm_write_tsc_offset, kvm_update_master_clock,
//                                 kvm_track_tsc, kvm_msr, kvm_hv_timer_state
//   include/trace/events/kvm.h    kvm_set_irq
//   include/trace/events/timer.h  hrtimer_expire_entry
//   include/trace/events/printk.h console
// Events the models emit without a call path get the one the kernel takes (`path`); the in-kernel PIT's
// chain crosses its kthread queue (pit_timer_fn queues pit_do_work on kvm-pit/<pid>, arch/x86/kvm/i8254.c).
import type { TraceArgs, TraceEvent } from '../core/index.ts';

/** Where an event runs on the host, which decides its task, CPU and irq/preempt flags. */
export type EventContext = 'vcpu' | 'hardirq' | 'kvm-pit' | 'kworker' | 'qemu' | 'guest' | 'model';

export interface RenderedEvent {
  /** Name in the trace_pipe line ("kvm_set_irq", "hrtimer_expire_entry", "tracing_mark_write"). */
  event: string;
  /** Text after "event: " (tracepoints, trace_marker) or the function tracer's "func <-parent". */
  text: string;
}

export interface KernelEvent {
  context: EventContext;
  /** The call path when the model emitted none. */
  path?: readonly string[];
  /** One model event can be several trace_pipe lines (pit_do_work calls kvm_set_irq twice). */
  render: (ev: TraceEvent) => RenderedEvent[];
}

const num = (a: TraceArgs | undefined, k: string): bigint => {
  const v = a?.[k];
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  if (typeof v === 'boolean') return v ? 1n : 0n;
  return 0n;
};
const str = (a: TraceArgs | undefined, k: string): string => String(a?.[k] ?? '');
const hex = (v: bigint, bits = 64): string => BigInt.asUintN(bits, v).toString(16);
const u = (v: bigint, bits = 64): string => BigInt.asUintN(bits, v).toString();

/** The function tracer's line: "func <-parent" (kernel/trace/trace_output.c trace_fn_trace). */
function fn(ev: TraceEvent): RenderedEvent[] {
  const path = eventPath(ev);
  const parent = path.length ? path[path.length - 1] : undefined;
  return [{ event: 'function', text: parent ? `${ev.name} <-${parent}` : ev.name }];
}

/** A QEMU trace event through the ftrace backend: "name args" written into trace_marker. */
function qemuMark(name: string, fields: string): RenderedEvent[] {
  return [{ event: 'tracing_mark_write', text: fields ? `${name} ${fields}` : name }];
}

/** %p in trace output: a hashed 64-bit pointer (lib/vsprintf.c ptr_to_id), stable per timer here. */
export function hashedPointer(key: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(16, '0');
}

function argsText(a: TraceArgs | undefined): string {
  if (!a) return '';
  return Object.entries(a)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}

export const KERNEL_EVENTS: Readonly<Record<string, KernelEvent>> = {
  kvm_pvclock_update: {
    context: 'vcpu',
    render: ({ args: a }) => [
      {
        event: 'kvm_pvclock_update',
        text:
          `vcpu_id ${u(num(a, 'vcpu_id'), 32)}, pvclock { version ${u(num(a, 'version'), 32)}, tsc_timestamp 0x${hex(num(a, 'tsc_timestamp'))}, ` +
          `system_time 0x${hex(num(a, 'system_time'))}, tsc_to_system_mul 0x${hex(num(a, 'tsc_to_system_mul'), 32)}, ` +
          `tsc_shift ${BigInt.asIntN(8, num(a, 'tsc_shift'))}, flags 0x${hex(num(a, 'flags'), 8)} }`,
      },
    ],
  },
  kvm_write_tsc_offset: {
    context: 'vcpu',
    render: ({ args: a }) => [
      {
        event: 'kvm_write_tsc_offset',
        text: `vcpu=${u(num(a, 'vcpu_id'), 32)} prev=${u(num(a, 'previous_tsc_offset'))} next=${u(num(a, 'next_tsc_offset'))}`,
      },
    ],
  },
  kvm_update_master_clock: {
    context: 'vcpu',
    render: ({ args: a }) => [
      {
        event: 'kvm_update_master_clock',
        text: `masterclock ${num(a, 'use_master_clock')} hostclock ${str(a, 'host_clock')} offsetmatched ${num(a, 'offset_matched')}`,
      },
    ],
  },
  kvm_track_tsc: {
    context: 'vcpu',
    render: ({ args: a }) => [
      {
        event: 'kvm_track_tsc',
        text:
          `vcpu_id ${num(a, 'vcpu_id')} masterclock ${num(a, 'use_master_clock')} offsetmatched ${num(a, 'nr_vcpus_matched_tsc')} ` +
          `nr_online ${num(a, 'online_vcpus')} hostclock ${str(a, 'host_clock')}`,
      },
    ],
  },
  kvm_msr: {
    context: 'vcpu',
    render: ({ args: a }) => [
      {
        event: 'kvm_msr',
        text: `msr_${num(a, 'write') ? 'write' : 'read'} ${hex(num(a, 'ecx'), 32)} = 0x${hex(num(a, 'data'))}${num(a, 'exception') ? ' (#GP)' : ''}`,
      },
    ],
  },
  // kvm_lapic.c start_hv_timer / start_sw_timer end in trace_kvm_hv_timer_state(vcpu_id, hv_timer_in_use)
  start_hv_timer: {
    context: 'vcpu',
    path: ['kvm_set_msr_common', 'kvm_set_lapic_tscdeadline_msr', 'restart_apic_timer'],
    render: (ev) => [...fn(ev), { event: 'kvm_hv_timer_state', text: `vcpu_id ${hex(num(ev.args, 'vcpu_id'), 32)} hv_timer 1` }],
  },
  start_sw_timer: {
    context: 'vcpu',
    path: ['kvm_set_msr_common', 'kvm_set_lapic_tscdeadline_msr', 'restart_apic_timer'],
    render: (ev) => [...fn(ev), { event: 'kvm_hv_timer_state', text: `vcpu_id ${hex(num(ev.args, 'vcpu_id'), 32)} hv_timer 0` }],
  },
  kvm_lapic_switch_to_sw_timer: { context: 'vcpu', path: ['kvm_vcpu_block'], render: fn },
  kvm_lapic_switch_to_hv_timer: { context: 'vcpu', path: ['kvm_vcpu_block'], render: fn },
  apic_timer_fn: {
    context: 'hardirq',
    path: ['hrtimer_expire_entry'],
    render: (ev) => [
      { event: 'hrtimer_expire_entry', text: `hrtimer=${hashedPointer(`${ev.source}/lapic`)} function=apic_timer_fn now=${ev.ts}` },
    ],
  },
  // i8254.c: the hrtimer runs pit_timer_fn, which queues pit_do_work on the kvm-pit kthread
  pit_timer_fn: {
    context: 'hardirq',
    path: ['hrtimer_expire_entry'],
    render: (ev) => [{ event: 'hrtimer_expire_entry', text: `hrtimer=${hashedPointer(ev.source)} function=pit_timer_fn now=${ev.ts}` }],
  },
  // pit_do_work: kvm_set_irq(kvm, pit->irq_source_id, 0, 1, false) then (…, 0, 0, false): an edge on
  // GSI 0. The PIT's irq_source_id is 2 (kvm_request_irq_source_id after the userspace and resample ids).
  kvm_set_irq: {
    context: 'kvm-pit',
    path: ['hrtimer_expire_entry', 'pit_timer_fn', 'pit_do_work'],
    render: ({ args: a }) => {
      const gsi = num(a, 'irq');
      return [
        { event: 'kvm_set_irq', text: `gsi ${gsi} level 1 source 2` },
        { event: 'kvm_set_irq', text: `gsi ${gsi} level 0 source 2` },
      ];
    },
  },
  create_pit_timer: { context: 'vcpu', path: ['kernel_pio', 'pit_ioport_write', 'pit_load_count'], render: fn },
  kvm_guest_time_update: { context: 'vcpu', render: fn },
  record_steal_time: { context: 'vcpu', render: fn },
  kvm_synchronize_tsc: { context: 'vcpu', path: ['kvm_arch_vcpu_postcreate'], render: fn },
  pvclock_update_vm_gtod_copy: { context: 'vcpu', render: fn },
  kvm_vm_ioctl_set_clock: { context: 'qemu', path: ['kvm_arch_vm_ioctl'], render: fn },
  kvm_write_wall_clock: { context: 'vcpu', path: ['kvm_set_msr_common'], render: fn },
  kvmclock_update_fn: { context: 'kworker', path: ['process_one_work'], render: fn },
  kvmclock_sync_fn: { context: 'kworker', path: ['process_one_work'], render: fn },
  // QEMU (hw/rtc/mc146818rtc.c, hw/timer/hpet.c, hw/acpi/core.c) and its vm_state_notify trace event
  rtc_update_timer: { context: 'qemu', path: ['timerlist_run_timers'], render: (ev) => qemuMark(ev.name, argsText(ev.args)) },
  rtc_periodic_timer: { context: 'qemu', path: ['timerlist_run_timers'], render: (ev) => qemuMark(ev.name, argsText(ev.args)) },
  rtc_coalesced_timer: { context: 'qemu', path: ['timerlist_run_timers'], render: (ev) => qemuMark(ev.name, argsText(ev.args)) },
  rtc_reinject_on_ack: { context: 'qemu', render: (ev) => qemuMark(ev.name, argsText(ev.args)) },
  hpet_timer: { context: 'qemu', path: ['timerlist_run_timers'], render: (ev) => qemuMark(ev.name, argsText(ev.args)) },
  acpi_pm_tmr_timer: { context: 'qemu', path: ['timerlist_run_timers'], render: (ev) => qemuMark(ev.name, argsText(ev.args)) },
  // qapi/run-state.json RunState: paused = 4, running = 9 (softmmu/runstate.c vm_state_notify)
  qmp_stop: { context: 'qemu', render: () => qemuMark('vm_state_notify', 'running 0 reason 4 (paused)') },
  qmp_cont: { context: 'qemu', render: () => qemuMark('vm_state_notify', 'running 1 reason 9 (running)') },
  // guest kernel code runs on the vCPU thread
  printk: { context: 'guest', render: (ev) => [{ event: 'console', text: str(ev.args, 'line') }] },
  do_settimeofday64: { context: 'guest', render: fn },
  oscillator_wander: {
    context: 'model',
    render: (ev) => [{ event: 'tracing_mark_write', text: `timevisor: ${ev.name} ${argsText(ev.args)}` }],
  },
};

/** The kernel's view of one model event (unknown events read as function-tracer entries). */
export function kernelEvent(name: string): KernelEvent {
  return KERNEL_EVENTS[name] ?? { context: 'vcpu', render: fn };
}

/** The event's call path: the model's own, or the one the kernel takes. */
export function eventPath(ev: TraceEvent): readonly string[] {
  return ev.path.length ? ev.path : (kernelEvent(ev.name).path ?? []);
}
