import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, TraceRecorder, type Ns } from '../../src/core/index.ts';
import { bootVm, kernelPreset, machineProfile, VmLifecycle } from '../../src/vmm/index.ts';
import { HostCpus } from '../../src/world/host-cpus.ts';
import { FifoRoundRobin } from '../world/fifo-round-robin.ts';

const S = 1_000_000_000n;

test("steal at every guest entry is the vCPU thread's run_delay there, to the ns, each vCPU on its own thread's schedule", () => {
  const e = new Engine();
  // 4 threads on 3 CPUs: slot k leaves out thread (3 − k) mod 4, so vCPU 1 waits in slots 0, 4, 8, … and vCPU 0
  // in slots 1, 5, 9, …: two different schedules
  const host = new HostCpus({ cpus: 3, busyThreads: 2 }, () => e.now);
  const trace = new TraceRecorder({ enabled: true, filter: (n) => n === 'record_steal_time' });
  const b = bootVm({
    profile: machineProfile('firecracker'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    vcpus: 2,
    vcpuSchedule: (n) => host.vcpuThreads(n, 'vm'),
    trace,
    name: 'vm',
  });
  e.run(b.kernelEntryAt + 20n * S);
  const oracle = new FifoRoundRobin(3, host.sliceNs, ['busy0', 'busy1', 'vm/vcpu0', 'vm/vcpu1']);
  const seen: Ns[][] = [[], []];
  const times: Ns[][] = [[], []];
  for (const ev of trace.recorded) {
    const cpu = Number(ev.source.slice('vm/vcpu'.length));
    const name = `vm/vcpu${cpu}`;
    const rd = oracle.runDelay(name, ev.ts);
    // KVM: steal += run_delay − last_steal, last_steal 0 at vCPU creation, the record zeroed by the guest
    assert.equal(ev.args!.run_delay, rd, `${name} run_delay at ${ev.ts}`);
    assert.equal(ev.args!.steal, rd, `${name} steal at ${ev.ts}`);
    // the registration's entry follows the guest's WRMSR at boot; every later one comes while the thread runs
    if (seen[cpu]!.length > 0) assert.ok(oracle.running(name, ev.ts), `${name} entered at ${ev.ts} without running`);
    seen[cpu]!.push(rd);
    times[cpu]!.push(ev.ts);
  }
  // 20 s of 1.4-ms slots: both vCPUs waited, at different times
  assert.ok(seen[0]!.length >= 20 && seen[1]!.length >= 20, `${seen[0]!.length}, ${seen[1]!.length} entries`);
  assert.notDeepEqual(times[0]!.slice(1, 5), times[1]!.slice(1, 5));
  // the guest's /proc/stat steal is the run_delay of an entry less the one at registration (KVM_FEATURE_STEAL_TIME)
  const g = b.guest;
  for (const cpu of [0, 1]) {
    const stolen = g.steal!.cpus[cpu]!.steal;
    assert.ok(stolen > 0n);
    assert.ok(
      seen[cpu]!.some((v) => v - seen[cpu]![0]! === stolen),
      `vCPU ${cpu}: /proc/stat steal ${stolen} is no entry's run_delay since registration`,
    );
  }
});

test('a clocksource watchdog due while vCPU 0 waits for the host CPU runs when the vCPU next runs: each run late exactly as the schedule says', () => {
  const boot = (busyThreads: number) => {
    const e = new Engine();
    // 100-ms slices so the waits are long: with 2 busy threads on 1 CPU, vCPU 0 runs in [200, 300) ms of every 300 ms
    const host = new HostCpus({ cpus: 1, busyThreads, sliceNs: 100_000_000n }, () => e.now);
    const b = bootVm({
      profile: machineProfile('qemu-kvm-noinvtsc'),
      kernel: kernelPreset('distro'),
      scheduler: e,
      vcpus: 1,
      updateIntervalNs: S,
      vcpuSchedule: (n) => host.vcpuThreads(n, 'vm'),
    });
    e.run(b.kernelEntryAt + 1n);
    b.guest.watchdog.fastForward = false; // every check an event, so each one's time can be seen
    return { e, b, host };
  };
  // Alone on its CPU the watchdog checks at 1.099607 s + 0.5 s k (kernel entry 350 ms + 249.607 ms, then WATCHDOG_INTERVAL)
  const alone = boot(0);
  const first = 1_099_607_000n;
  alone.e.run(first - 1n);
  assert.equal(alone.b.guest.watchdog.checks, 0);
  alone.e.run(first);
  assert.equal(alone.b.guest.watchdog.checks, 1);
  // Shared: a check due while the vCPU waits runs at its next slot, and the next is due WATCHDOG_INTERVAL after that
  const { e, b, host } = boot(2);
  const oracle = new FifoRoundRobin(1, host.sliceNs, ['busy0', 'busy1', 'vm/vcpu0']);
  let due = first;
  let late = 0n;
  let lateRuns = 0;
  for (let k = 0; due < 60n * S; k++) {
    const at = oracle.running('vm/vcpu0', due) ? due : oracle.nextRun('vm/vcpu0', due);
    if (at > due) lateRuns++;
    late += at - due;
    e.run(at - 1n);
    assert.equal(b.guest.watchdog.checks, k, `check ${k + 1} ran before ${at}`);
    e.run(at);
    assert.equal(b.guest.watchdog.checks, k + 1, `check ${k + 1} did not run at ${at}`);
    // clocksource_watchdog(): watchdog_timer.expires += WATCHDOG_INTERVAL — the grid, not the late run
    due += 500_000_000n;
  }
  // The grid 1.099607 s + 0.5 s k repeats against the 300-ms schedule every 3 checks: due 199.607 ms into a period
  // (busy1's slot: runs at 200 ms, 393 µs late), 99.607 ms (busy0's: 100.393 ms late), 299.607 ms (vCPU 0's: on time).
  // Of the 118 due before 60 s (k = 0..117), 40 are 393 µs late and 39 are 100.393 ms late.
  assert.equal(lateRuns, 79);
  assert.equal(late, 40n * 393_000n + 39n * 100_393_000n);
});

test("a paused VM's vCPU threads sleep: while it is stopped neither it nor its neighbour waits, and the neighbour runs all the time", () => {
  const e = new Engine();
  const host = new HostCpus({ cpus: 1, busyThreads: 0 }, () => e.now);
  const boot = (name: string) =>
    bootVm({
      profile: machineProfile('qemu-kvm'),
      kernel: kernelPreset('distro'),
      scheduler: e,
      vcpus: 1,
      name,
      vcpuSchedule: (n) => host.vcpuThreads(n, name),
    });
  const a = boot('a');
  const b = boot('b');
  e.run(10n * S);
  // two threads on one CPU in 0.7-ms slots from 0, a in the even ones: 10 s is 0.5 ms into slot 14285 (b's), so a
  // has waited 7142 slots and 0.5 ms, b 7143 slots
  const [aWait, bWait] = [7142n * 700_000n + 500_000n, 7143n * 700_000n];
  assert.deepEqual([a.vm.runDelay(0), b.vm.runDelay(0)], [aWait, bWait]);
  const lc = new VmLifecycle(b);
  lc.pause(20n * S);
  e.run(20n * S);
  assert.deepEqual([a.vm.runDelay(0), b.vm.runDelay(0)], [aWait, bWait]);
  assert.equal(a.vm.platform.vcpuRunning!(0), true);
  assert.equal(b.vm.platform.vcpuRunning!(0), false);
  lc.resume();
  e.run(30n * S);
  // sharing again from 20 s: a new round robin, a (created first) in its first slot, as from 0
  assert.deepEqual([a.vm.runDelay(0), b.vm.runDelay(0)], [2n * aWait, 2n * bWait]);
});
