// PVM guests ("Hypervisor detected: PVM"): the machines this project runs on. Their kernel takes the TSC
// frequency from MSR 0x4b564d13 (pvm_get_tsc_khz: the host's tsc_khz, exactly) and forces TSC_KNOWN_FREQ
// and TSC_RELIABLE; the doctor twins them with the firecracker-pvm profile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Engine } from '../../src/core/engine.ts';
import { NSEC_PER_SEC } from '../../src/core/time.ts';
import { got } from '../../src/doctor/source.ts';
import { runDoctor } from '../../src/doctor/doctor.ts';
import { explain } from '../../src/doctor/explain.ts';
import { recordedSource } from '../../src/doctor/source.ts';
import { replayScenario } from '../../src/doctor/replay.ts';
import { compareTwin, guessProfile, machineView, planTwin } from '../../src/doctor/twin.ts';
import { pvclockTscKhz } from '../../src/guest/kvmclock.ts';
import { kvmGetTimeScale } from '../../src/hypervisor/timescale.ts';
import { bootVm, guestReport, kernelPreset, machineProfile } from '../../src/vmm/index.ts';
import { parseScenarioText } from '../../src/world/scenario.ts';

const FIX = join(import.meta.dirname, '../fixtures/doctor');
const quoted = () => runDoctor({ source: recordedSource(join(FIX, 'pvm-guest-quoted')) });

function boot(profile: string, tscKhz: number, invariantTsc = true, cmdline = '') {
  const engine = new Engine();
  const b = bootVm({
    profile: machineProfile(profile),
    kernel: kernelPreset('distro'),
    cmdline,
    host: { tscKhz, ppm: 0, invariantTsc },
    scheduler: engine,
  });
  engine.run(b.kernelEntryAt + 3n * NSEC_PER_SEC);
  const r = guestReport(b);
  b.vm.destroy();
  return r;
}

test('a PVM guest is twinned with firecracker-pvm, at the TSC kHz it printed', async () => {
  const r = await quoted();
  assert.equal(r.hypervisor.ok && r.hypervisor.value.name, 'PVM');
  const g = guessProfile(r);
  assert.equal(g.profile, 'firecracker-pvm');
  assert.match(g.gap!, /VMM could not be identified/); // the two quoted lines do not show Firecracker's ACPI OEM
  const plan = planTwin(r);
  const s = parseScenarioText(plan.yaml, 'twin');
  assert.equal(s.vms[0]!.profile, 'firecracker-pvm');
  assert.equal(s.hosts[0]!.tsc.freq_khz, 2096007);
  assert.match(plan.choices.find((c) => c.key === 'hosts[0].tsc.freq_khz')!.why, /MSR 0x4b564d13/);
  assert.ok(!s.vms[0]!.cmdline.includes('no-kvmclock'), 'nothing says kvm-clock was missing');
});

test('the twin prints both quoted lines of the PVM machine exactly', async () => {
  const rep = replayScenario(planTwin(await quoted()).scenario);
  assert.ok(rep.ok, rep.ok ? '' : rep.reason);
  assert.ok(rep.value.boot_log.includes('Hypervisor detected: PVM'), rep.value.boot_log.join('\n'));
  assert.ok(rep.value.boot_log.includes('tsc: Detected 2096.007 MHz processor'), rep.value.boot_log.join('\n'));
});

test('under KVM the same host prints 2096.006: kvm-clock reports the TSC rate through the pvclock round trip', () => {
  // pvclock_tsc_khz = (10^6 << 32) / tsc_to_system_mul, shifted back: with tsc_shift -1 (1-4 GHz) the
  // result is doubled, so no odd kHz near 2 GHz can come from kvm-clock (arch/x86/kernel/pvclock.c).
  for (let khz = 2_095_990; khz <= 2_096_010; khz++) {
    const ts = kvmGetTimeScale(1_000_000_000n, BigInt(khz) * 1000n);
    assert.equal(ts.shift, -1);
    assert.equal(pvclockTscKhz({ tscToSystemMul: ts.mul, tscShift: ts.shift }) % 2, 0, `${khz} kHz`);
  }
  const kvm = boot('firecracker', 2_096_007);
  assert.ok(kvm.boot_log.includes('Hypervisor detected: KVM'), "kvm.boot_log.includes('Hypervisor detected: KVM')");
  assert.ok(kvm.boot_log.includes('tsc: Detected 2096.006 MHz processor'), kvm.boot_log.join('\n'));
  const pvm = boot('firecracker-pvm', 2_096_007);
  assert.ok(pvm.boot_log.includes('tsc: Detected 2096.007 MHz processor'), pvm.boot_log.join('\n'));
  // TSC_KNOWN_FREQ: no refinement, tsc registered at device_initcall; with invariant TSC it wins over kvm-clock (299)
  assert.equal(pvm.available_clocksource, 'tsc kvm-clock \n');
  assert.equal(pvm.current_clocksource, 'tsc\n');
  assert.ok(
    !pvm.boot_log.some((l) => /Refined TSC|Fast TSC calibration/.test(l)),
    '!pvm.boot_log.some((l) => /Refined TSC|Fast TSC calibration/.test(l))',
  );
});

test('TSC_RELIABLE: without invariant TSC a KVM guest marks the TSC unsynchronized, a PVM guest keeps it', () => {
  const kvm = boot('firecracker', 2_096_007, false);
  assert.ok(
    kvm.boot_log.includes('tsc: Marking TSC unstable due to TSCs unsynchronized'),
    "kvm.boot_log.includes('tsc: Marking TSC unstable due to TSCs unsynchronized')",
  );
  assert.equal(kvm.available_clocksource, 'kvm-clock \n');
  const pvm = boot('firecracker-pvm', 2_096_007, false);
  assert.ok(!pvm.boot_log.some((l) => /unstable/.test(l)), pvm.boot_log.join('\n'));
  // kvm-clock keeps rating 400 without a constant TSC, so it stays current; tsc is registered beside it
  assert.equal(pvm.available_clocksource, 'kvm-clock tsc \n');
  assert.equal(pvm.current_clocksource, 'kvm-clock\n');
});

test('a PVM guest whose sysfs shows no kvm-clock is twinned with no-kvmclock, and the twin shows the same sysfs', async () => {
  const r = await quoted();
  // the quoted machine's sysfs was not recorded: here it is given as a PVM guest without kvm-clock would show it
  const noKvmclock = {
    ...r,
    clocksource: { available: got({ text: 'tsc \n', names: ['tsc'] }), current: got({ text: 'tsc\n', names: ['tsc'] }) },
  };
  const plan = planTwin(noKvmclock);
  const s = parseScenarioText(plan.yaml, 'twin');
  assert.match(s.vms[0]!.cmdline, /(^| )no-kvmclock$/);
  assert.ok(
    plan.gaps.some((g) => /did not register kvm-clock/.test(g)),
    'plan.gaps.some((g) => /did not register kvm-clock/.test(g))',
  );
  const rep = replayScenario(plan.scenario);
  assert.ok(rep.ok, rep.ok ? '' : rep.reason);
  const c = compareTwin(machineView(noKvmclock), rep.value);
  assert.ok(c.matched.includes('available_clocksource') && c.matched.includes('current_clocksource'), JSON.stringify(c.differences));
  assert.ok(!rep.value.boot_log.some((l) => l.startsWith('kvm-clock')), "!rep.value.boot_log.some((l) => l.startsWith('kvm-clock'))");
});

test('the recorded KVM guest (this workplace, kvm_pvm loaded as a host module) is not taken for a PVM guest', async () => {
  const r = await runDoctor({ source: recordedSource(join(FIX, 'firecracker-pvm')) });
  assert.equal(r.hypervisor.ok && r.hypervisor.value.name, 'KVM');
  assert.equal(guessProfile(r).profile, 'firecracker');
});

test('doctor explains where a PVM guest gets its TSC frequency', async () => {
  const f = explain(await quoted());
  assert.ok(
    f.some((x) => x.topic === 'hypervisor' && /MSR 0x4b564d13/.test(x.text) && /TSC_RELIABLE/.test(x.text)),
    JSON.stringify(f.filter((x) => x.topic === 'hypervisor')),
  );
  const kvm = explain(await runDoctor({ source: recordedSource(join(FIX, 'firecracker-pvm')) }));
  assert.ok(!kvm.some((x) => /MSR 0x4b564d13/.test(x.text)), 'not said of a KVM guest');
});
