import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScenarioText } from '../../src/world/scenario.ts';
import { simulate, timelineCsv } from '../../src/world/simulation.ts';
import { DEMO_SCENARIO_YAML } from '../../src/world/demo.ts';

const base = (ppm: number, extra = '') => `
name: drift
duration: 1d
sample_interval: 1h
hosts:
  - name: h
    oscillator: { ppm: ${ppm} }
    tsc: { freq_khz: 2000000 }
vms:
  - { name: v, host: h${extra} }
`;

test('a free-running guest on a 12 ppm fast host gains 12 ppm of a day (1.0368 s)', () => {
  const res = simulate(parseScenarioText(base(12)));
  const v = res.summary.vms[0]!;
  assert.equal(v.initial_offset_ns, '0'); // kvmclock wall clock at boot: ns exact, host is NTP-synced
  // the guest scales its TSC at the nominal rate, so it inherits the crystal's 1.0368 s (to 1 ns of TSC truncation)
  const final = Number(v.final_offset_ns);
  assert.ok(Math.abs(final - 1.0368e9) <= 1, `final offset ${final}`);
  assert.ok(Math.abs(v.drift_ppm - 12) < 1e-5);
  assert.equal(res.timeline.length, 25); // boot sample at 0 plus one an hour
});

test('a guest that reads the CMOS RTC starts behind by the fraction of the second it booted in', () => {
  const res = simulate(parseScenarioText(base(0, ', wall_clock: rtc, boot_at: 2.3s')));
  assert.equal(res.summary.vms[0]!.initial_offset_ns, '-300000000');
  assert.equal(res.summary.vms[0]!.final_offset_ns, '-300000000'); // 0 ppm: no drift
});

test('a year-long run stays exact and fast enough to run in a test', () => {
  const res = simulate(parseScenarioText(base(-3).replace('duration: 1d', 'duration: 1y').replace('sample_interval: 1h', 'sample_interval: 1d')));
  const final = Number(res.summary.vms[0]!.final_offset_ns);
  assert.ok(Math.abs(final - -3e-6 * 365 * 86400e9) <= 1, String(final));
  assert.equal(res.summary.samples, 366);
});

test('same scenario and seed give byte-identical output; another seed changes the wander', () => {
  const s = parseScenarioText(DEMO_SCENARIO_YAML);
  const a = simulate(s);
  const b = simulate(s);
  assert.equal(JSON.stringify(a.summary), JSON.stringify(b.summary));
  assert.equal(timelineCsv(a.timeline), timelineCsv(b.timeline));
  const c = simulate({ ...s, seed: 43 });
  assert.notEqual(timelineCsv(c.timeline), timelineCsv(a.timeline));
});
