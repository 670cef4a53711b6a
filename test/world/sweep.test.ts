// Sweep files (src/world/sweep.ts) and the results table (src/world/sweep-results.ts): grid expansion,
// drawn VMs independent of how many are drawn, file:line errors, percentiles, time to resync, Parquet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parquetReadObjects } from 'hyparquet';
import { InputError } from '../../src/core/errors.ts';
import { Prng } from '../../src/core/prng.ts';
import {
  loadSweep,
  parseSweepText,
  pointOutcome,
  type SimulationSummary,
  summarize,
  sweepColumns,
  toCsv,
  parseCsv,
  toParquet,
  shardRange,
  type SweepMeta,
} from '../../src/world/index.ts';

const BASE = `base:
  name: b
  seed: 9
  duration: 2h
  hosts: [{ name: h, tsc: { freq_khz: 2596136 } }, { name: unused, tsc: { freq_khz: 2000000 } }]
  vms:
    - { name: a, host: h, pauses: [{ at: 1h, duration: 1s }] }
    - { name: b, host: h }
`;

test('a grid enumerates every combination, parameters in SWEEP_PARAMS order, the last fastest', () => {
  const s = parseSweepText(`${BASE}grid:\n  sync: [none, ntp]\n  profile: [qemu-kvm, firecracker]\n  pause: [1s, 2min]\n`, 'g.yaml');
  assert.equal(s.mode, 'grid');
  assert.deepEqual(s.params, ['pause', 'profile', 'sync']);
  assert.deepEqual(
    s.points.map((p) => `${p.params.pause}/${p.params.profile}/${p.params.sync}`),
    [
      '1000000000/qemu-kvm/none',
      '1000000000/qemu-kvm/ntp',
      '1000000000/firecracker/none',
      '1000000000/firecracker/ntp',
      '120000000000/qemu-kvm/none',
      '120000000000/qemu-kvm/ntp',
      '120000000000/firecracker/none',
      '120000000000/firecracker/ntp',
    ],
  );
  // grid points keep the base scenario's seed (they differ only by the values varied)
  assert.ok(s.points.every((p) => p.seed === 9));
  const sc = s.scenarioOf(s.points[6]!);
  assert.deepEqual(
    sc.vms.map((v) => v.name),
    ['a'],
  );
  assert.deepEqual(
    sc.hosts.map((h) => h.name),
    ['h'],
  );
  assert.equal(sc.vms[0]!.profile, 'firecracker');
  assert.equal(sc.vms[0]!.sync.method, 'none');
  // the pause keeps the base VM's start (1 h) and takes the grid's length
  assert.deepEqual(sc.vms[0]!.pauses, [{ at: 3_600_000_000_000n, duration: 120_000_000_000n }]);
});

test("a drawn VM's values depend on its index and the seed only, not on how many are drawn", () => {
  const draw = (count: number, seed = 5) =>
    parseSweepText(
      `${BASE}seed: ${seed}\ndraw:\n  count: ${count}\n  pause: { log_uniform: [100ms, 10min] }\n  ppm: { normal: { mean: 0, sigma: 10 } }\n  profile: { choice: [qemu-kvm, firecracker], weights: [3, 1] }\n`,
      'd.yaml',
    );
  const few = draw(3);
  const many = draw(50);
  assert.deepEqual(few.points, many.points.slice(0, 3));
  assert.notDeepEqual(draw(3, 6).points, few.points);
  // point 1's pause, by hand: stream fork('vm/1').fork('pause'), log-uniform over [1e8, 6e11] ns
  const u = new Prng(5).fork('vm/1').fork('pause').float();
  const want = BigInt(Math.round(Math.exp(Math.log(1e8) + (Math.log(6e11) - Math.log(1e8)) * u)));
  assert.equal(many.points[1]!.params.pause, want);
  assert.equal(many.points[1]!.seed, new Prng(5).fork('vm/1').fork('seed').nextU32());
  for (const p of many.points) {
    assert.ok((p.params.pause as bigint) >= 100_000_000n && (p.params.pause as bigint) <= 600_000_000_000n);
    assert.ok(p.params.profile === 'qemu-kvm' || p.params.profile === 'firecracker');
  }
  // different sweeps get different ids (shards of one do not merge with another's)
  assert.notEqual(few.id, many.id);
  assert.equal(draw(3).id, few.id);
});

test('shards are contiguous slices covering every point once', () => {
  for (const [points, n] of [
    [10, 3],
    [3, 5],
    [1000, 7],
  ] as const) {
    let next = 0;
    for (let i = 0; i < n; i++) {
      const r = shardRange(points, i, n);
      assert.equal(r.first, next);
      next = r.end;
    }
    assert.equal(next, points);
  }
  assert.deepEqual(shardRange(10, 1, 3), { first: 3, end: 6 });
});

test('bad sweep files: one InputError naming file:line, the path and what was expected', () => {
  const cases: [string, RegExp][] = [
    [`${BASE}grid:\n  profile: []\n`, /^s\.yaml:10: grid\.profile: needs at least 1 entry$/],
    [`${BASE}grid:\n  speed: [1]\n`, /^s\.yaml:10: grid\.speed: unknown key "speed"$/],
    [`${BASE}grid:\n  pause: [soon]\n`, /^s\.yaml:10: grid\.pause\[0\]: expected a duration like/],
    [`${BASE}draw:\n  count: 0\n`, /^s\.yaml:10: draw\.count: must be ≥ 1, got 0$/],
    [`${BASE}draw:\n  count: 2\n  pause: { uniform: [2s, 1s] }\n`, /^s\.yaml:11: draw\.pause\.uniform: expected \[lo, hi\] with lo ≤ hi$/],
    [
      `${BASE}draw:\n  count: 2\n  profile: { choice: [a, b], weights: [1] }\n`,
      /^s\.yaml:11: draw\.profile\.weights: needs one weight per choice \(2\)$/,
    ],
    [`${BASE}grid: { sync: [none] }\ndraw: { count: 1 }\n`, /^s\.yaml:1: \(top level\): expected exactly one of grid: and draw:$/],
    [`${BASE}vm: zz\ngrid: { sync: [none] }\n`, /^s\.yaml:9: vm: no VM named "zz" in the base scenario \(vms: a, b\)$/],
    [
      `base:\n  duration: 1h\n  hosts: []\n  vms: [{ name: a, host: h }]\ngrid: { sync: [none] }\n`,
      /^s\.yaml:3: base\.hosts: needs at least 1 entry$/,
    ],
    [
      `${BASE}vm: b\ngrid:\n  pause_at: [10min]\n`,
      /^s\.yaml:11: grid\.pause_at: needs pause: too \(the base VM "b" has no pause to move\)$/,
    ],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseSweepText(text, 's.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof InputError, String(e));
        assert.match([e.where, e.path, e.message].filter(Boolean).join(': '), re);
        return true;
      },
    );
  }
});

test('a point whose values make an invalid scenario is named with its values', () => {
  const s = parseSweepText(`${BASE}grid:\n  profile: [qemu-kvm, vmware]\n`, 's.yaml');
  assert.throws(() => s.scenarioOf(s.points[1]!), /point 1 \(profile=vmware\) makes an invalid scenario: vms\[0\]\.profile: /);
});

const summaryWith = (events: SimulationSummary['vms'][0]['events'], pauses: { at_s: number; duration_s: number }[]) =>
  ({
    vms: [
      {
        final_clocksource: 'tsc',
        final_offset_ns: '-7',
        max_abs_offset_ns: '900000000000',
        events,
        pauses,
      },
    ],
  }) as unknown as SimulationSummary;

const ev = (kind: 'pause' | 'sync' | 'restore', at_s: number, after: string | null) => ({
  kind,
  at_s,
  offset_before_ns: '0',
  offset_after_ns: after,
  monotonic_advance_ns: null,
  verdict: '',
});

test('time to resync runs from the resume to the first sync within resync_within', () => {
  // a 900 s pause at 3600 s; the sync at 4564 s leaves 2 ms (> 1 ms), the next at 4628 s 0.5 ms
  const s = summaryWith(
    [ev('pause', 3600, '-900000000000'), ev('sync', 4564, '2000000'), ev('sync', 4628, '-500000'), ev('restore', 5000, '3')],
    [{ at_s: 3600, duration_s: 900 }],
  );
  assert.deepEqual(pointOutcome(s, 1_000_000n), [
    ['tsc', '-7', '900000000000', '0', 'pause', '3600', '0', '-900000000000', '4564', '2000000', '128'],
    ['tsc', '-7', '900000000000', '1', 'restore', '5000', '0', '3', '', '', ''],
  ]);
  // a looser threshold counts the first sync: 4564 − 4500 = 64 s
  assert.equal(pointOutcome(s, 2_000_000n)[0]![10], '64');
  // a VM with no events still has its row
  assert.deepEqual(pointOutcome(summaryWith([], []), 1n), [['tsc', '-7', '900000000000', '', '', '', '', '', '', '', '']]);
});

const META: SweepMeta = { sweep: 't', sweep_id: 'x', mode: 'draw', seed: 1, points: 4, resync_within_ns: '1000000' };

test('summary percentiles are nearest-rank over VMs and events, from the rows alone', () => {
  const cols = sweepColumns(['sync']);
  const header = cols.map(([n]) => n);
  const row = (i: number, final: string, kind: string, after: string, resync: string) => [
    String(i),
    '1',
    'ntp',
    'tsc',
    final,
    '50',
    kind ? '0' : '',
    kind,
    kind ? '1' : '',
    '0',
    after,
    '',
    '',
    resync,
  ];
  const rows = [
    row(0, '-40', 'pause', '-100', '1'),
    row(1, '10', 'pause', '300', ''),
    row(1, '10', 'restore', '7', '2.5'),
    row(2, '20', 'pause', '-200', '64'),
    row(3, '-30', '', '', ''),
  ];
  const s = summarize(META, header, rows);
  assert.equal(s.rows, 5);
  assert.equal(s.vms, 4);
  // |final| sorted 10, 20, 30, 40: p50 = the 2nd, p99 = the 4th
  assert.deepEqual(s.final_abs_offset, { count: 4, p50_ns: '20', p99_ns: '40', max_ns: '40' });
  assert.deepEqual(s.events.pause!.offset_after_abs, { count: 3, p50_ns: '200', p99_ns: '300', max_ns: '300' });
  assert.deepEqual(s.events.pause!.resync_s, { resynced: 2, never: 1, p50: 1, p99: 64, max: 64 });
  assert.deepEqual(Object.keys(s.events), ['pause', 'restore']);
  assert.equal(s.events.pause!.offset_after_sync_abs, null);
});

test('CSV round-trips cells with commas and quotes; Parquet holds the same values, typed', async () => {
  const cols = sweepColumns(['profile', 'pause']);
  const header = cols.map(([n]) => n);
  const rows = [
    ['0', '4294967295', '1000000000', 'odd,"name"', 'tsc', '-9007199254740993', '5', '0', 'pause', '0.5', '1', '-2', '', '', ''],
    ['1', '3', '2', 'qemu-kvm', 'kvm-clock', '4', '5', '', '', '', '', '', '', '', ''],
  ];
  const csv = toCsv(header, rows);
  assert.deepEqual(parseCsv(csv, 'r.csv'), { header, rows });
  const bytes = toParquet(cols, rows);
  const got = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
  assert.equal(got.length, 2);
  assert.equal(got[0]!.profile, 'odd,"name"');
  assert.equal(got[0]!.final_offset_ns, -9007199254740993n); // beyond 2^53: exact as INT64
  assert.equal(got[0]!.seed, 4294967295n);
  assert.equal(got[0]!.event_at_s, 0.5);
  assert.equal(got[1]!.event, null);
  assert.equal(got[1]!.index, 1);
  assert.throws(
    () => parseCsv('a,b\n1\n', 'r.csv'),
    (e: unknown) => e instanceof InputError && e.where === 'r.csv' && e.message === 'row 2 has 1 cells, the header 2',
  );
});

test('the example sweeps in examples/sweeps parse: an 18-point grid and 40 drawn VMs', () => {
  const dir = new URL('../../examples/sweeps/', import.meta.url).pathname;
  const grid = loadSweep(`${dir}pause-grid.yaml`);
  assert.equal(grid.points.length, 18);
  assert.deepEqual(grid.params, ['pause', 'profile', 'sync']);
  const draw = loadSweep(`${dir}fleet-draw.yaml`);
  assert.equal(draw.points.length, 40);
  for (const p of draw.points) draw.scenarioOf(p); // every drawn VM makes a valid scenario
});
