// Every vCPU has its own clock event device (issue 12): its LAPIC timer programmed by its own tick, its
// interrupts late by its own thread's schedule, its steal accounted at its own tick; the do_timer duty passes
// between idle NOHZ CPUs; the clocksource watchdog's timer rotates over the CPUs and runs when its CPU runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, IRQ0_VECTOR, LOCAL_TIMER_VECTOR, TraceRecorder, type Ns } from '../../src/core/index.ts';
import { bootVm, kernelPreset, machineProfile } from '../../src/vmm/index.ts';
import { HostCpus } from '../../src/world/host-cpus.ts';
import { FifoRoundRobin } from '../world/fifo-round-robin.ts';

const S = 1_000_000_000n;
const THREADS = ['vm/vcpu0', 'vm/vcpu1'];
/** A busy host thread beside them, for longer waits. */
const WITH_BUSY = ['busy0', ...THREADS];

/** Firecracker's 2 vCPUs sharing one host CPU (2:1): 0.7-ms slices (sysctl_sched_base_slice on 1 CPU) by default. */
function shared(
  updateIntervalNs: Ns | undefined,
  names: readonly string[],
  load: { busyThreads: number; sliceNs?: Ns } = { busyThreads: 0 },
) {
  const e = new Engine();
  const host = new HostCpus({ cpus: 1, ...load }, () => e.now);
  const trace = new TraceRecorder({ enabled: true, filter: (n) => names.includes(n) });
  const b = bootVm({
    profile: machineProfile('firecracker'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    vcpus: 2,
    vcpuSchedule: (n) => host.vcpuThreads(n, 'vm'),
    ...(updateIntervalNs !== undefined ? { updateIntervalNs } : {}),
    trace,
    name: 'vm',
  });
  return { e, b, trace, slice: host.sliceNs };
}

const cpuOf = (source: string): number => Number(source.slice('vm/vcpu'.length));

test("on a 2:1 shared host each vCPU takes its own LAPIC timer interrupts, each late by exactly its own thread's wait", () => {
  const { e, b, trace, slice } = shared(undefined, ['kvm_apic_accept_irq', 'kvm_inj_virq']);
  assert.equal(slice, 700_000n);
  e.run(b.kernelEntryAt + 5n * S);
  assert.equal(b.guest.clockeventDevice(), 'lapic-deadline\n');
  // one oracle per vCPU: queries go forward in time, and each vCPU's requests and entries are in time order
  const oracle = THREADS.map(() => new FifoRoundRobin(1, slice, THREADS));
  const requested: (Ns | null)[] = [null, null];
  const late: Ns[][] = [[], []];
  const taken = [0, 0];
  let irq0 = 0;
  for (const ev of trace.recorded) {
    if (ev.args!.vec === IRQ0_VECTOR && ev.name === 'kvm_inj_virq') irq0++;
    if (ev.args!.vec !== LOCAL_TIMER_VECTOR) continue;
    const cpu = cpuOf(ev.source);
    const name = THREADS[cpu]!;
    if (ev.name === 'kvm_apic_accept_irq') {
      // one-shot deadlines are programmed by the handler, so a request never finds the previous one pending
      assert.equal(ev.args!.coalesced, 0, `${name} at ${ev.ts}`);
      assert.equal(requested[cpu], null, `${name}: a second request at ${ev.ts} before the first was taken`);
      requested[cpu] = ev.ts;
      continue;
    }
    // kvm_inj_virq: taken at the request when the thread runs then, else at its thread's next slot
    const at = requested[cpu]!;
    const expect = oracle[cpu]!.running(name, at) ? at : oracle[cpu]!.nextRun(name, at);
    assert.equal(ev.ts, expect, `${name}: request at ${at} taken at ${ev.ts}`);
    late[cpu]!.push(ev.ts - at);
    taken[cpu]!++;
    requested[cpu] = null;
  }
  // both vCPUs tick (2 interrupts per 4-ms tick_sched_timer: 5 s of ticks, minus boot) and the guest handled each
  assert.deepEqual(b.guest.periodicTick.timerIrqsByCpu, taken);
  for (const cpu of [0, 1]) {
    // one or two per 4-ms tick_sched_timer: two when the first, a few ns early, finds the expiry not reached
    assert.ok(taken[cpu]! > 1000, `vCPU ${cpu}: ${taken[cpu]} interrupts`);
    const waits = late[cpu]!.filter((l) => l > 0n);
    // a vCPU waits while the other one runs: at most one slice
    assert.ok(waits.length > 100, `vCPU ${cpu}: ${waits.length} late interrupts`);
    assert.ok(
      waits.every((l) => l <= slice),
      `vCPU ${cpu}: ${waits.find((l) => l > slice)}`,
    );
  }
  // the two threads alternate, so the two vCPUs' lateness sequences differ
  assert.notDeepEqual(late[0]!.slice(0, 200), late[1]!.slice(0, 200));
  // the VM's maximum is the larger of the two vCPUs'
  const max = (xs: Ns[]) => xs.reduce((a, x) => (x > a ? x : a), 0n);
  const st = b.vm.devices.timerIrqStats();
  assert.equal(st.maxLatenessNs, max([...late[0]!, ...late[1]!]));
  // the VM's count also has the PIT's IRQ0 from its reset-state 18.2-Hz timer, before the guest's pit_timer_init stops it
  assert.equal(st.timerIrqs, taken[0]! + taken[1]! + irq0);
});

test('each vCPU accounts its steal at its own tick: /proc/stat steal is its record at its own last tick_sched_timer', () => {
  // a busy thread and 100-ms slices: vCPU 0 runs in [100, 200) ms of every 300 ms, vCPU 1 in [200, 300)
  const { e, b, trace, slice } = shared(S, ['record_steal_time', 'tick_sched_timer'], { busyThreads: 1, sliceNs: 100_000_000n });
  e.run(b.kernelEntryAt + 20n * S);
  const oracle = THREADS.map(() => new FifoRoundRobin(1, slice, WITH_BUSY));
  const entries: { ts: Ns; runDelay: Ns }[][] = [[], []];
  const ticks: Ns[][] = [[], []];
  for (const ev of trace.recorded) {
    if (ev.name === 'record_steal_time') {
      const cpu = cpuOf(ev.source);
      const rd = oracle[cpu]!.runDelay(THREADS[cpu]!, ev.ts);
      assert.equal(ev.args!.run_delay, rd);
      entries[cpu]!.push({ ts: ev.ts, runDelay: rd });
    } else {
      const cpu = (ev.args?.cpu as number | undefined) ?? 0;
      // tick_sched_timer runs from the vCPU's own interrupt: only while its own thread runs
      assert.ok(new FifoRoundRobin(1, slice, WITH_BUSY).running(THREADS[cpu]!, ev.ts), `vCPU ${cpu} ticked at ${ev.ts} off its CPU`);
      ticks[cpu]!.push(ev.ts);
    }
  }
  // NOHZ idle with a 1-s update interval: one tick_sched_timer per second on each vCPU, at different instants
  for (const cpu of [0, 1]) assert.ok(ticks[cpu]!.length >= 19, `vCPU ${cpu}: ${ticks[cpu]!.length} ticks`);
  assert.notDeepEqual(ticks[0]!.slice(-5), ticks[1]!.slice(-5));
  const steal = (cpu: number, at: Ns): Ns => {
    // the record holds the run_delay of the vCPU's last entry at or before `at`; registration is the first entry
    const last = entries[cpu]!.filter((x) => x.ts <= at).at(-1)!;
    return last.runDelay - entries[cpu]![0]!.runDelay;
  };
  const g = b.guest;
  for (const cpu of [0, 1]) {
    const own = steal(cpu, ticks[cpu]!.at(-1)!);
    assert.ok(own > 5n * S, `vCPU ${cpu}: ${own}`);
    assert.equal(g.steal!.cpus[cpu]!.steal, own, `vCPU ${cpu}: steal at its own last tick`);
  }
  // accounted at vCPU 0's tick instead (the model before per-CPU ticks), vCPU 1's steal would differ
  assert.notEqual(steal(1, ticks[0]!.at(-1)!), g.steal!.cpus[1]!.steal);
});

test('the do_timer duty passes between idle NOHZ CPUs: the first CPU to run tick_sched_timer after a jiffy updates the wall time', () => {
  const { e, b } = shared(S, []);
  e.run(b.kernelEntryAt + 20n * S);
  const pt = b.guest.periodicTick;
  // an idle CPU whose next expiry is a second away stops its tick and gives the duty up (TICK_DO_TIMER_NONE)
  assert.equal(pt.doTimerCpuNow, -1);
  const [u0, u1] = pt.wallTimeUpdatesByCpu;
  // both CPUs took it: each second the one whose thread runs at the expiry (the other runs within one 0.7-ms
  // slice, in the same jiffy, and finds nothing to update)
  assert.ok(u0! > 0 && u1! > 0, `${u0}, ${u1}`);
  const seconds = Number((e.now - b.kernelEntryAt) / S);
  assert.ok(u0! + u1! >= seconds - 2 && u0! + u1! <= seconds + 1, `${u0} + ${u1} updates in ${seconds} s`);
});

test("the clocksource watchdog's timer rotates over the CPUs (add_timer_on next_cpu): each check runs when its own vCPU next runs", () => {
  const e = new Engine();
  // a busy thread and 100-ms slices: vCPU 0 runs in [100, 200) ms of every 300 ms, vCPU 1 in [200, 300)
  const host = new HostCpus({ cpus: 1, busyThreads: 1, sliceNs: 100_000_000n }, () => e.now);
  const b = bootVm({
    profile: machineProfile('qemu-kvm-noinvtsc'),
    kernel: kernelPreset('distro'),
    // an Intel host: with 2 CPUs and no constant_tsc an AMD guest finds its TSCs unsynchronized and registers no
    // tsc, leaving the watchdog nothing to watch (tsc.c unsynchronized_tsc); here the tsc is watched by kvm-clock
    host: { vendor: 'intel' },
    scheduler: e,
    vcpus: 2,
    updateIntervalNs: S,
    vcpuSchedule: (n) => host.vcpuThreads(n, 'vm'),
  });
  e.run(b.kernelEntryAt + 1n);
  const wd = b.guest.watchdog;
  wd.fastForward = false; // every check an event, so each one's time can be seen
  const oracle = new FifoRoundRobin(1, host.sliceNs, WITH_BUSY);
  // clocksource_start_watchdog queues it on CPU 0 at 1.099607 s (kernel entry 350 ms + 249.607 ms + WATCHDOG_INTERVAL);
  // each run re-arms it WATCHDOG_INTERVAL later on the grid, on the next CPU
  const first = 1_099_607_000n;
  let due = first;
  let late = 0n;
  let lateIfCpu0 = 0n;
  for (let k = 0; due < 60n * S; k++) {
    const cpu = k % 2;
    assert.equal(wd.targetCpu, cpu, `check ${k + 1} queued on CPU ${cpu}`);
    const name = THREADS[cpu]!;
    const at = oracle.running(name, due) ? due : oracle.nextRun(name, due);
    late += at - due;
    lateIfCpu0 += (oracle.running(THREADS[0]!, due) ? due : oracle.nextRun(THREADS[0]!, due)) - due;
    e.run(at - 1n);
    assert.equal(wd.checks, k, `check ${k + 1} ran before ${at}`);
    e.run(at);
    assert.equal(wd.checks, k + 1, `check ${k + 1} did not run at ${at}`);
    assert.equal(wd.checksOnCpu[cpu], Math.floor(k / 2) + 1);
    due += 500_000_000n;
  }
  // The grid is 199.607, 99.607 and 299.607 ms into a 300-ms period in turn (period 1.5 s = 3 checks), the CPUs
  // alternate (period 2): over 6 checks each (phase, CPU) pair once. vCPU 0 runs [100, 200): phase 199.607 on
  // time, 99.607 393 µs late, 299.607 100.393 ms late; vCPU 1 runs [200, 300): 199.607 393 µs late, 99.607
  // 100.393 ms late, 299.607 on time. 118 checks due before 60 s (k = 0..117): 19 full rounds of 6 plus k = 114..117.
  // k = 114..117: phase (k mod 3) 0, 1, 2, 0 → 199.607, 99.607, 299.607, 199.607 on CPUs 0, 1, 0, 1.
  const round = 2n * (393_000n + 100_393_000n);
  const tail = 0n + 100_393_000n + 100_393_000n + 393_000n;
  assert.equal(late, 19n * round + tail);
  // had vCPU 0 run them all, the waits would be its own: a different sum (the rotation is what is measured)
  assert.notEqual(lateIfCpu0, late);
});

test('a fast-forwarded watchdog counts its skipped checks on the CPUs they rotate over: the same per-CPU counts as event by event', () => {
  const run = (fastForward: boolean, vcpus: number) => {
    const e = new Engine();
    // vCPU entries and updates every 301.3 s on a host with a CPU per thread: the watchdog (kvm-clock watching the
    // tsc; an Intel host, as above) has long quiet spans to fast-forward
    const b = bootVm({
      profile: machineProfile('qemu-kvm-noinvtsc'),
      kernel: kernelPreset('distro'),
      host: { vendor: 'intel' },
      scheduler: e,
      vcpus,
      // 301.3 s: spans of 601 skipped checks, not a whole number of rounds over 2 or 3 CPUs
      updateIntervalNs: 301_300_000_000n,
      vcpuEntryIntervalNs: 301_300_000_000n,
    });
    e.run(b.kernelEntryAt);
    b.guest.watchdog.fastForward = fastForward;
    e.run(b.kernelEntryAt + 600n * S + 123_000_000n);
    const wd = b.guest.watchdog;
    return { perCpu: [...wd.checksOnCpu], checks: wd.checks, target: wd.targetCpu, skipped: wd.fastForwarded, log: b.guest.dmesg() };
  };
  for (const vcpus of [2, 3]) {
    const on = run(true, vcpus);
    const off = run(false, vcpus);
    assert.ok(on.skipped > 1000, `${vcpus} vCPUs: ${on.skipped} checks fast-forwarded`);
    assert.equal(off.skipped, 0);
    assert.deepEqual(on.perCpu, off.perCpu, `${vcpus} vCPUs`);
    assert.equal(on.target, off.target);
    assert.deepEqual(on.log, off.log);
    // round robin from CPU 0: the counts differ by at most one, the earlier CPUs first
    const n = on.checks;
    assert.deepEqual(
      on.perCpu,
      Array.from({ length: vcpus }, (_, c) => Math.floor(n / vcpus) + (c < n % vcpus ? 1 : 0)),
    );
  }
});

test("a periodic LAPIC tick on each vCPU: each one's expiries coalesce in its own IRR while its own thread waits; only CPU 0's are jiffies", () => {
  const e = new Engine();
  // a busy thread and 20-ms slices: vCPU 0 runs in [20, 40) ms of every 60 ms, vCPU 1 in [40, 60)
  const host = new HostCpus({ cpus: 1, busyThreads: 1, sliceNs: 20_000_000n }, () => e.now);
  const trace = new TraceRecorder({ enabled: true, filter: (n) => n === 'apic_timer_expired' || n === 'kvm_apic_accept_irq' });
  // the kvmtool/yocto jiffies guest without NOHZ or high resolution: the periodic LAPIC timer (no TSC deadline)
  const b = bootVm({
    profile: machineProfile('kvmtool'),
    kernel: kernelPreset('yocto-qemux86'),
    cmdline: 'nohz=off highres=off',
    scheduler: e,
    vcpus: 2,
    vcpuSchedule: (n) => host.vcpuThreads(n, 'vm'),
    trace,
    name: 'vm',
  });
  e.run(b.kernelEntryAt + 3n * S);
  const g = b.guest;
  assert.equal(g.clockeventDevice(), 'lapic\n');
  assert.equal(g.oneshot, false);
  const ticks0 = g.periodicTick.ticks();
  const irqs0 = g.periodicTick.timerIrqsByCpu;
  const from = e.now;
  const mark = trace.recorded.length;
  e.run(from + 6n * S);
  // the oracle: each expiry of vCPU c's LAPIC timer requests the vector; a request waits for c's next slot, and an
  // expiry that finds one still waiting coalesces with it (__apic_accept_irq: the IRR bit is set)
  const oracle = THREADS.map(() => new FifoRoundRobin(1, host.sliceNs, WITH_BUSY));
  const waiting: (Ns | null)[] = [null, null];
  const want = THREADS.map(() => ({ taken: 0, coalesced: 0 }));
  const seen = THREADS.map(() => ({ coalesced: 0 }));
  for (const ev of trace.recorded.slice(mark)) {
    const cpu = cpuOf(ev.source);
    if (ev.name === 'kvm_apic_accept_irq') {
      if (ev.args!.coalesced === 1) seen[cpu]!.coalesced++;
      continue;
    }
    const name = THREADS[cpu]!;
    const w = waiting[cpu];
    if (w !== null && w <= ev.ts) {
      want[cpu]!.taken++; // taken at its slot, before this expiry
      waiting[cpu] = null;
    }
    if (waiting[cpu] !== null) {
      want[cpu]!.coalesced++;
      continue;
    }
    const at = oracle[cpu]!.running(name, ev.ts) ? ev.ts : oracle[cpu]!.nextRun(name, ev.ts);
    if (at === ev.ts) want[cpu]!.taken++;
    else waiting[cpu] = at;
  }
  for (const cpu of [0, 1]) if (waiting[cpu] !== null && waiting[cpu]! <= e.now) want[cpu]!.taken++;
  const irqs = g.periodicTick.timerIrqsByCpu.map((n, c) => n - irqs0[c]!);
  assert.deepEqual(irqs, [want[0]!.taken, want[1]!.taken]);
  assert.deepEqual(
    seen.map((s) => s.coalesced),
    want.map((w) => w.coalesced),
  );
  // by hand: the timer's period is exactly 4 ms (lapic_timer_period = KVM's 1 GHz bus / HZ 250, TMICT = period/16
  // at ÷16) and 6 s is 100 rounds of 60 ms; in each, 5 expiries fall while the vCPU runs (taken at once), 10 in its
  // 40-ms wait: the first is taken at its next slot and 9 coalesce — 600 taken and 900 lost per vCPU
  for (const cpu of [0, 1]) assert.deepEqual(want[cpu], { taken: 600, coalesced: 900 }, `vCPU ${cpu}`);
  // tick_periodic: do_timer only on tick_do_timer_cpu (CPU 0): jiffies count its handled ticks alone
  assert.equal(g.periodicTick.ticks() - ticks0, BigInt(want[0]!.taken));
});
