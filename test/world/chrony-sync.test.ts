// Scenarios with chronyd in the guest, NTP servers over network paths, the agent through the qemu-ga model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError } from '../../src/core/errors.ts';
import { parseScenario, type ScenarioInput } from '../../src/world/scenario.ts';
import { simulate } from '../../src/world/simulation.ts';
import { FifoRoundRobin } from './fifo-round-robin.ts';

const base = (vm: Record<string, unknown>, extra: Record<string, unknown> = {}): ScenarioInput =>
  ({
    name: 'chrony',
    duration: '30min',
    sample_interval: '10s',
    hosts: [{ name: 'h0', tsc: { freq_khz: 2596136 } }],
    ntp_servers: [{ name: 'ntp1', path: { delay: '1ms', jitter: '0.1ms' } }],
    vms: [{ name: 'vm0', host: 'h0', ...vm }],
    ...extra,
  }) as ScenarioInput;

test('chrony with makestep 1 3 steps a guest that starts 60 s off, then keeps it within 1 ms', () => {
  const s = parseScenario(base({ initial_offset: '+60s', sync: { method: 'chrony', servers: ['ntp1'], iburst: true, makestep: [1, 3] } }));
  const { summary, timeline } = simulate(s);
  const vm = summary.vms[0]!;
  assert.equal(vm.sync, 'chrony');
  const steps = vm.chrony_updates!.filter((e) => e.kind === 'step');
  assert.equal(steps.length, 1);
  assert.ok(Math.abs(steps[0]!.offset_s - 60) < 0.001, `step ${steps[0]!.offset_s}`);
  assert.equal(vm.chrony!.reference_id, 'ntp1');
  assert.equal(vm.chrony!.stratum, 2);
  const after = timeline.filter((r) => r.t > 20_000_000_000n);
  assert.ok(after.every((r) => r.guestOffsetNs < 1_000_000n && r.guestOffsetNs > -1_000_000n));
  // same scenario, same seed: the same summary
  assert.deepEqual(simulate(s).summary, summary);
});

test('without makestep chrony slews +0.5 s at 83,333 ppm: under 1 ms within 7 s of its first update', () => {
  const s = parseScenario(base({ initial_offset: 0.5, sync: { method: 'chrony', iburst: true } }));
  const { summary, timeline } = simulate(s);
  const vm = summary.vms[0]!;
  assert.equal(vm.chrony_updates!.filter((e) => e.kind === 'step').length, 0);
  const first = vm.chrony_updates![0]!.at_s;
  const late = timeline.filter((r) => Number(r.t) / 1e9 > first + 7);
  assert.ok(late.length > 0 && late.every((r) => r.guestOffsetNs < 1_000_000n && r.guestOffsetNs > -1_000_000n));
});

test('method ntp is kept and ntpd is its alias; ntpd can use a scenario server', () => {
  const a = simulate(parseScenario(base({ sync: { method: 'ntp' } }))).summary.vms[0]!;
  const b = simulate(parseScenario(base({ sync: { method: 'ntpd' } }))).summary.vms[0]!;
  assert.equal(a.final_offset_ns, b.final_offset_ns);
  assert.equal(b.sync, 'ntpd');
});

test('the agent sync goes through the qemu-ga model: a 5 ms one-way latency leaves the guest 5 ms behind', () => {
  const s = parseScenario(
    base(
      { profile: 'qemu-kvm-noinvtsc', pauses: [{ at: '10min', duration: '5min' }], sync: { method: 'agent', agent_latency: '5ms' } },
      { ntp_servers: [] },
    ),
  );
  const p = simulate(s).summary.vms[0]!.pauses[0]!;
  assert.equal(p.offset_after_sync_ns, '-5000000');
});

test('bad NTP input is refused naming the path: unknown server, negative delay, makestep limit, asymmetry', () => {
  const cases: [ScenarioInput, string][] = [
    [base({ sync: { method: 'chrony', servers: ['nope'] } }), 'vms[0].sync.servers[0]'],
    [base({}, { ntp_servers: [{ name: 'n', path: { delay: '-1ms' } }] }), 'ntp_servers[0].path.delay'],
    [base({ sync: { method: 'chrony', makestep: [1, -2] } }), 'vms[0].sync.makestep[1]'],
    [base({}, { ntp_servers: [{ name: 'n', path: { delay: '1ms', asymmetry: '3ms' } }] }), 'ntp_servers[0].path.asymmetry'],
    [base({ sync: { method: 'chrony', minpoll: 8, maxpoll: 6 } }), 'vms[0].sync.maxpoll'],
    [base({}, { ntp_servers: [{ name: 'n', host: 'h9', path: { delay: '1ms' } }] }), 'ntp_servers[0].host'],
  ];
  for (const [input, path] of cases)
    assert.throws(
      () => parseScenario(input),
      (e: unknown) => e instanceof InputError && e.path === path,
      path,
    );
});

test('`timevisor run` on a bad chrony scenario exits 2 with one line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-chrony-'));
  const f = join(dir, 's.yaml');
  writeFileSync(
    f,
    'duration: 1h\nhosts: [{name: h, tsc: {freq_khz: 2000000}}]\nvms: [{name: v, host: h, sync: {method: chrony, servers: [ghost]}}]\n',
  );
  const r = spawnSync(process.execPath, [resolve(import.meta.dirname, '../../bin/timevisor.js'), 'run', f], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /vms\[0\]\.sync\.servers\[0\].*no NTP server named "ghost"/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('after a 3 s pause under kvm-clock, chronyd with 1 s polls resumes mid-interval and steps back to within 1 ms', () => {
  const s = parseScenario(
    base(
      {
        profile: 'qemu-kvm-noinvtsc',
        pauses: [{ at: '60s', duration: '3s' }],
        sync: { method: 'chrony', iburst: true, minpoll: 0, maxpoll: 0, makestep: [0.1, -1] },
      },
      { duration: '3min', sample_interval: '1s', ntp_servers: [{ name: 'host', path: { delay: '0.5ms', jitter: '0.2ms' } }] },
    ),
  );
  const { summary, timeline } = simulate(s);
  const steps = summary.vms[0]!.chrony_updates!.filter((e) => e.kind === 'step' && e.at_s > 60).map((e) => e.offset_s);
  // the regression mixes pre-pause samples with the new ones: several steps of both signs
  assert.ok(steps.length >= 3, `steps ${steps}`);
  assert.ok(steps.some((x) => x > 0) && steps.some((x) => x < 0), `steps ${steps}`);
  // chronyd's timeout stood still with the guest clock: the request after the resume goes out what was
  // left of the poll interval (1 s from the last reply) after it, not INITIAL_DELAY; its reply comes one
  // round trip later (2 × 0.5 ms + jitter)
  const ups = summary.vms[0]!.chrony_updates!;
  const last = ups.filter((e) => e.at_s < 60).at(-1)!.at_s;
  const first = ups.find((e) => e.at_s > 60)!.at_s;
  assert.ok(first > last + 1 + 3 && first < last + 1 + 3 + 0.005, `last update before ${last}, first after ${first}`);
  const end = timeline.filter((r) => r.t > 100_000_000_000n);
  assert.ok(end.every((r) => r.guestOffsetNs < 1_000_000n && r.guestOffsetNs > -1_000_000n));
});

test('on a 2:1 host the agent’s guest-set-time waits for vCPU 0: the sync lands at its next slot and the wait adds to the error', () => {
  // 1 CPU, 1 busy thread: 0.7-ms slots (sysctl_sched_base_slice on 1 CPU). The resume at 15 min starts a new round
  // robin with the busy thread (created first) in slot 0, so vCPU 0 runs in the odd slots after it. The request is
  // sent 1 s after the resume and arrives 5.5 ms later, 1.0055 s in: slot 1436, a wait.
  const s = parseScenario({
    ...base(
      { profile: 'qemu-kvm-noinvtsc', pauses: [{ at: '10min', duration: '5min' }], sync: { method: 'agent', agent_latency: '5.5ms' } },
      { ntp_servers: [] },
    ),
    hosts: [{ name: 'h0', tsc: { freq_khz: 2596136 }, cpus: 1, load: { busy_threads: 1 } }],
  } as ScenarioInput);
  const resume = 900n * 1_000_000_000n;
  const o = new FifoRoundRobin(1, 700_000n, ['busy0', 'vm0/vcpu0'], resume);
  const sent = resume + 1_000_000_000n;
  const arrives = sent + 5_500_000n;
  assert.equal(o.running('vm0/vcpu0', arrives), false);
  const handled = o.nextRun('vm0/vcpu0', arrives);
  assert.equal(handled, resume + 1437n * 700_000n);
  const vm = simulate(s).summary.vms[0]!;
  // guest-set-time sets the host's REALTIME at sending: the guest is behind by the latency and the wait
  assert.equal(vm.pauses[0]!.offset_after_sync_ns, String(sent - handled));
  assert.equal(vm.pauses[0]!.offset_after_sync_ns, '-5900000');
  const sync = vm.events.find((ev) => ev.kind === 'sync')!;
  assert.equal(sync.at_s, Number(handled) / 1e9);
});

test('on a 2:1 host the ntpd client’s first poll after a resume waits for vCPU 0: the sync is recorded at its next slot', () => {
  // as above: 0.7-ms slots from the resume at 15 min, vCPU 0 in the odd ones. The daemon polls one poll interval
  // (2^6 s) after it wakes: 64 s in is slot 91428, a wait, so it polls at the start of slot 91429
  const s = parseScenario({
    ...base({ profile: 'qemu-kvm-noinvtsc', pauses: [{ at: '10min', duration: '5min' }], sync: { method: 'ntp' } }, { ntp_servers: [] }),
    hosts: [{ name: 'h0', tsc: { freq_khz: 2596136 }, cpus: 1, load: { busy_threads: 1 } }],
  } as ScenarioInput);
  const resume = 900n * 1_000_000_000n;
  const o = new FifoRoundRobin(1, 700_000n, ['busy0', 'vm0/vcpu0'], resume);
  const due = resume + 64n * 1_000_000_000n;
  assert.equal(o.running('vm0/vcpu0', due), false);
  const polled = o.nextRun('vm0/vcpu0', due);
  assert.equal(polled, resume + 91_429n * 700_000n);
  const vm = simulate(s).summary.vms[0]!;
  const sync = vm.events.find((ev) => ev.kind === 'sync')!;
  assert.equal(sync.at_s, Number(polled) / 1e9);
});

test('on a 2:1 host chronyd’s clock updates all happen while vCPU 0 runs (its replies are read in vCPU 0’s slots), and a rerun is identical', () => {
  const s = parseScenario({
    ...base(
      { profile: 'qemu-kvm-noinvtsc', sync: { method: 'chrony', iburst: true, minpoll: 0, maxpoll: 0, makestep: [1, 3] } },
      { duration: '5min', sample_interval: '1s', ntp_servers: [{ name: 'host', path: { delay: '0.5ms', jitter: '0.2ms' } }] },
    ),
    hosts: [{ name: 'h0', tsc: { freq_khz: 2596136 }, cpus: 1, load: { busy_threads: 1 } }],
  } as ScenarioInput);
  const { summary } = simulate(s);
  // 0.7-ms slots from 0, the busy thread (created first) in the even ones
  const o = new FifoRoundRobin(1, 700_000n, ['busy0', 'vm0/vcpu0']);
  const updates = summary.vms[0]!.chrony_updates!.map((u) => BigInt(Math.round(u.at_s * 1e9)));
  assert.ok(updates.length >= 250, `${updates.length} updates`);
  for (const t of updates) assert.ok(o.running('vm0/vcpu0', t), `a clock update at ${t} ns, while vCPU 0 waits`);
  assert.equal(JSON.stringify(simulate(s).summary), JSON.stringify(summary));
});

/** The real runs' steps after the resume (test/lab/fixtures/chrony-pause: chronyd 4.3 under QEMU TCG, 3 s pauses). */
function labRuns(): { count: number; first: number; sum: number; lastAfterResume: number }[] {
  const dir = resolve(import.meta.dirname, '../lab/fixtures/chrony-pause');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { resume_at_s: number; steps: { at_s: number; step_s: number }[] };
      const after = r.steps.filter((x) => x.at_s > r.resume_at_s);
      return {
        count: after.length,
        first: after[0]!.step_s,
        sum: after.reduce((a, x) => a + x.step_s, 0),
        lastAfterResume: after.at(-1)!.at_s - r.resume_at_s,
      };
    });
}

test("the lab's chrony run in simulate() (qemu-tcg, minpoll -1, makestep 0.1 -1, a 3 s pause 2 s after chronyd started) steps within the real runs' spread", () => {
  const s = parseScenario(
    base(
      {
        profile: 'qemu-tcg',
        initial_offset: -0.5, // the RTC-set boot offset: the real runs started −1.15…+0.40 s off
        pauses: [{ at: '7s', duration: '3s' }], // chronyd starts 5 s after kernel entry; the real pauses came 1.8–3.2 s after it
        sync: { method: 'chrony', iburst: true, minpoll: -1, maxpoll: -1, makestep: [0.1, -1] },
      },
      // the host's chronyd (local stratum 8) over QEMU's user network: round trips of 0.3–1 ms, now and then more
      {
        duration: '30s',
        sample_interval: '100ms',
        ntp_servers: [{ name: 'host', host: 'h0', stratum: 8, path: { delay: '0.25ms', jitter: '0.1ms' } }],
      },
    ),
  );
  const { summary, timeline } = simulate(s);
  const steps = summary.vms[0]!.chrony_updates!.filter((e) => e.kind === 'step' && e.at_s > 10).map((e) => ({
    at: e.at_s,
    step: -e.offset_s,
  }));
  const real = labRuns();
  const range = (k: 'count' | 'first' | 'sum' | 'lastAfterResume') =>
    [Math.min(...real.map((r) => r[k])), Math.max(...real.map((r) => r[k]))] as const;
  // Tolerances beyond the real runs' own spread: those of the replaying twin (src/lab/chrony-twin.ts), as
  // this run's request times, delays and start offset are typical, not a replay of one run
  const within = (v: number, [lo, hi]: readonly [number, number], tol: number, what: string) =>
    assert.ok(v >= lo - tol && v <= hi + tol, `${what} ${v} outside the real runs' ${lo}…${hi} ± ${tol}`);
  within(steps.length, range('count'), 1, 'steps after the pause');
  within(steps[0]!.step, range('first'), 0.15, 'first step');
  within(
    steps.reduce((a, x) => a + x.step, 0),
    range('sum'),
    0.1,
    'sum of the steps',
  );
  within(steps.at(-1)!.at - 10, range('lastAfterResume'), 1, 'last step after the resume');
  // the regression mixes the few pre-pause samples with the new ones: steps of both signs, as in every real run
  assert.ok(
    steps.some((x) => x.step < 0),
    `steps ${steps.map((x) => x.step)}`,
  );
  const end = timeline.filter((r) => r.t > 20_000_000_000n);
  assert.ok(end.every((r) => r.guestOffsetNs < 1_000_000n && r.guestOffsetNs > -1_000_000n));
});
