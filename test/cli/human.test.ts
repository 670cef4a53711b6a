// The human report of `timevisor run`: numbers right-aligned, sparklines on one time axis for all VMs.
import assert from 'node:assert/strict';
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
