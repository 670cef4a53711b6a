// apic_needs_pit()/use_pit() (arch/x86/kernel/apic/apic.c, arch/x86/kernel/i8253.c): when Linux
// registers the PIT clockevent at all, and so what the broadcast device is. Expected values follow
// the kernel's conditions in order: unknown frequencies, no APIC, no ARAT, TSC deadline, noapictimer,
// a known lapic_timer_period.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apicNeedsPit, setupTick, usePit } from '../../src/guest/clockevents.ts';
import { parseCmdline } from '../../src/guest/cmdline.ts';
import type { GuestPlatform } from '../../src/guest/platform.ts';
import { KERNEL_PRESETS } from '../../src/vmm/kernels.ts';
import { runGuest } from '../../src/cli/commands/guest.ts';

const k = KERNEL_PRESETS.distro!;
const t = (c = '') => parseCmdline(c).time;
const known = { tscKhz: 2_596_136, cpuKhz: 2_596_136 };
function platform(cpuid: Partial<GuestPlatform['cpuid']>, lapic = true): GuestPlatform {
  return {
    cpuid: {
      vendor: 'amd',
      tsc: true,
      tscDeadlineTimer: true,
      hypervisor: true,
      invariantTsc: true,
      tscAdjust: true,
      arat: true,
      ...cpuid,
    },
    devices: { pit: { speakerPort: true }, hpet: null, acpi: null, rtc: false, lapic },
    vcpus: 1,
    rdtsc: () => 0n,
    tscTrueHz: () => 2_596_136_000,
    pitRateRatio: 1,
    pioReadNs: 2500,
    mmioReadNs: 6000,
  };
}

test('ARAT and the TSC-deadline timer with known frequencies: no PIT clockevent, no broadcast device', () => {
  const p = platform({});
  assert.equal(apicNeedsPit(p, k, t(), known), false);
  const tick = setupTick(p, k, t(), false, true, known);
  assert.equal(tick.device?.name, 'lapic-deadline');
  assert.equal(tick.broadcast, null);
});

test("each of apic_needs_pit()'s reasons keeps the PIT", () => {
  assert.equal(apicNeedsPit(platform({}), k, t(), { tscKhz: 0, cpuKhz: 0 }), true, 'frequencies unknown');
  assert.equal(apicNeedsPit(platform({}, false), k, t(), known), true, 'no local APIC');
  assert.equal(apicNeedsPit(platform({}), k, t('nolapic'), known), true, 'APIC disabled');
  assert.equal(apicNeedsPit(platform({ arat: false }), k, t(), known), true, 'no ARAT, even with TSC deadline');
  assert.equal(apicNeedsPit(platform({ arat: undefined }), k, t(), known), true, 'ARAT not offered');
  assert.equal(apicNeedsPit(platform({ tscDeadlineTimer: false }), k, t(), known), true, 'APIC timer frequency unknown');
  assert.equal(
    apicNeedsPit(platform({ tscDeadlineTimer: false }), k, t(), { ...known, lapicTimerPeriod: 100_000 }),
    false,
    'APIC timer period from CPUID 0x15',
  );
  assert.equal(
    apicNeedsPit(platform({ tscDeadlineTimer: false }), k, t('noapictimer'), { ...known, lapicTimerPeriod: 100_000 }),
    true,
    'noapictimer',
  );
});

test('without a TSC (or CONFIG_X86_TSC) use_pit() always sets the PIT up', () => {
  assert.equal(usePit(platform({ tsc: false }), k, t(), known), true);
  assert.equal(usePit(platform({}), { ...k, x86Tsc: false }, t(), known), true);
  assert.equal(usePit(platform({}), k, t(), known), false);
});

test("profiles: KVM guests offer ARAT and get no broadcast device; QEMU TCG's qemu64 has no ARAT", () => {
  for (const profile of ['firecracker', 'cloud-hypervisor', 'kvmtool']) {
    const r = runGuest({ profile, kernel: 'distro', cmdline: '', host: {} });
    assert.equal(r.broadcast_device, '\n', profile);
    assert.equal(r.clockevent_device, 'lapic-deadline\n', profile);
  }
  // the recorded Debian 12 TCG guest (test/fixtures/doctor/qemu-tcg-pc) shows hpet as broadcast device
  assert.equal(runGuest({ profile: 'qemu-tcg', kernel: 'debian12', cmdline: '', host: {} }).broadcast_device, 'hpet\n');
  // hpet=disable leaves the PIT, which apic_needs_pit() keeps for lack of ARAT
  assert.equal(runGuest({ profile: 'qemu-tcg', kernel: 'debian12', cmdline: 'hpet=disable', host: {} }).broadcast_device, 'pit\n');
  // a host without the TSC-deadline timer: the APIC timer must be calibrated against the PIT
  assert.equal(runGuest({ profile: 'firecracker', kernel: 'distro', cmdline: '', host: { tscDeadline: false } }).broadcast_device, 'pit\n');
  // kvmtool's 32-bit Yocto guest cannot calibrate the TSC: the PIT stays and drives its periodic tick
  assert.equal(runGuest({ profile: 'kvmtool', kernel: 'yocto-qemux86', cmdline: '', host: {} }).broadcast_device, 'pit\n');
});

test('check_timer() prints ..TIMER only with a global clockevent and the IO-APIC in use', () => {
  const timer = (profile: string, cmdline = '', kernel = 'distro') =>
    runGuest({ profile, kernel, cmdline, host: {} }).boot_log.filter((l) => l.startsWith('..TIMER'));
  // the recorded Debian 12 TCG guest's line (test/fixtures/doctor/qemu-tcg-pc): IRQ0 on pin 2 by QEMU's MADT override
  assert.deepEqual(timer('qemu-tcg', '', 'debian12'), ['..TIMER: vector=0x30 apic1=0 pin1=2 apic2=-1 pin2=-1']);
  assert.deepEqual(timer('qemu-kvm'), ['..TIMER: vector=0x30 apic1=0 pin1=2 apic2=-1 pin2=-1'], 'HPET is the global clockevent');
  assert.deepEqual(timer('qemu-tcg', 'noapic', 'debian12'), [], 'noapic: no IO-APIC setup');
  assert.deepEqual(timer('firecracker'), [], 'no global clockevent (this machine prints none)');
});
