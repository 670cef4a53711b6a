// Timer interrupts in a whole simulation (issue 12): the kvmtool jiffies example with reinject and discard,
// the per-VM summary fields, the trace's kernel call paths in order, and bad input for the new keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inOrder } from '../trace/in-order.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { InputError, MSR_IA32_TSC_DEADLINE, TraceRecorder, type Ns } from '../../src/core/index.ts';
import { captureLateness, cmpNs } from './lateness-capture.ts';
import { countPaths, runTrace, tracePipeLines } from '../../src/trace/index.ts';
import { parseScenario, parseScenarioText, type ScenarioInput } from '../../src/world/scenario.ts';
import { resolveScenario } from '../../src/world/resolve.ts';
import { parse as parseYaml } from 'yaml';
import { simulate } from '../../src/world/simulation.ts';

const EXAMPLE = resolve(import.meta.dirname, '../../examples/kvmtool-jiffies-2to1.yaml');
/** The example, shortened to 10 min and 30 ms (each jiffies guest takes 250 interrupts a second): it ends 30 ms
 *  into a running half (boot at 0, 50 ms of every 100 ms), after the reinject backlog was taken. */
const SHORT = readFileSync(EXAMPLE, 'utf8').replace('duration: 1h', 'duration: 600030ms');

test('the kvmtool jiffies example: discard loses exactly its lost ticks × 4,000,250 ns against reinject; the tickless kvm-clock guest loses none', () => {
  const r = simulate(parseScenarioText(SHORT, 'kvmtool-jiffies-2to1'));
  const vm = (name: string) => r.summary.vms.find((v) => v.name === name)!;
  const re = vm('jiffies-reinject');
  const di = vm('jiffies-discard');
  const tl = vm('kvmclock-tickless');
  assert.equal(re.clocksource, 'refined-jiffies');
  assert.equal(tl.clocksource, 'kvm-clock');
  // reinject: nothing coalesces, the missed ticks come late; discard: the same ticks coalesce instead
  assert.equal(re.ticks_lost, '0');
  assert.ok(Number(re.ticks_reinjected) > 0);
  assert.equal(di.ticks_reinjected, '0');
  assert.equal(di.ticks_lost, re.ticks_reinjected);
  // both take every tick that was not lost; the PIT ticked the same number of times in both
  assert.equal(BigInt(re.timer_irqs) - BigInt(di.timer_irqs), BigInt(di.ticks_lost));
  // Reinject has caught up at the end, so the two clocks differ by exactly the jiffies lost — except the 12 that
  // reinject had already made up before rtc_hctosys (40 + 429.124 ms) stepped both clocks to the same CMOS time:
  // the PIT ticks every 4,000,227 ns from x86_late_time_init (40 + 249.607 ms); 1 tick coalesces in the off half
  // 250–300 ms and 11 in 350–400 ms, all reinjected when the vCPU runs at 300 and 400 ms. The 3 that coalesce in
  // 450–469 ms are reinjected at 500 ms, after the step, and count.
  const behind = BigInt(re.final_offset_ns) - BigInt(di.final_offset_ns);
  assert.equal(behind, (BigInt(di.ticks_lost) - 12n) * 4_000_250n);
  // the vCPU waits up to the 50 ms it is off
  assert.ok(BigInt(re.max_timer_lateness_ns) > 40_000_000n && BigInt(re.max_timer_lateness_ns) <= 50_000_000n, re.max_timer_lateness_ns);
  assert.equal(tl.ticks_lost, '0');
  assert.ok(Math.abs(Number(tl.final_offset_ns) - Number(tl.initial_offset_ns)) < 1e9, `tickless guest: ${tl.final_offset_ns}`);
  // same scenario, same bytes
  const again = simulate(parseScenarioText(SHORT, 'kvmtool-jiffies-2to1'));
  assert.equal(JSON.stringify(again.summary), JSON.stringify(r.summary));
});

test('the kvmtool jiffies example, 20 s: every timer interrupt’s lateness, from the PIT’s edges, the TSC deadlines and the 50-of-100-ms schedule, is each VM’s histogram exactly', () => {
  const trace = new TraceRecorder({ enabled: true, filter: (n) => n === 'kvm_msr' || n === 'kvm_set_irq' });
  const { result, taken } = captureLateness(() =>
    simulate(parseScenarioText(readFileSync(EXAMPLE, 'utf8').replace('duration: 1h', 'duration: 20s'), 'kvmtool-jiffies-2to1'), {
      trace,
    }),
  );
  const summary = result.summary;
  const D = 20_000_000_000n;
  // deschedule { period: 100ms, run: 50ms } from creation at 0: the vCPU threads run in [k·100, k·100 + 50) ms
  const nextRun = (t: Ns) => (t % 100_000_000n < 50_000_000n ? t : (t / 100_000_000n + 1n) * 100_000_000n);
  // the tickless guest's TSC: host0's 2,596,136 kHz from 0 (offset 0); a deadline is reached at ⌈d · 10^6 / kHz⌉
  const khz = 2_596_136n;
  for (const [i, v] of summary.vms.entries()) {
    type Req = { r: Ns; key: string };
    const requests: Req[] = [];
    const armed = new Map<string, Req>();
    for (const ev of trace.recorded) {
      // KVM's PIT raising IRQ0 (from pit_timer_fn, or from the ack notifier releasing a reinjected tick)
      if (ev.name === 'kvm_set_irq' && ev.source === `${v.name}/pit` && ev.args!.irq === 0) requests.push({ r: ev.ts, key: 'IRQ0' });
      if (ev.name !== 'kvm_msr' || !ev.source.startsWith(`${v.name}/vcpu`) || ev.args!.ecx !== MSR_IA32_TSC_DEADLINE) continue;
      const prev = armed.get(ev.source);
      if (prev && prev.r > ev.ts) requests.splice(requests.indexOf(prev), 1);
      armed.delete(ev.source);
      const deadline = BigInt(ev.args!.data as bigint);
      if (deadline === 0n) continue;
      const at = (deadline * 1_000_000n + khz - 1n) / khz;
      const req = { r: at > ev.ts ? at : ev.ts, key: `${ev.source} LVTT` };
      armed.set(ev.source, req);
      requests.push(req);
    }
    // a request finding the same vector still waiting coalesces; one at the instant the waiting one is taken is
    // the tick the guest's EOI released (taken first, then acknowledged): it is taken at once
    const entryOf = new Map<string, Ns>();
    const lateness: Ns[] = [];
    let coalesced = 0;
    let released = 0;
    for (const q of requests.filter((x) => x.r <= D).sort((a, b) => cmpNs(a.r, b.r))) {
      const waiting = entryOf.get(q.key);
      if (waiting === q.r) released++;
      if (waiting !== undefined && q.r < waiting) {
        coalesced++;
        continue;
      }
      const entry = nextRun(q.r);
      entryOf.set(q.key, entry);
      if (entry <= D) lateness.push(entry - q.r);
    }
    lateness.sort(cmpNs);
    const h = taken[i]!;
    assert.ok(h.exact, v.name);
    assert.deepEqual(
      h.entries().flatMap(([ns, n]) => Array<Ns>(n).fill(ns)),
      lateness,
      `${v.name}: the whole distribution`,
    );
    assert.equal(String(lateness.length), v.timer_irqs, v.name);
    assert.equal(String(coalesced), v.ticks_lost, v.name);
    // reinject: every missed tick comes back through an EOI; discard: they coalesce instead
    assert.equal(released, v.name === 'jiffies-reinject' ? Number(v.ticks_reinjected) : 0, v.name);
  }
});

const TRACED = `
name: traced-ticks
duration: 2s
sample_interval: 1s
hosts:
  - name: amd
    tsc: { freq_khz: 2596136 }
  - name: intel
    tsc: { freq_khz: 2596136 }
    cpu: { vendor: intel }
vms:
  - name: jiffies
    host: amd
    profile: kvmtool
    kernel: yocto-qemux86
    cmdline: nolapic
    deschedule: { period: 100ms, run: 50ms }
  - name: tickless
    host: amd
    profile: qemu-kvm-noinvtsc
    timer_interrupts: wired
  - name: tickless-vmx
    host: intel
    profile: qemu-kvm-noinvtsc
    timer_interrupts: wired
`;

test('a trace of the simulation reads like the bpftrace session: pit_timer_fn → pit_do_work → kvm_set_irq, the TSC-deadline MSR path, the sw-timer switch', () => {
  const run = runTrace(parseScenarioText(TRACED, 'traced-ticks'));
  const lines = run.events.flatMap((e) => tracePipeLines(e, run.vmOrder));
  const paths = countPaths(run.events).map((c) => c.path.join(' → '));
  // the jiffies guest's PIT: the hrtimer, the kvm-pit worker's edge on GSI 0, the guest's tick handler
  inOrder(lines, [
    /hrtimer_expire_entry: hrtimer=[0-9a-f]{16} function=pit_timer_fn now=\d+$/,
    /kvm-pit\/\d+-\d+ .* kvm_set_irq: gsi 0 level 1 source 2$/,
    /tick_handle_periodic <-timer_interrupt$/,
  ]);
  // missed ticks reinjected one per EOI (KVM_CREATE_PIT2's default policy)
  assert.ok(paths.includes('kvm_notify_acked_irq → kvm_pit_ack_irq → pit_do_work → kvm_set_irq'), 'a reinjected tick');
  // the tickless guests: WRMSR IA32_TSC_DEADLINE, KVM arms its timer, the timer expires, tick_sched_timer runs
  inOrder(lines, [
    /kvm_msr: msr_write 6e0 = 0x[0-9a-f]+$/,
    /start_sw_timer <-restart_apic_timer$/,
    /hrtimer_expire_entry: hrtimer=[0-9a-f]{16} function=apic_timer_fn now=\d+$/,
    /apic_timer_expired <-apic_timer_fn$/,
    /tick_sched_timer <-__hrtimer_run_queues$/,
  ]);
  // on the Intel host the deadline goes to the VMX preemption timer, and to the hrtimer when the idle vCPU halts
  inOrder(lines, [
    /start_hv_timer <-restart_apic_timer$/,
    /kvm_lapic_switch_to_sw_timer <-kvm_vcpu_block$/,
    /apic_timer_expired <-apic_timer_fn$/,
  ]);
  for (const p of [
    'hrtimer_expire_entry → pit_timer_fn → pit_do_work → kvm_set_irq',
    'kvm_set_msr_common → kvm_set_lapic_tscdeadline_msr → restart_apic_timer → start_sw_timer',
    'hrtimer_expire_entry → apic_timer_fn → apic_timer_expired',
    'kvm_vcpu_block → kvm_lapic_switch_to_sw_timer',
  ])
    assert.ok(paths.includes(p), `${p} not among\n${paths.join('\n')}`);
});

test('bad timer keys: one line naming the key and what is allowed', () => {
  const errorOf = (vm: string): InputError => {
    try {
      parseScenarioText(
        `duration: 1h\nhosts: [{ name: h, tsc: { freq_khz: 2596136 } }]\nvms:\n  - { name: v, host: h, ${vm} }\n`,
        'bad.yaml',
      );
    } catch (e) {
      assert.ok(e instanceof InputError, String(e));
      return e;
    }
    assert.fail('expected an InputError');
  };
  let e = errorOf('pit_lost_tick_policy: drop');
  assert.equal(e.path, 'vms[0].pit_lost_tick_policy');
  assert.match(e.message, /reinject.*discard/);
  e = errorOf('profile: qemu-tcg, pit_lost_tick_policy: discard');
  assert.equal(e.path, 'vms[0].pit_lost_tick_policy');
  assert.equal(e.message, "is KVM's in-kernel PIT option; qemu-tcg has QEMU's userspace PIT");
  e = errorOf('deschedule: { period: 10ms, run: 20ms }');
  assert.equal(e.path, 'vms[0].deschedule');
  assert.equal(e.message, 'run must not be longer than period');
  e = errorOf('deschedule: { period: 0ms, run: 0ms }');
  assert.equal(e.path, 'vms[0].deschedule.period');
  assert.match(e.message, /greater than 0/);
});

/** An example file with every VM's timer_interrupts set. */
function withTimerInterrupts(file: string, mode: 'wired' | 'direct' | 'auto'): ScenarioInput {
  const doc = parseYaml(readFileSync(resolve(import.meta.dirname, '../../examples', file), 'utf8')) as ScenarioInput & {
    vms: Record<string, unknown>[];
  };
  return { ...doc, vms: doc.vms.map((vm) => ({ ...vm, timer_interrupts: mode })) } as ScenarioInput;
}

/** summary.json without what only the wired path counts (its interrupts and their engine events). */
function clocksOnly(s: ReturnType<typeof simulate>['summary']): string {
  const { events_dispatched: _, ...rest } = s as typeof s & { events_dispatched?: unknown };
  return JSON.stringify({
    ...rest,
    vms: s.vms.map(({ timer_irqs: _a, ticks_lost: _b, ticks_reinjected: _c, max_timer_lateness_ns: _d, timer_lateness_ns: _e, ...v }) => v),
  });
}

test('timer_interrupts: direct runs the one-shot tick at its programmed expiries: the same clocks as the wired LAPIC path where no vCPU waits', () => {
  for (const file of ['firecracker-restore-60s.yaml', 'migrate-2.6-to-3.0ghz.yaml', 'vmgenid.yaml', 'host-clock-step.yaml']) {
    const wired = simulate(parseScenario(withTimerInterrupts(file, 'wired'))).summary;
    const direct = simulate(parseScenario(withTimerInterrupts(file, 'direct'))).summary;
    assert.equal(clocksOnly(direct), clocksOnly(wired), file);
    // the wired path took its interrupts after boot, the direct one only the boot-time periodic ones
    assert.ok(
      wired.vms.every((v, i) => BigInt(v.timer_irqs!) > BigInt(direct.vms[i]!.timer_irqs!)),
      file,
    );
  }
});

test('timer_interrupts: auto is wired where an interrupt can differ from its expiry (shared CPUs, deschedule, RDTSC exiting, skewed TSCs), else direct', () => {
  const direct = (input: ScenarioInput) => resolveScenario(parseScenario(input)).vms.map((v) => v.directOneshotTick);
  const base = { duration: '1min', hosts: [{ name: 'h', tsc: { freq_khz: 2596136 } }] };
  const vm = { name: 'v', host: 'h', profile: 'qemu-kvm' };
  assert.deepEqual(direct({ ...base, vms: [vm] } as ScenarioInput), [true]);
  assert.deepEqual(direct({ ...base, vms: [{ ...vm, timer_interrupts: 'wired' }] } as ScenarioInput), [false]);
  assert.deepEqual(direct({ ...base, vms: [{ ...vm, deschedule: { period: '10ms', run: '5ms' } }] } as ScenarioInput), [false]);
  assert.deepEqual(direct({ ...base, vms: [{ ...vm, rdtsc_exiting: { exit_cost: '1us' } }] } as ScenarioInput), [false]);
  assert.deepEqual(direct({ ...base, hosts: [{ ...base.hosts[0], cpus: 4 }], vms: [vm] } as ScenarioInput), [false]);
  assert.deepEqual(direct({ ...base, hosts: [{ ...base.hosts[0], tsc_skew: { per_cpu_ns: [0, 100] } }], vms: [vm] } as ScenarioInput), [
    false,
  ]);
});
