import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inOrder } from './in-order.ts';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Engine } from '../../src/core/engine.ts';
import { TraceRecorder } from '../../src/core/trace.ts';
import { KvmPit } from '../../src/hypervisor/kvm-pit.ts';
import { APIC_LVT_TIMER_TSCDEADLINE, APIC_LVTT, LapicTimer, MSR_IA32_TSC_DEADLINE, noIrq } from '../../src/devices/index.ts';
import { chromeTrace, countPaths, formatPathCounts, runTrace, tracePipeLines } from '../../src/trace/index.ts';
import { DEMO_SCENARIO_YAML } from '../../src/world/demo.ts';
import { loadScenario, parseScenarioText } from '../../src/world/scenario.ts';
import { simulate } from '../../src/world/simulation.ts';

const FIXTURE = resolve(import.meta.dirname, '../fixtures/report/pause-short.yaml');
const BIN = resolve(import.meta.dirname, '../../bin/timevisor.js');
const tv = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

const run = runTrace(loadScenario(FIXTURE));
const pipe = run.events.flatMap((e) => tracePipeLines(e, run.vmOrder));

test('trace_pipe lines have the kernel layout: task-pid, [cpu], flags, timestamp, event: fields', () => {
  const line = pipe.find((l) => l.includes('kvm_pvclock_update:'))!;
  assert.equal(
    line,
    '       CPU 0/KVM-4101    [000] d..1.     0.350000: kvm_pvclock_update: vcpu_id 0, pvclock { version 2, tsc_timestamp 0x0, system_time 0x0, tsc_to_system_mul 0xc53756f3, tsc_shift -1, flags 0x1 }',
  );
  for (const l of pipe) assert.match(l, /^ {0,16}\S.{0,15}-\d+ +\[\d{3}\] [d.][N.][hs.][\d.][\d.] +\d+\.\d{6}: \S/, l);
});

test('the in-kernel PIT: hrtimer_expire_entry(pit_timer_fn), then pit_do_work raising and lowering GSI 0 on kvm-pit', () => {
  const at = inOrder(pipe, [
    /<idle>-0 +\[000\] d\.h1\. +0\.054925: hrtimer_expire_entry: hrtimer=[0-9a-f]{16} function=pit_timer_fn now=54925401$/,
    /kvm-pit\/4100-4190 +\[000\] \.{5} +0\.054925: kvm_set_irq: gsi 0 level 1 source 2$/,
    /kvm-pit\/4100-4190 .* kvm_set_irq: gsi 0 level 0 source 2$/,
  ]);
  assert.equal(at[2], at[1]! + 1);
  const paths = countPaths(run.events).map((c) => c.path.join(' → '));
  assert.ok(paths.includes('hrtimer_expire_entry → pit_timer_fn → pit_do_work → kvm_set_irq'), paths.join('\n'));
});

test('kvmclock setup: the guest writes MSR 0x4b564d01, KVM updates the master clock and writes the pvclock record', () => {
  const vm = pipe.filter((l) => /-410\d /.test(l));
  inOrder(vm, [
    /kvm_update_master_clock: masterclock 0 hostclock tsc offsetmatched 0/,
    /kvm_write_tsc_offset: vcpu=0 prev=0 next=0/,
    /kvm_track_tsc: vcpu_id 0 masterclock 0 offsetmatched 0 nr_online 1 hostclock tsc/,
    /kvm_synchronize_tsc <-kvm_arch_vcpu_postcreate/,
    /kvm_update_master_clock: masterclock 1 hostclock tsc offsetmatched 1/,
    /kvm_msr: msr_write 4b564d01 = 0x100001$/,
    /kvm_guest_time_update <-vcpu_enter_guest/,
    /kvm_pvclock_update: vcpu_id 0, pvclock \{ version 2, /,
    /kvm_msr: msr_write 4b564d00 = 0x101000$/,
    /kvm_msr: msr_write 4b564d03 = 0x102001$/,
    /record_steal_time <-vcpu_enter_guest/,
  ]);
});

test('a pause: vm_state_notify paused, KVM_SET_CLOCK on continue, GUEST_STOPPED in the record, then the agent sets the time', () => {
  const vm = pipe.filter((l) => /-41\d\d /.test(l));
  inOrder(vm, [
    /300\.000000: tracing_mark_write: vm_state_notify running 0 reason 4 \(paused\)/,
    /360\.000000: kvm_vm_ioctl_set_clock <-kvm_arch_vm_ioctl/,
    /360\.000000: kvm_pvclock_update: vcpu_id 0, pvclock \{ version 6, .* flags 0x3 \}/,
    /360\.000000: tracing_mark_write: vm_state_notify running 1 reason 9 \(running\)/,
    /361\.000000: do_settimeofday64 <-__x64_sys_clock_settime/,
  ]);
  // the NTP guest gets no settimeofday from an agent
  assert.ok(!pipe.some((l) => /-42\d\d .*do_settimeofday64/.test(l)));
});

test('--vm and --filter keep only matching events; a frame of the call path counts', () => {
  const r = runTrace(loadScenario(FIXTURE), { vm: 'vm-ntp', filter: 'pit_do_work' });
  assert.ok(r.events.length > 0);
  for (const e of r.events) {
    assert.equal(e.source, 'vm-ntp/pit');
    assert.equal(e.name, 'kvm_set_irq');
  }
});

test("path counts print in bpftrace's map layout, smallest count first; --stacks prints kernel stacks", () => {
  const counts = countPaths(run.events);
  const text = formatPathCounts(counts);
  for (const l of text.trimEnd().split('\n')) assert.match(l, /^@\[[\w.]+(, [\w.]+)*\]: \d+$/);
  const values = counts.map((c) => c.count);
  assert.deepEqual(
    values,
    [...values].sort((a, b) => a - b),
  );
  const stacks = formatPathCounts(
    counts.filter((c) => c.path.at(-1) === 'kvm_set_irq'),
    { stacks: true },
  );
  assert.match(stacks, /^@\[\n {4}kvm_set_irq\n {4}pit_do_work\n {4}pit_timer_fn\n {4}hrtimer_expire_entry\n\]: \d+\n/);
});

test('a PIT driven directly (mode 2, reinject) traces the same chain, and deferred ticks show as expiries without kvm_set_irq', () => {
  const engine = new Engine();
  const trace = new TraceRecorder({ enabled: true });
  const pit = new KvmPit({ scheduler: engine, irq: noIrq, name: 'vm0/pit', trace, reinject: true, reset: 'kvm' });
  pit.portWrite(0x43, 1, 0x34); // channel 0, lo/hi, mode 2
  pit.portWrite(0x40, 1, 0x9c);
  pit.portWrite(0x40, 1, 0x2e); // 11932: 100 Hz
  engine.run(35_000_000n);
  const names = trace.recorded.map((e) => e.name);
  const armed = names.lastIndexOf('create_pit_timer');
  // every 10 ms an expiry; IRQ0 only for the first, the rest wait for an EOI that never comes (reinject)
  assert.deepEqual(names.slice(armed), ['create_pit_timer', 'pit_timer_fn', 'kvm_set_irq', 'pit_timer_fn', 'pit_timer_fn']);
  const lines = trace.recorded.slice(armed).flatMap((e) => tracePipeLines(e, ['vm0']));
  assert.match(lines[1]!, /hrtimer_expire_entry: hrtimer=[0-9a-f]{16} function=pit_timer_fn now=10000\d{3}$/);
  assert.match(lines[2]!, /kvm-pit\/4100-4190 .* kvm_set_irq: gsi 0 level 1 source 2$/);
});

test('Perfetto: trace-event JSON with process and thread names, instants, counters for offset and steal', () => {
  const t = chromeTrace(run.events, run.result.timeline, run.vmOrder);
  assert.equal(t.displayTimeUnit, 'ns');
  const ph = new Set(['i', 'B', 'E', 'C', 'M']);
  for (const e of t.traceEvents) {
    assert.ok(ph.has(e.ph), e.ph);
    assert.equal(typeof e.name, 'string');
    assert.ok(Number.isFinite(e.ts) && e.ts >= 0);
    assert.ok(Number.isInteger(e.pid) && Number.isInteger(e.tid));
    if (e.ph === 'i') assert.ok(e.s === 't' || e.s === 'p' || e.s === 'g');
    if (e.ph === 'C') for (const v of Object.values(e.args!)) assert.equal(typeof v, 'number');
    if (e.ph === 'M') assert.equal(typeof (e.args as { name: string }).name, 'string');
  }
  const metaNames = t.traceEvents.filter((e) => e.ph === 'M').map((e) => (e.args as { name: string }).name);
  for (const n of ['host', 'vm-agent (qemu-system-x86)', 'vm-ntp (qemu-system-x86)', 'CPU 0/KVM', 'pit', 'rtc', 'CPU 0', 'qemu-system-x86'])
    assert.ok(metaNames.includes(n), `${n} in ${metaNames.join(', ')}`);
  // the PIT's hrtimer fires in host interrupt context: on the host's CPU 0 track
  const expiry = t.traceEvents.find((e) => e.name === 'pit_timer_fn')!;
  assert.deepEqual([expiry.pid, expiry.tid], [1, 0]);
  const stop = t.traceEvents.find((e) => e.name === 'qmp_stop')!;
  assert.equal(stop.s, 'p');
  assert.equal(stop.ts, 300_000_000);
  assert.ok(t.traceEvents.some((e) => e.ph === 'C' && e.name.startsWith('guest REALTIME')));
  assert.ok(t.traceEvents.some((e) => e.ph === 'C' && e.name.startsWith('steal')));
  // timestamps never go backwards after the metadata block
  const ts = t.traceEvents.filter((e) => e.ph !== 'M').map((e) => e.ts);
  assert.deepEqual(
    ts,
    [...ts].sort((a, b) => a - b),
  );
});

test('`timevisor trace FILE --perfetto` prints the same bytes twice and writes the JSON whole', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-trace-'));
  const a = tv('trace', FIXTURE, '--perfetto', join(dir, 'a.json'), '--quiet');
  const b = tv('trace', FIXTURE, '--quiet');
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.equal(a.stderr, '');
  assert.match(a.stdout, /\n\n@\[/);
  JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8'));
  assert.deepEqual(readdirSync(dir), ['a.json']);
});

test('--json: events with exact ns as strings, and the counted paths', () => {
  const r = tv('trace', FIXTURE, '--json', '--vm', 'vm-agent', '--filter', 'kvm_pvclock_update');
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as {
    events: { ts: string; name: string; args: Record<string, unknown> }[];
    paths: { path: string[]; count: number }[];
  };
  assert.ok(doc.events.length >= 3);
  assert.equal(doc.events[0]!.ts, '350000000');
  assert.equal(doc.events[0]!.args.tsc_to_system_mul, 3308738291);
  assert.deepEqual(doc.paths, [
    { path: ['vcpu_enter_guest', 'kvm_guest_time_update', 'kvm_setup_guest_pvclock', 'kvm_pvclock_update'], count: doc.events.length },
  ]);
});

test("--ftrace: a real guest's function_graph trace counted in the same layout", () => {
  const file = resolve(import.meta.dirname, '../lab/fixtures/rtc_read_time.function_graph.txt');
  const r = tv('trace', '--ftrace', file, '--filter', 'rtc_cmos_read');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '@[rtc_read_time, __rtc_read_time, cmos_read_time, mc146818_get_time, mc146818_avoid_UIP, rtc_cmos_read]: 5\n');
  const bad = tv('trace', '--ftrace', BIN);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr, `timevisor: ${BIN}: no function_graph calls found (expected the output of the function_graph tracer)\n`);
});

test('VMs booted in another order than listed keep their own events', () => {
  const s = loadScenario(FIXTURE);
  const late = { ...s, vms: [{ ...s.vms[0]!, boot_at: 120_000_000_000n, pauses: [] }, s.vms[1]!] };
  const r = runTrace(late, { filter: 'kvm_synchronize_tsc' });
  assert.deepEqual(
    r.events.filter((e) => e.name === 'kvm_synchronize_tsc').map((e) => [e.source, e.ts]),
    [
      ['vm-ntp/vcpu0', 0n],
      ['vm-agent/vcpu0', 120_000_000_000n],
    ],
  );
});

test('tracing changes nothing: the same timeline and summary with it on and off', () => {
  const off = simulate(loadScenario(FIXTURE));
  assert.deepEqual(run.result.timeline, off.timeline);
  assert.deepEqual(run.result.summary, off.summary);
});

test('bad --vm or --filter: one line naming the option, exit 2, nothing written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-trace-'));
  const r = tv('trace', FIXTURE, '--vm', 'nope', '--perfetto', join(dir, 'x.json'));
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'timevisor: --vm: no VM named "nope" in scenario "pause-short" (it has vm-agent, vm-ntp)\n');
  assert.deepEqual(readdirSync(dir), []);
  const f = tv('trace', FIXTURE, '--filter', 'a b');
  assert.equal(f.status, 2);
  assert.match(f.stderr, /^timevisor: --filter: "a b" is not an event name/);
});

test('LAPIC TSC-deadline: kvm_set_msr_common → kvm_set_lapic_tscdeadline_msr → start_hv_timer/start_sw_timer, with kvm_hv_timer_state', () => {
  const engine = new Engine();
  const trace = new TraceRecorder({ enabled: true });
  const lapic = new LapicTimer({ scheduler: engine, irq: noIrq, name: 'vm0/vcpu0', trace, tscKhz: 1_000_000, hvTimer: true });
  lapic.writeReg(APIC_LVTT, APIC_LVT_TIMER_TSCDEADLINE | 0xec);
  lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 1_000_000n); // 1 ms ahead, vCPU in guest mode: VMX preemption timer
  lapic.setRunState('halted'); // vcpu_block moves it to an hrtimer
  engine.run(2_000_000n);
  lapic.setRunState('running');
  lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 3_000_000n);
  lapic.setRunState('halted');
  lapic.msrWrite(MSR_IA32_TSC_DEADLINE, 4_000_000n); // armed while halted: a software timer from the start
  const lines = trace.recorded.flatMap((e) => tracePipeLines(e, ['vm0']));
  const text = lines.map((l) => l.replace(/^.*?: /, ''));
  assert.deepEqual(text.slice(0, 4), [
    'start_hv_timer <-restart_apic_timer',
    'kvm_hv_timer_state: vcpu_id 0 hv_timer 1',
    'kvm_lapic_switch_to_sw_timer <-kvm_vcpu_block',
    'hrtimer_expire_entry: hrtimer=' +
      text[3]!.slice('hrtimer_expire_entry: hrtimer='.length, 'hrtimer_expire_entry: hrtimer='.length + 16) +
      ' function=apic_timer_fn now=1000000',
  ]);
  assert.deepEqual(text.slice(-2), ['start_sw_timer <-restart_apic_timer', 'kvm_hv_timer_state: vcpu_id 0 hv_timer 0']);
  const paths = countPaths(trace.recorded).map((c) => c.path.join(' → '));
  assert.ok(paths.includes('kvm_set_msr_common → kvm_set_lapic_tscdeadline_msr → restart_apic_timer → start_sw_timer'), paths.join('\n'));
});

test('an NTP step after a pause is traced as the kernel path it takes: clock_adjtime → do_adjtimex → timekeeping_inject_offset', () => {
  const demo = runTrace(parseScenarioText(DEMO_SCENARIO_YAML, 'demo'));
  const lines = demo.events.flatMap((e) => tracePipeLines(e, demo.vmOrder));
  // the pause at 6 h ends at 6.25 h; the NTP client's first poll after it steps the clock
  const after = lines.filter((l) => /timekeeping_inject_offset <-do_adjtimex/.test(l)).map((l) => Number(/ (\d+\.\d+): /.exec(l)![1]));
  assert.ok(
    after.some((t) => t > 22_500 && t < 22_600),
    `steps at ${after.join(', ')}`,
  );
  assert.ok(lines.some((l) => /do_adjtimex <-__x64_sys_clock_adjtime/.test(l)));
});
