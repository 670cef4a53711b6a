// Quiet spans (Engine.quietSpans): a VM's periodic timekeeper updates and vCPU entries run in one loop
// between the events that matter. Every scenario here runs twice — quiet spans on, and off (every expiry
// through the engine) — and the summary and timeline must come out byte for byte the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../src/core/engine.ts';
import { TraceRecorder } from '../../src/core/trace.ts';
import { setQuietWasm } from '../../src/guest/quiet-wasm.ts';
import { Timekeeper } from '../../src/guest/timekeeper.ts';
import { parseScenarioText } from '../../src/world/scenario.ts';
import { simulate, timelineCsv } from '../../src/world/simulation.ts';
import { VirtualMachine } from '../../src/vmm/machine.ts';

const json = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x), 1);

/** Updates the timekeeper's WebAssembly loop ran (Timekeeper.advanceEvery) while `sim` ran. */
function wasmUpdates<T>(sim: () => T): { result: T; updates: number } {
  let updates = 0;
  const every = Timekeeper.prototype.advanceEvery;
  Timekeeper.prototype.advanceEvery = function (this: Timekeeper, plan, t, interval, n, moveTo) {
    const ran = every.call(this, plan, t, interval, n, moveTo);
    if (ran) updates += n;
    return ran;
  };
  try {
    return { result: sim(), updates };
  } finally {
    Timekeeper.prototype.advanceEvery = every;
  }
}

/** Runs `yaml` both ways; returns how many expiries the quiet run took in spans, and how many updates of them the WebAssembly loop ran. */
function bothWays(yaml: string, where: string): number {
  return bothWaysCounted(yaml, where).spans;
}

function bothWaysCounted(yaml: string, where: string): { spans: number; wasm: number } {
  const s = parseScenarioText(yaml, where);
  const slow = simulate(s, { quietSpans: false });
  let spans = 0;
  const count = Engine.prototype.countDispatched;
  Engine.prototype.countDispatched = function (n: number) {
    spans += n;
    count.call(this, n);
  };
  let fast: ReturnType<typeof simulate>;
  let wasm: number;
  try {
    ({ result: fast, updates: wasm } = wasmUpdates(() => simulate(s, { quietSpans: true })));
  } finally {
    Engine.prototype.countDispatched = count;
  }
  assert.equal(json(fast.summary), json(slow.summary), `${where}: summary`);
  assert.equal(timelineCsv(fast.timeline), timelineCsv(slow.timeline), `${where}: timeline`);
  assert.equal(json(fast.series), json(slow.series), `${where}: series`);
  return { spans, wasm };
}

/**
 * Runs `yaml` with quiet spans stepped in TypeScript (the WebAssembly loop off) and every span step
 * checked against the heap (Engine.checkSpanSteps: an EngineError where a step would skip a pending
 * event); the same bytes as event by event. Returns how many steps it checked.
 */
function checkedSpanSteps(yaml: string, where: string): number {
  const s = parseScenarioText(yaml, where);
  let steps = 0;
  const step = Engine.prototype.spanStep;
  Engine.prototype.spanStep = function (t: bigint, by: number) {
    steps++;
    this.checkSpanSteps = true;
    step.call(this, t, by);
  };
  setQuietWasm(false);
  let stepped: ReturnType<typeof simulate>;
  try {
    stepped = simulate(s, { quietSpans: true });
  } finally {
    Engine.prototype.spanStep = step;
    setQuietWasm(true);
  }
  const slow = simulate(s, { quietSpans: false });
  assert.equal(json(stepped.summary), json(slow.summary), `${where}: summary (TypeScript span steps)`);
  assert.equal(timelineCsv(stepped.timeline), timelineCsv(slow.timeline), `${where}: timeline (TypeScript span steps)`);
  return steps;
}

const one = (vm: string, host = '', extra = '', duration = '6h') => `
name: fast-path
duration: ${duration}
hosts:
  - { name: h, tsc: { freq_khz: 2596136 }${host} }
  - { name: h2, tsc: { freq_khz: 3000000 } }
vms:
  - { name: v, host: h, ${vm} }
${extra}`;

const CASES: [string, string][] = [
  ['NTP and a pause (the fleet bench VM)', one('pauses: [{ at: 2h, duration: 30s }], sync: { method: ntp }')],
  [
    'NTP, a pause on a whole second (update and entry timers then fall due together)',
    one('pauses: [{ at: 1h, duration: 7s }], sync: { method: ntp, ntp_poll_exp: 4 }'),
  ],
  ['ntpd with a 1,024-s poll and a 5-min pause', one('pauses: [{ at: 10min, duration: 5min }], sync: { method: ntpd, ntp_poll_exp: 10 }')],
  [
    'chrony over a jittery path, a pause',
    one(
      'pauses: [{ at: 3h, duration: 2min }], sync: { method: chrony, iburst: true }',
      '',
      'ntp_servers:\n  - { name: s, path: { delay: 2ms, jitter: 300us, loss: 0.05 } }',
    ),
  ],
  ['agent sync after a snapshot restored an hour later', one('snapshots: [{ at: 30min, restore_after: 1h }], sync: { method: agent }')],
  [
    'a live migration to a 3 GHz host with TSC scaling',
    one('tsc_frequency_khz: 2596136, migrations: [{ at: 1h, to: h2, downtime: 100ms, tsc_scaling: true }], sync: { method: ntp }'),
  ],
  [
    'a migration without scaling (kvm-clock guest, TSC unstable)',
    one('profile: qemu-kvm-noinvtsc, migrations: [{ at: 1h, to: h2, downtime: 250ms, tsc_scaling: false }]'),
  ],
  [
    'host realtime steps, host without NTP, agent sync',
    one(
      'pauses: [{ at: 2h, duration: 10s }], sync: { method: agent }',
      ', ntp: false, realtime_steps: [{ at: 1h, by: -30s }, { at: 4h, by: 2s }]',
    ),
  ],
  [
    'crystal wander every 10 s at 12 ppm, NTP',
    one('sync: { method: ntp }', ', oscillator: { ppm: 12, wander_sigma_ppm: 0.01, wander_interval: 10s }'),
  ],
  [
    'crystal error, two vCPUs, kvm-clock clocksource, chrony',
    one("vcpus: 2, cmdline: 'clocksource=kvm-clock', sync: { method: chrony }", ', oscillator: { ppm: -35 }'),
  ],
  [
    'Firecracker restore with KVM_CLOCK_REALTIME, initial offset',
    one(
      'profile: firecracker, initial_offset: 250ms, snapshots: [{ at: 1h, restore_after: 60s, clock_realtime: true }], sync: { method: ntp }',
    ),
  ],
  ['a late boot and a 10-s update interval', one('boot_at: 17min, update_interval: 10s, sync: { method: ntp }')],
];

for (const [name, yaml] of CASES) {
  test(`quiet spans give the same bytes as event by event: ${name}`, () => {
    const { spans, wasm } = bothWaysCounted(yaml, name);
    assert.ok(spans > 0, 'the quiet run took no span: this case tests nothing');
    // a tsc clocksource (all but the kvm-clock case) runs its span updates in the WebAssembly loop
    if (!name.includes('kvm-clock')) assert.ok(wasm > 0, 'no update ran in the WebAssembly loop');
    assert.ok(checkedSpanSteps(yaml, name) > 0, 'no span step to check');
  });
}

// What a span cannot foresee (a thread that waits, a skewed host, RDTSC exits): event by event, the same bytes.
const DECLINED: [string, string][] = [
  [
    'RDTSC exiting with offset compensation',
    one('rdtsc_exiting: { exit_cost: 1.2us, offset_compensation: true, rate: 10000 }, sync: { method: ntp }', '', '', '2h'),
  ],
  [
    'a skewed host that trusts its TSC, 4 vCPUs',
    one('vcpus: 4, sync: { method: ntp }', ', tsc_skew: { per_cpu_ns: [0, 1500, 3000, 4500], tsc_reliable: true }', '', '2h'),
  ],
  ['a skewed host that marks its TSC unstable', one('vcpus: 2', ', tsc_skew: { per_cpu_ns: [0, 3000] }', '', '2h')],
  [
    'an overcommitted host (2 CPUs, 2 busy threads), 2 vCPUs',
    one('vcpus: 2, sync: { method: ntp }', ', cpus: 2, load: { busy_threads: 2 }', '', '1h'),
  ],
];

for (const [name, yaml] of DECLINED) {
  test(`event by event where a span cannot foresee the entries, the same bytes: ${name}`, () => {
    bothWays(yaml, name);
  });
}

test('quiet spans give the same bytes as event by event: every example scenario', () => {
  const dir = join(import.meta.dirname, '../../examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 5);
  for (const f of files) bothWays(readFileSync(join(dir, f), 'utf8'), f);
});

test('a pause lands inside what would have been a span: the span stops before it', () => {
  // one VM, 1-min samples: spans run up to each sample; the pause at 90 s cuts the second one short
  const spans = bothWays(one('pauses: [{ at: 90s, duration: 1s }]', '', '', '10min'), 'pause at 90 s');
  assert.ok(spans > 500, `${spans} expiries in spans`);
});

test('with tracing on every expiry runs event by event (each entry is traced): the same trace and results', () => {
  const s = parseScenarioText(one('pauses: [{ at: 20min, duration: 30s }], sync: { method: ntp }', '', '', '1h'), 'traced');
  const runs = [true, false].map((quietSpans) => {
    const trace = new TraceRecorder({ enabled: true });
    let spans = 0;
    const count = Engine.prototype.countDispatched;
    Engine.prototype.countDispatched = function (n: number) {
      spans += n;
      count.call(this, n);
    };
    try {
      const r = simulate(s, { quietSpans, trace });
      return { spans, out: json({ summary: r.summary, timeline: r.timeline, trace: trace.recorded }) };
    } finally {
      Engine.prototype.countDispatched = count;
    }
  });
  assert.equal(runs[0]!.spans, 0);
  assert.equal(runs[0]!.out, runs[1]!.out);
  assert.ok(runs[0]!.out.includes('record_steal_time'));
});

/** `yaml` both ways; the quiet run's spans (VirtualMachine.endQuietEntries) and expiries in them. */
function spansOf(yaml: string, where: string): { spans: number; expiries: number } {
  let spans = 0;
  const end = VirtualMachine.prototype.endQuietEntries;
  VirtualMachine.prototype.endQuietEntries = function (this: VirtualMachine, ...args: Parameters<typeof end>) {
    spans++;
    end.apply(this, args);
  };
  try {
    return { expiries: bothWays(yaml, where), spans };
  } finally {
    VirtualMachine.prototype.endQuietEntries = end;
  }
}

test("KVM's 300-s kvmclock sync runs inside quiet spans (the entry after it handles the clock update): a day in a handful of spans, the same bytes", () => {
  const { spans, expiries } = spansOf(
    one('pauses: [{ at: 6h, duration: 30s }], sync: { method: ntp }', '', '', '1d'),
    'a day, NTP, a pause',
  );
  // 288 syncs a day: one span each before; now spans of at most an hour (MAX_QUIET_SPAN_NS), cut by the pause
  assert.ok(spans > 0 && spans <= 26, `${spans} spans`);
  assert.ok(expiries > 170_000, `${expiries} expiries in spans`);
});

test('a span that cannot take the last kvmclock sync before its horizon ends before that sync instead of running event by event (a pause 22.5 h in), the same bytes', () => {
  // the fleet bench's draw 1579: in the hour before the pause the horizon is the pause, and the last
  // sync's entry before it was the span's last, so every update of that hour was declined and ran event
  // by event (3,600 fewer expiries in spans), each one walking the participants' expiries again
  const { spans, expiries } = spansOf(
    one('pauses: [{ at: 81000712992943ns, duration: 30s }], sync: { method: ntp }', '', '', '1d'),
    'a pause at 81,000.712992943 s',
  );
  assert.ok(spans > 0 && spans <= 30, `${spans} spans`);
  assert.ok(expiries > 175_000, `${expiries} expiries in spans`);
});
