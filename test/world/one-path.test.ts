// One path from scenario to VM: `run` (simulate), `guest --scenario`, `guest --profile` and the doctor's
// replay all boot a scenario VM through src/world/resolve.ts and World.bootVm, so they boot the same VM.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { runGuest } from '../../src/cli/commands/guest.ts';
import { InputError } from '../../src/core/errors.ts';
import { replayScenario } from '../../src/doctor/replay.ts';
import { bootScenarioGuest, GUEST_SETTLE_NS, parseScenarioText, resolveScenario, simulate } from '../../src/world/index.ts';

const YAML = `name: one-path
duration: 20s
hosts:
  - name: h
    oscillator: { ppm: 12, wander_sigma_ppm: 0.01, wander_interval: 2s }
    tsc: { freq_khz: 2596134, invariant: false, constant: true, nonstop: true }
vms:
  - name: early
    host: h
    profile: qemu-kvm
  - name: fc
    host: h
    profile: firecracker
    boot_at: 3s
    kvmclock_at_init: 52991526ns
    cmdline: "console=ttyS0 quiet"
`;
const bin = join(import.meta.dirname, '../../bin/timevisor.js');
const dir = mkdtempSync(join(tmpdir(), 'tv-one-path-'));

test('run, guest --scenario and the doctor replay boot the same VM from the same scenario', () => {
  const s = parseScenarioText(YAML, 'one-path.yaml');
  const fromRun = simulate(s, { guestReportAfterNs: GUEST_SETTLE_NS }).guests!;
  const fromGuest = bootScenarioGuest(resolveScenario(s), 'fc');
  assert.deepEqual(fromGuest, fromRun.fc);
  // the doctor replays the first VM of the scenario it wrote
  const first = bootScenarioGuest(resolveScenario(s));
  const replay = replayScenario(parse(YAML));
  assert.ok(replay.ok);
  assert.deepEqual(replay.value, first);
  assert.deepEqual(first, fromRun.early);
  const file = join(dir, 'one-path.yaml');
  writeFileSync(file, YAML);
  const cli = spawnSync(process.execPath, [bin, 'guest', '--scenario', file, '--vm', 'fc', '--json'], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  assert.deepEqual(JSON.parse(cli.stdout), JSON.parse(JSON.stringify(fromGuest)));
  // what the summary says of the VM is what its guest shows
  const sum = simulate(s).summary.vms.find((v) => v.name === 'fc')!;
  assert.equal(`${sum.clocksource}\n`, fromGuest.current_clocksource);
  assert.ok(fromGuest.boot_log.includes('kvm-clock: using sched offset of 52991526 cycles'));
});

test('guest --profile goes through the same scenario path as --scenario', () => {
  const viaProfile = runGuest({ profile: 'firecracker', kernel: 'distro', cmdline: 'console=ttyS0 quiet', host: { tscKhz: 2_596_134 } });
  const viaScenario = bootScenarioGuest(
    resolveScenario(
      parseScenarioText(
        'duration: 0\nhosts: [{ name: h, tsc: { freq_khz: 2596134 } }]\nvms: [{ name: v, host: h, profile: firecracker, cmdline: "console=ttyS0 quiet" }]\n',
      ),
    ),
  );
  assert.deepEqual(viaProfile, viaScenario);
});

test('contradictory TSC flags are rejected with the reason, naming the path and line', () => {
  const bad = YAML.replace('invariant: false, constant: true', 'invariant: true, constant: false');
  assert.throws(
    () => parseScenarioText(bad, 'bad.yaml'),
    (e: unknown) =>
      e instanceof InputError && e.where === 'bad.yaml:6' && e.path === 'hosts[0].tsc.invariant' && /constant and nonstop/.test(e.message),
  );
});

test('guest options map to their scenario paths: a bad one is named as the option the user typed', () => {
  assert.throws(
    () => runGuest({ profile: 'kvmtool', kernel: 'distro', cmdline: '', host: {}, vcpus: 0 }),
    (e: unknown) => e instanceof InputError && e.where === '--vcpus',
  );
  assert.throws(
    () => runGuest({ profile: 'kvmtool', kernel: 'distro', cmdline: '', host: { tscKhz: 1 } }),
    (e: unknown) => e instanceof InputError && e.where === '--host-tsc-khz' && /≥ 1000/.test(e.message),
  );
  const r = spawnSync(process.execPath, [bin, 'guest', '--profile', 'kvmtool', '--vcpus', '0'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--vcpus: must be ≥ 1, got 0/);
});

test('no command creates a VM around the resolver: outside src/vmm only World.bootVm calls vmm’s bootVm', async () => {
  const { readdirSync, readFileSync, statSync } = await import('node:fs');
  const src = join(import.meta.dirname, '../../src');
  const files = (d: string): string[] =>
    readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? files(join(d, n)) : n.endsWith('.ts') ? [join(d, n)] : []));
  const offenders = files(src)
    .filter((f) => !f.includes('/src/vmm/') && !f.endsWith('/src/world/world.ts'))
    .filter((f) => /(?<![.\w])bootVm\(|new VirtualMachine\(/.test(readFileSync(f, 'utf8')));
  assert.deepEqual(offenders, []);
});
