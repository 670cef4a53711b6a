// Guest userspace and the clocksource watchdog on a vCPU the host deschedules (src/guest/vcpu-wait.ts,
// src/guest/watchdog.ts, src/vmm/lifecycle.ts): every figure derived here from the host's slot pattern.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, TraceRecorder, type Ns } from '../../src/core/index.ts';
import { Chronyd, NtpKernelClient, type NtpServerLink, vcpuScheduler, whenVcpuRuns, type Timex } from '../../src/guest/index.ts';
import { bootVm, kernelPreset, machineProfile, periodicVcpuSchedule, VmLifecycle, type BootedVm } from '../../src/vmm/index.ts';
import { DEFAULT_BOOT_PHASES } from '../../src/guest/boot.ts';
import { HostCpus } from '../../src/world/host-cpus.ts';
import { FifoRoundRobin } from '../world/fifo-round-robin.ts';

const S = 1_000_000_000n;
const MS = 1_000_000n;

/** One 1-vCPU guest sharing `cpus` host CPUs with `busy` always-runnable threads in `slice` slots. */
function shared(cpus: number, busy: number, slice: Ns, ppm = 0) {
  const e = new Engine();
  const host = new HostCpus({ cpus, busyThreads: busy, sliceNs: slice }, () => e.now);
  const b = bootVm({
    profile: machineProfile('qemu-kvm-noinvtsc'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    vcpus: 1,
    host: { ppm },
    // nothing else happens for minutes: the watchdog's quiet spans are long
    updateIntervalNs: 300n * S,
    vcpuEntryIntervalNs: 300n * S,
    vcpuSchedule: (n) => host.vcpuThreads(n, 'vm'),
  });
  const threads = [...Array.from({ length: busy }, (_, i) => `busy${i}`), 'vm/vcpu0'];
  const oracle = () => new FifoRoundRobin(cpus, slice, threads);
  return { e, b, oracle };
}

/** When a wakeup due at `due` runs: then if vCPU 0 runs, else at its next slot. */
const runsAt = (o: FifoRoundRobin, due: Ns): Ns => (o.running('vm/vcpu0', due) ? due : o.nextRun('vm/vcpu0', due));

test('2:1 overcommit: each ntpd poll due while vCPU 0 waits runs at its next slot, and measures the offset of the clock there', () => {
  // 300-ms slots, the busy thread first: vCPU 0 runs in [300, 600) ms of every 600 ms. A 1-s poll (pollExp 0) moves
  // 400 ms through that pattern, so polls fall in waits and run up to 300 ms late; the guest clock runs 200 ppm
  // fast, so where the offset is read shows in it (200 ppm of 300 ms is 60 µs).
  const run = (gated: boolean) => {
    const { e, b, oracle } = shared(1, 1, 300n * MS, 200);
    e.run(b.kernelEntryAt + 5n * S);
    const g = b.guest;
    const polls: { at: Ns; offset: Ns }[] = [];
    const sched = gated ? vcpuScheduler(e, b.vm.platform, 0) : e;
    const client = new NtpKernelClient({
      scheduler: sched,
      // the guest's clock is left alone (adjtimex recorded, not applied), so any read of it can be redone below
      adjtimex: (_txc: Timex) => ({ state: 0 }) as never,
      measure: () => {
        const offset = e.now - g.clockGettime('realtime');
        polls.push({ at: e.now, offset });
        return { offsetNs: offset, delayNs: MS };
      },
      pollExp: 0,
    });
    return { e, b, g, client, polls, oracle };
  };
  const r = run(true);
  const o = r.oracle();
  // started from an event at a running instant (5 s + 350 ms is in slot 17, vCPU 0's): the first poll is then
  const t0 = r.b.kernelEntryAt + 5n * S;
  assert.equal(o.running('vm/vcpu0', t0), true, 'the test starts the client while vCPU 0 runs');
  r.client.start();
  r.e.run(t0 + 120n * S);
  const expected: Ns[] = [t0];
  let late = 0;
  for (let due = t0 + S; ; ) {
    const at = runsAt(o, due);
    if (at > t0 + 120n * S) break;
    if (at > due) late++;
    expected.push(at);
    due = at + S; // the next poll is armed one interval after the poll ran
  }
  assert.deepEqual(
    r.polls.map((p) => p.at),
    expected,
  );
  assert.ok(late >= 40, `${late} of ${expected.length} polls ran late`);
  // the offset each poll measured is the clock read at its slot: a twin guest (the same boot, no client) read there
  const twin = run(false);
  const truth: Ns[] = [];
  for (const at of expected) {
    twin.e.run(at);
    truth.push(at - twin.g.clockGettime('realtime'));
  }
  assert.deepEqual(
    r.polls.map((p) => p.offset),
    truth,
  );
  // and not the clock at the due time: the 200 ppm guest has drifted further by then
  const firstLate = expected.findIndex((at, i) => i > 0 && at !== expected[i - 1]! + S);
  assert.ok(r.polls[firstLate]!.offset < -20_000n, `offset ${r.polls[firstLate]!.offset}`);
});

test('the same ntpd client ungated (the bug this fixes) polls in the waits, on time', () => {
  const { e, b, oracle } = shared(1, 1, 300n * MS);
  e.run(b.kernelEntryAt + 5n * S);
  const o = oracle();
  const polls: Ns[] = [];
  const client = new NtpKernelClient({
    scheduler: e,
    adjtimex: () => ({ state: 0 }) as never,
    measure: () => {
      polls.push(e.now);
      return null;
    },
    pollExp: 0,
  });
  client.start();
  e.run(e.now + 10n * S);
  assert.ok(polls.some((t) => !o.running('vm/vcpu0', t)));
});

/** A watchdog run with the fast-forward on or off, sampled by events; what must be identical both ways. */
function watchdogRun(cpus: number, busy: number, fastForward: boolean): { b: BootedVm; seen: string[] } {
  const { e, b } = shared(cpus, busy, 100n * MS);
  e.run(b.kernelEntryAt);
  b.guest.watchdog.fastForward = fastForward;
  const seen: string[] = [];
  for (const t of [37n, 411n, 1234n, 1777n]) {
    e.at(t * S + 123n, () => {
      const g = b.guest;
      seen.push(`${e.now} ${g.clockGettime('monotonic')} ${g.clockGettime('realtime')} checks=${g.watchdog.checks}`);
    });
  }
  e.run(1800n * S);
  seen.push(...b.guest.dmesg(), `checks=${b.guest.watchdog.checks} last=${b.guest.kvmclock?.pvclock.lastValue}`);
  return { b, seen };
}

test('the watchdog under a 2:1 host schedule: fast-forward on and off give identical checks, reads and logs (every check an event)', () => {
  const slow = watchdogRun(1, 1, false);
  const fast = watchdogRun(1, 1, true);
  assert.deepEqual(fast.seen, slow.seen);
  // vCPU 0 may wait at any check: the fast path must not skip (each check's lateness comes from the schedule)
  assert.equal(fast.b.guest.watchdog.fastForwarded, 0);
  // the checks the schedule allows: the first due WATCHDOG_INTERVAL after the watchdog starts (x86_late_time_init),
  // each run at vCPU 0's next slot when due in a wait, the next due WATCHDOG_INTERVAL after the last one was due
  // (clocksource_watchdog: watchdog_timer.expires += WATCHDOG_INTERVAL; a run is never more than one 100-ms slot
  // late, so no expiry is already past when re-armed): one check per 500 ms, none lost to lateness
  const o = new FifoRoundRobin(1, 100n * MS, ['busy0', 'vm/vcpu0']);
  let n = 0;
  const start = fast.b.kernelEntryAt + DEFAULT_BOOT_PHASES.lateTimeInit + 500n * MS;
  for (let due = start; ; n++, due += 500n * MS) {
    const at = runsAt(o, due);
    assert.ok(at - due < 500n * MS);
    if (at > 1800n * S) break;
  }
  assert.equal(fast.b.guest.watchdog.checks, n);
  // grid points up to 1800 s; the last one (1799.x s + lateness) still within it — the sliding schedule gave 2999
  assert.equal(n, Number((1800n * S - start) / (500n * MS)) + 1);
});

test('the watchdog on a host with a CPU to spare for every thread fast-forwards, identical to event by event', () => {
  const slow = watchdogRun(2, 1, false);
  const fast = watchdogRun(2, 1, true);
  assert.deepEqual(fast.seen, slow.seen);
  assert.ok(fast.b.guest.watchdog.fastForwarded > 3000, `fast-forwarded ${fast.b.guest.watchdog.fastForwarded}`);
});

test("resume: each vCPU enters (and runs KVM's clock update) when the host schedules its thread, not all at once", () => {
  // 1 CPU, 1 busy thread, 100-ms slots: at the resume a new round robin starts, the busy thread (created first) in
  // slot 0, so vCPU 0 enters one slot after the resume
  const e = new Engine();
  const host = new HostCpus({ cpus: 1, busyThreads: 1, sliceNs: 100n * MS }, () => e.now);
  const trace = new TraceRecorder({ enabled: true, filter: (n) => n === 'kvm_guest_time_update' });
  const b = bootVm({
    profile: machineProfile('qemu-kvm'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    vcpus: 1,
    updateIntervalNs: 300n * S,
    vcpuEntryIntervalNs: 300n * S,
    vcpuSchedule: (n) => host.vcpuThreads(n, 'vm'),
    trace,
    name: 'vm',
  });
  e.run(10n * S);
  const lc = new VmLifecycle(b);
  lc.pause(20n * S);
  e.run(20n * S);
  const before = trace.recorded.length;
  lc.resume(); // KVM_SET_CLOCK: a clock update is pending on every vCPU until its next entry
  e.run(21n * S);
  const o = new FifoRoundRobin(1, 100n * MS, ['busy0', 'vm/vcpu0'], 20n * S);
  assert.equal(o.running('vm/vcpu0', 20n * S), false);
  const entry = o.nextRun('vm/vcpu0', 20n * S);
  assert.equal(entry, 20n * S + 100n * MS);
  assert.deepEqual(
    trace.recorded.slice(before).map((ev) => ev.ts),
    [entry],
  );
});

test("chronyd on a 2:1 host: its first request waits for vCPU 0's next slot, and every request and reply is handled while vCPU 0 runs", () => {
  const { e, b, oracle } = shared(1, 1, 300n * MS);
  const t0 = b.kernelEntryAt + 5n * S;
  e.run(t0);
  const g = b.guest;
  const p = b.vm.platform;
  const handled: Ns[] = [];
  const link: NtpServerLink = {
    name: 'ideal',
    // a server at true time 1 ms away each way; the reply is read when vCPU 0 runs (as src/world/sync.ts wires it)
    exchange: (reply) =>
      e.after(2n * MS, () =>
        whenVcpuRuns(e, p, 0, () => {
          handled.push(e.now);
          const t = e.now - MS;
          reply({ receiveNs: t, transmitNs: t, stratum: 1, rootDelay: 0, rootDispersion: 0, precision: -23, refId: 'ideal' });
        }),
      ),
  };
  const c = new Chronyd({
    scheduler: vcpuScheduler(e, p, 0),
    adjtimex: (txc) => g.adjtimex(txc),
    readRaw: () => g.clockGettime('realtime'),
    servers: [link],
    iburst: true,
  });
  c.start();
  e.run(t0 + 600n * S);
  const o = oracle();
  // the first request is due INITIAL_DELAY (0.2 s) after the start: 5.55 s, in a wait ([5.4, 5.7) s): it goes at 5.7 s
  assert.equal(t0, 5_350_000_000n);
  assert.equal(c.sources[0]!.transmits[0], runsAt(o, t0 + 200n * MS));
  assert.equal(c.sources[0]!.transmits[0], 5_700_000_000n);
  const tx = c.sources[0]!.transmits;
  assert.ok(tx.length >= 8 && handled.length >= 8, `${tx.length} requests, ${handled.length} replies`);
  for (const t of [...tx, ...handled].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)))
    assert.ok(o.running('vm/vcpu0', t), `handled at ${t} while vCPU 0 waits`);
});

test('a vCPU "always runs" only on a host with a CPU for every runnable thread (or a deschedule that runs it the whole period), not while its VM sleeps', () => {
  const e = new Engine();
  const host = new HostCpus({ cpus: 2, busyThreads: 1 }, () => e.now);
  const a = host.vcpuThreads(1, 'a');
  assert.equal(a.alwaysRuns!(0, 0n), true); // 2 threads, 2 CPUs
  const b = host.vcpuThreads(1, 'b');
  assert.deepEqual([a.alwaysRuns!(0, 0n), b.alwaysRuns!(0, 0n)], [false, false]); // 3 threads, 2 CPUs
  b.setRunnable(false);
  assert.deepEqual([a.alwaysRuns!(0, 0n), b.alwaysRuns!(0, 0n)], [true, false]);
  assert.equal(periodicVcpuSchedule(0n, { periodNs: 10n * MS, runNs: 10n * MS }).alwaysRuns!(0, 5n), true);
  assert.equal(periodicVcpuSchedule(0n, { periodNs: 10n * MS, runNs: 9n * MS }).alwaysRuns!(0, 5n), false);
});
