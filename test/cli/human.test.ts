// The human report of `timevisor run`: numbers right-aligned, sparklines on one time axis for all VMs, host CPU
// sharing and timer interrupts as summary.json has them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { humanSummary } from '../../src/cli/commands/run.ts';
import { parseScenarioText, simulate } from '../../src/world/index.ts';

const YAML = `duration: 1h
sample_interval: 1min
hosts: [{ name: h, tsc: { freq_khz: 2596136 }, oscillator: { ppm: 20 } }]
vms:
  - { name: early, host: h, profile: qemu-kvm-noinvtsc }
  - { name: late, host: h, profile: qemu-kvm-noinvtsc, boot_at: 30min }
`;

test('sparklines share the run’s time axis: a VM booted at half time starts half way along', () => {
  const out = humanSummary(simulate(parseScenarioText(YAML)));
  const sparkRows = out.split('\n').filter((l) => /[▁-█]/.test(l));
  const early = sparkRows.find((l) => l.startsWith('  early  '))!;
  const late = sparkRows.find((l) => l.startsWith('  late   '))!;
  const spark = (l: string) => l.slice('  early  '.length, '  early  '.length + 60);
  // 60 columns over 3600 s: one per minute; the late VM's first sample (kernel entry just after 30 min) is in column 30
  assert.equal(spark(late).search(/\S/), 30);
  assert.equal(spark(early).search(/\S/), 0);
  assert.match(out, /\n {9}0 {53}1\.00 h\n/); // the axis: 0 under the first column, the run length ending under the last
});

test('offset columns are right-aligned', () => {
  const out = humanSummary(simulate(parseScenarioText(YAML)));
  const rows = out.split('\n').filter((l) => /^ {2}(early|late) +qemu/.test(l));
  assert.equal(rows.length, 2);
  // every row ends at the same column: the drift column is right-aligned
  assert.equal(new Set(rows.map((r) => [...r].length)).size, 1);
});

/** "797.790 s", "43.077 µs", "0 ns" → [ns, half the last digit's unit] */
function parseDuration(cell: string): [number, number] {
  const m = /^(\d+)(?:\.(\d+))? (ns|µs|ms|s)$/.exec(cell);
  assert.ok(m, `not a duration: "${cell}"`);
  const unit = { ns: 1, µs: 1e3, ms: 1e6, s: 1e9 }[m[3] as 'ns' | 'µs' | 'ms' | 's'];
  const decimals = m[2]?.length ?? 0;
  return [Number(`${m[1]}.${m[2] ?? '0'}`) * unit, unit / 10 ** decimals / 2];
}

/** The "host CPUs and timer interrupts" table: header cells and each VM's cells by header. */
function sharingRows(out: string): { lines: string[]; rows: Map<string, Record<string, string>> } {
  const all = out.split('\n');
  const at = all.indexOf('host CPUs and timer interrupts:');
  assert.ok(at >= 0, out);
  const lines = all.slice(at + 1).filter((_, i, a) => a.slice(0, i + 1).every((l) => /^ {2}[^ (]/.test(l)));
  const split = (l: string) => l.trim().split(/ {2,}/);
  const head = split(lines[0]!);
  const rows = new Map(lines.slice(1).map((l) => [split(l)[0]!, Object.fromEntries(split(l).map((c, i) => [head[i]!, c]))]));
  return { lines, rows };
}

/** Each cell against summary.json's figure: integers exactly, durations to the printed digits. */
function checkRow(cells: Record<string, string>, v: Record<string, unknown>): void {
  const close = (cell: string | undefined, ns: string, what: string) => {
    assert.ok(cell !== undefined, `${what} missing`);
    const [value, half] = parseDuration(cell);
    assert.ok(Math.abs(value - Number(ns)) <= half, `${what}: "${cell}" is not ${ns} ns`);
  };
  const lateness = v.timer_lateness_ns as Record<string, string>;
  if ('steal' in cells) close(cells.steal, v.steal_ns as string, 'steal');
  if ('timer irqs' in cells) assert.equal(cells['timer irqs'], v.timer_irqs);
  if ('lost' in cells) assert.equal(cells.lost, v.ticks_lost);
  if ('reinjected' in cells) assert.equal(cells.reinjected, v.ticks_reinjected);
  if ('late p50' in cells) {
    close(cells['late p50'], lateness.p50!, 'late p50');
    close(cells['late p99'], lateness.p99!, 'late p99');
    close(cells['late max'], v.max_timer_lateness_ns as string, 'late max');
  }
}

test('`timevisor run` on the 2:1 overcommit example: each VM’s steal, timer interrupts and lateness p50/p99/max as summary.json has them, aligned', () => {
  const BIN = resolve(import.meta.dirname, '../../bin/timevisor.js');
  const dir = mkdtempSync(join(tmpdir(), 'tv-human-'));
  try {
    const r = spawnSync(
      process.execPath,
      [BIN, 'run', resolve(import.meta.dirname, '../../examples/overcommit-2to1.yaml'), '--out', dir, '--quiet'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { vms: Record<string, unknown>[] };
    const { lines, rows } = sharingRows(r.stdout);
    // nothing lost or reinjected on this host: those columns are left out
    assert.deepEqual(lines[0]!.trim().split(/ {2,}/), ['vm', 'steal', 'timer irqs', 'late p50', 'late p99', 'late max']);
    assert.deepEqual([...rows.keys()], ['vm-a', 'vm-b']);
    for (const v of summary.vms) checkRow(rows.get(v.name as string)!, v);
    assert.equal(new Set(lines.map((l) => [...l].length)).size, 1, 'numbers right-aligned: every row ends in the same column');
    assert.match(r.stdout, /\n {2}\(steal: .*\)\n {2}\(late: .*\)\n/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lost and reinjected ticks get their columns; a VM with nothing to show has no row, a run with nothing none of the table', () => {
  const yaml = `duration: 3s
sample_interval: 1s
hosts: [{ name: h, tsc: { freq_khz: 2596136 } }]
vms:
  - { name: reinject, host: h, profile: kvmtool, kernel: yocto-qemux86, cmdline: nolapic, deschedule: { period: 100ms, run: 50ms } }
  - { name: discard, host: h, profile: kvmtool, kernel: yocto-qemux86, cmdline: nolapic, deschedule: { period: 100ms, run: 50ms }, pit_lost_tick_policy: discard }
  - { name: alone, host: h, profile: qemu-kvm }
`;
  const res = simulate(parseScenarioText(yaml));
  const { lines, rows } = sharingRows(humanSummary(res));
  assert.deepEqual(lines[0]!.trim().split(/ {2,}/), ['vm', 'timer irqs', 'lost', 'reinjected', 'late p50', 'late p99', 'late max']);
  assert.deepEqual([...rows.keys()], ['reinject', 'discard']);
  for (const v of res.summary.vms.slice(0, 2)) checkRow(rows.get(v.name)!, v as unknown as Record<string, unknown>);
  assert.ok(Number(res.summary.vms[0]!.ticks_reinjected) > 0 && Number(res.summary.vms[1]!.ticks_lost) > 0);
  assert.doesNotMatch(humanSummary(simulate(parseScenarioText(YAML))), /host CPUs and timer interrupts/);
});
