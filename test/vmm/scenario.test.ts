// `timevisor guest --scenario FILE`: the first VM of a scenario on its host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { bootScenarioGuest, loadScenario, resolveScenario } from '../../src/world/index.ts';
import { InputError } from '../../src/core/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'tv-guest-'));
const file = (name: string, text: string): string => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

const TWIN = `name: twin
duration: 10s
hosts:
  - name: h
    tsc: { freq_khz: 2596134 }
vms:
  - name: fc
    host: h
    profile: firecracker
    kernel: distro
    cmdline: "console=ttyS0 quiet reboot=k panic=1"
  - name: other
    host: h
    profile: kvmtool
`;

test('the first VM of the scenario boots on its host: firecracker at 2596134 kHz', () => {
  const r = bootScenarioGuest(resolveScenario(loadScenario(file('twin.yaml', TWIN))));
  assert.deepEqual([r.profile, r.kernel, r.host_tsc_khz], ['firecracker', 'distro', 2_596_134]);
  assert.ok(r.boot_log.includes('tsc: Detected 2596.134 MHz processor'));
  assert.equal(r.available_clocksource, 'tsc kvm-clock \n');
});

test('a host whose TSC is not invariant gives the guest no constant_tsc: kvm-clock stays at 400', () => {
  const r = bootScenarioGuest(
    resolveScenario(loadScenario(file('noinv.yaml', TWIN.replace('{ freq_khz: 2596134 }', '{ freq_khz: 2596134, invariant: false }')))),
  );
  assert.equal(r.current_clocksource, 'kvm-clock\n');
});

test('an unknown profile in the scenario is an InputError; so is a zero TSC frequency', () => {
  assert.throws(
    () => loadScenario(file('bad.yaml', TWIN.replace('profile: firecracker', 'profile: vmware'))),
    (e: unknown) => e instanceof InputError && e.path === 'vms[0].profile',
  );
  assert.throws(
    () => loadScenario(file('zero.yaml', TWIN.replace('freq_khz: 2596134', 'freq_khz: 0'))),
    (e: unknown) => e instanceof InputError && e.path === 'hosts[0].tsc.freq_khz',
  );
});

test('CLI: --json prints one object with the sysfs texts; errors are one line with exit code 2', () => {
  const bin = join(import.meta.dirname, '../../bin/timevisor.js');
  const ok = spawnSync(process.execPath, [bin, 'guest', '--scenario', file('cli.yaml', TWIN), '--json'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const j = JSON.parse(ok.stdout) as Record<string, unknown>;
  assert.equal(j.available_clocksource, 'tsc kvm-clock \n');
  assert.equal(j.clockevent_device, 'lapic-deadline\n');
  assert.ok(Array.isArray(j.boot_log));
  const bad = spawnSync(process.execPath, [bin, 'guest', '--profile', 'kvmtool', '--cmdline', 'a="b'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /--cmdline/);
});
