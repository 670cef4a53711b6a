// A sample reads the guest's CLOCK_REALTIME once and takes CLOCK_MONOTONIC as that plus
// wall_to_monotonic (src/world/vm-run.ts): the same integers as two clock_gettime() calls, since a
// clocksource read at one instant returns one counter value. Checked against a sampler that reads both
// clocks, on scenarios whose wall_to_monotonic moves (NTP steps, settimeofday by the guest agent,
// snapshots, migrations) and on every clocksource the scenarios use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ns } from '../../src/core/index.ts';
import { parseScenarioText } from '../../src/world/scenario.ts';
import { simulate, timelineCsv } from '../../src/world/simulation.ts';
import { VmRun } from '../../src/world/vm-run.ts';

/** The sampler as it was: two clock reads, each clock_gettime() in full. */
function sampleTwoReads(this: VmRun, t: Ns): void {
  // the fields sample() uses (private in TypeScript, plain at run time)
  const self = this as unknown as { world: { truth(t: Ns): Ns }; emit(row: unknown): void };
  const g = this.boot!.guest;
  const truth = self.world.truth(t);
  const off = g.clockGettime('realtime') - truth;
  self.emit({
    t,
    vm: this.vm.name,
    guestOffsetNs: off,
    monotonicLagNs: g.clockGettime('monotonic') - (t - this.createdAt),
    hostOffsetNs: this.host.realtime(t) - truth,
  });
  this.stats.record(t, off);
  this.series.push(t, off);
}

function bothSamplers(yaml: string, where: string): number {
  const s = parseScenarioText(yaml, where);
  const one = simulate(s);
  const sample = VmRun.prototype.sample;
  VmRun.prototype.sample = sampleTwoReads;
  let two: ReturnType<typeof simulate>;
  try {
    two = simulate(s);
  } finally {
    VmRun.prototype.sample = sample;
  }
  assert.equal(timelineCsv(one.timeline), timelineCsv(two.timeline), `${where}: timeline`);
  assert.deepEqual(one.summary, two.summary, `${where}: summary`);
  return one.timeline.length;
}

const vm = (extra: string, dur = '2h') =>
  `name: s\nseed: 3\nduration: ${dur}\nhosts: [{ name: h, tsc: { freq_khz: 2596136 } }]\nvms: [{ name: v, host: h, pauses: [{ at: 20min, duration: 30s }]${extra} }]\n`;

test('a sample takes CLOCK_MONOTONIC from its REALTIME read: the same rows as two reads (NTP steps, kvm-clock, hpet)', () => {
  for (const [name, yaml] of [
    ['ntp step', vm(', sync: { method: ntp }, initial_offset: 2s')],
    ['ntp, kvm-clock', vm(', sync: { method: ntp }, cmdline: "clocksource=kvm-clock"')],
    ['ntp, hpet', vm(', sync: { method: ntp }, cmdline: "clocksource=hpet"', '30min')],
    ['agent', vm(', sync: { method: agent }, initial_offset: -3s')],
  ] as const)
    assert.ok(bothSamplers(yaml, name) > 30, name);
});

test('a sample takes CLOCK_MONOTONIC from its REALTIME read: the same rows as two reads in every example scenario', () => {
  const dir = join(import.meta.dirname, '../../examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 5);
  for (const f of files) bothSamplers(readFileSync(join(dir, f), 'utf8'), f);
});
