// Whole-report behaviour: recorded trees, a non-Linux system, an unreadable kernel log, and this machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { explain, renderText, unreadable } from '../../src/doctor/explain.ts';
import { runDoctor } from '../../src/doctor/doctor.ts';
import { missing, recordedSource, type SystemSource } from '../../src/doctor/source.ts';

const FIX = join(import.meta.dirname, '../fixtures/doctor');
const ROOT = join(import.meta.dirname, '../..');
const machines = readdirSync(FIX, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

test('every recorded machine yields a report, and whatever is missing is named with a reason', async () => {
  assert.ok(machines.length >= 10, 'machines.length >= 10');
  for (const m of machines) {
    const r = await runDoctor({ source: recordedSource(join(FIX, m)) });
    const text = renderText(r);
    assert.match(text, /timevisor doctor/);
    for (const u of unreadable(r)) assert.ok(u.reason.length > 0, `${m}: ${u.what}`);
    // Live-only readings are never taken from a recording.
    assert.equal(r.ntp.adjtimex.ok, false, m);
    assert.equal(r.vdso.cost.ok, false, m);
  }
});

test('this Firecracker guest, recorded: tsc over kvm-clock, lapic-deadline, kvm-pvm, restored from a snapshot', async () => {
  const r = await runDoctor({ source: recordedSource(join(FIX, 'firecracker-pvm')) });
  assert.ok(
    r.clocksource.current.ok && r.clocksource.current.value.text === 'tsc\n',
    "r.clocksource.current.ok && r.clocksource.current.value.text === 'tsc\\n'",
  );
  assert.ok(r.clockevents.ok, 'r.clockevents.ok');
  assert.deepEqual(r.clockevents.value, { perCpu: ['lapic-deadline', 'lapic-deadline'], broadcast: null });
  assert.ok(r.hypervisor.ok && r.hypervisor.value.name === 'KVM', "r.hypervisor.ok && r.hypervisor.value.name === 'KVM'");
  assert.ok(r.kvm.ok, 'r.kvm.ok');
  assert.deepEqual(r.kvm.value, { devKvm: true, backends: ['kvm_pvm'] });
  const f = explain(r);
  assert.ok(
    f.some((x) => x.topic === 'clocksource' && /lowered its rating to 299/.test(x.text)),
    "f.some((x) => x.topic === 'clocksource' && /lowered its rating to 299/.test(x.text))",
  );
  assert.ok(
    f.some((x) => x.topic === 'snapshot'),
    "f.some((x) => x.topic === 'snapshot')",
  );
  assert.ok(
    f.some((x) => x.topic === 'kvm' && /kvm_pvm/.test(x.text)),
    "f.some((x) => x.topic === 'kvm' && /kvm_pvm/.test(x.text))",
  );
});

test('the jiffies-only guest is flagged as a risk, with no vDSO clock reads', async () => {
  const r = await runDoctor({ source: recordedSource(join(FIX, 'qemu-tcg-jiffies-only')) });
  const risks = explain(r).filter((x) => x.severity === 'risk');
  assert.ok(
    risks.some((x) => x.topic === 'clocksource' && /timer ticks/.test(x.text)),
    "risks.some((x) => x.topic === 'clocksource' && /timer ticks/.test(x.text))",
  );
  assert.ok(
    risks.some((x) => x.topic === 'vdso'),
    "risks.some((x) => x.topic === 'vdso')",
  );
});

test('a boot parameter that marks the TSC unstable is explained as the risk it is', async () => {
  const src = recordedSource(join(FIX, 'firecracker-pvm'));
  const patched: SystemSource = {
    ...src,
    readText: (p) => (p === '/proc/cmdline' ? { ok: true, value: 'console=ttyS0 tsc=unstable\n' } : src.readText(p)),
  };
  const r = await runDoctor({ source: patched });
  const risk = explain(r).find((x) => x.severity === 'risk' && x.topic === 'tsc');
  assert.ok(risk, 'risk');
  assert.match(
    risk.text,
    /TSC marked unstable by a boot parameter \(tsc=unstable\): the guest stays on kvm-clock even though the TSC is invariant/,
  );
});

test('without a readable kernel log the report says so and carries on', async () => {
  const r = await runDoctor({ source: recordedSource(join(FIX, 'coreos-bare-metal-refined-jiffies')) });
  assert.equal(r.kernelLog.ok, false);
  assert.ok(
    explain(r).some((x) => x.topic === 'kernel log' && /could not be read/.test(x.text)),
    "explain(r).some((x) => x.topic === 'kernel log' && /could not be read/.test(x.text))",
  );
  assert.ok(r.clocksource.current.ok, 'r.clocksource.current.ok');
});

test('on a non-Linux system every reading says why it is missing', async () => {
  const mac: SystemSource = {
    origin: 'live',
    platform: 'darwin',
    live: true,
    readText: (p) => missing(`${p}: does not exist`),
    listDir: (p) => missing(`${p}: does not exist`),
    chronyc: () => missing('chronyc is not installed'),
    exists: () => false,
    kernelLog: () => missing('no Linux kernel log on darwin'),
  };
  const r = await runDoctor({ source: mac, stealIntervalMs: 0 });
  const u = unreadable(r);
  for (const what of ['adjtimex', 'clock_gettime cost', 'kernel log', '/proc/cpuinfo']) {
    assert.ok(
      u.some((x) => x.what === what && /darwin/.test(x.reason)),
      `${what}: ${JSON.stringify(u.find((x) => x.what === what))}`,
    );
  }
  assert.ok(
    u.some((x) => x.what === 'available_clocksource' && /not a Linux system \(darwin\)/.test(x.reason)),
    "u.some((x) => x.what === 'available_clocksource' && /not a Linux system \\(darwin\\)/.test(x.reason))",
  );
  assert.ok(
    u.some((x) => x.what === '/dev/kvm' && /darwin/.test(x.reason)),
    "u.some((x) => x.what === '/dev/kvm' && /darwin/.test(x.reason))",
  );
  const f = explain(r);
  assert.equal(f.length, 1);
  assert.equal(f[0]!.topic, 'platform');
  assert.match(renderText(r), /Not read:/);
});

test('live: doctor reads this machine exactly as sysfs shows it, and adjtimex answers', async (t) => {
  if (process.platform !== 'linux') {
    console.log('skip: not Linux');
    t.skip('not Linux');
    return;
  }
  const r = await runDoctor({ measure: false, stealIntervalMs: 20 });
  assert.ok(r.clocksource.current.ok, 'r.clocksource.current.ok');
  assert.equal(r.clocksource.current.value.text, readFileSync('/sys/devices/system/clocksource/clocksource0/current_clocksource', 'utf8'));
  assert.ok(r.ntp.adjtimex.ok, r.ntp.adjtimex.ok ? '' : r.ntp.adjtimex.reason);
  assert.ok(r.steal.interval.ok, 'r.steal.interval.ok');
  assert.equal(r.steal.interval.value.intervalMs, 20);
});

test('live: --json prints exactly one JSON object with findings', (t) => {
  if (process.platform !== 'linux') {
    console.log('skip: not Linux');
    t.skip('not Linux');
    return;
  }
  const p = spawnSync(process.execPath, ['bin/timevisor.js', 'doctor', '--json', '--steal-ms', '10'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  const j = JSON.parse(p.stdout) as {
    schema: string;
    findings: unknown[];
    vdso: { cost: { ok: boolean; value?: { clocks: { clock: string }[] } } };
  };
  assert.equal(j.schema, 'timevisor.doctor/1');
  assert.ok(j.findings.length > 0, 'j.findings.length > 0');
  if (j.vdso.cost.ok)
    assert.ok(
      j.vdso.cost.value!.clocks.some((c) => c.clock === 'CLOCK_MONOTONIC_RAW'),
      "j.vdso.cost.value!.clocks.some((c) => c.clock === 'CLOCK_MONOTONIC_RAW')",
    );
});

test('--root reads a recording; a bad --steal-ms is a one-line input error (exit 2)', () => {
  const ok = spawnSync(process.execPath, ['bin/timevisor.js', 'doctor', '--root', join(FIX, 'qemu-tcg-pc')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /"tsc" \(rating 300\)/);
  const bad = spawnSync(process.execPath, ['bin/timevisor.js', 'doctor', '--steal-ms', 'soon'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--steal-ms/);
});

test('live, as an unprivileged user: root-only inputs are named with "permission denied"', (t) => {
  const runuser = spawnSync('runuser', ['--help']);
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || runuser.error) {
    const why = 'needs Linux, root and runuser(1) to drop to the nobody user';
    console.log(`skip: ${why}`);
    t.skip(why);
    return;
  }
  const p = spawnSync(
    'runuser',
    ['-u', 'nobody', '--', process.execPath, 'bin/timevisor.js', 'doctor', '--json', '--no-measure', '--steal-ms', '0'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (p.status !== 0 && /EACCES|permission/i.test(p.stderr)) {
    const why = `nobody cannot run the project from ${ROOT}`;
    console.log(`skip: ${why}`);
    t.skip(why);
    return;
  }
  assert.equal(p.status, 0, p.stderr);
  const j = JSON.parse(p.stdout) as { unreadable: { what: string; reason: string }[]; clocksource: { current: { ok: boolean } } };
  // /proc/timer_list is mode 0400 on every kernel (kernel/time/timer_list.c proc_create("timer_list", 0400, ...)).
  const tl = j.unreadable.find((u) => u.what === '/proc/timer_list');
  assert.ok(tl && /permission denied/.test(tl.reason), JSON.stringify(j.unreadable));
  assert.equal(j.clocksource.current.ok, true);
});

test('published logs: a watchdog verdict and a TSC marked unstable become risks; the switch is explained', async () => {
  for (const [m, to] of [
    ['bhyve-propolis-guest', 'acpi_pm'],
    ['bare-metal-watchdog-hpet', 'hpet'],
  ] as const) {
    const f = explain(await runDoctor({ source: recordedSource(join(FIX, m)) }));
    const risks = f.filter((x) => x.severity === 'risk').map((x) => x.text);
    assert.ok(
      risks.some((t) => /watchdog found "tsc" skewing/.test(t)),
      m,
    );
    assert.ok(
      risks.some((t) => t.includes(`due to clocksource watchdog); it uses ${to} instead`)),
      m,
    );
    assert.ok(
      f.some((x) => x.topic === 'clocksource' && x.text.includes(`last switch was to "${to}"`)),
      m,
    );
  }
  const hv = explain(await runDoctor({ source: recordedSource(join(FIX, 'hyperv-azure-tsc-unstable')) }));
  assert.ok(
    hv.some((x) => x.severity === 'risk' && /due to running on Hyper-V/.test(x.text)),
    "hv.some((x) => x.severity === 'risk' && /due to running on Hyper-V/.test(x.text))",
  );
  assert.ok(
    hv.some((x) => x.topic === 'hypervisor' && /Microsoft Hyper-V/.test(x.text)),
    "hv.some((x) => x.topic === 'hypervisor' && /Microsoft Hyper-V/.test(x.text))",
  );
});
