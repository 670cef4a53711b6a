// The VM's timer devices (src/devices, built per profile by src/vmm) and the guest's reads through them:
// the CMOS read as Linux's mc146818_get_time does it, the HPET counter by MMIO, the PM timer by PIO,
// and what a QEMU pause does to them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/core/engine.ts';
import { NSEC_PER_SEC, type Ns } from '../../src/core/time.ts';
import { HPET_BASE } from '../../src/devices/index.ts';
import {
  bootVm,
  kernelPreset,
  machineProfile,
  mc146818GetTime,
  VirtualMachine,
  VmLifecycle,
  type CmosPortIo,
  type RtcConfig,
} from '../../src/vmm/index.ts';

const EPOCH_S = 1_767_225_600n; // 2026-01-01T00:00:00Z
const US = 1000n;
const MS = 1_000_000n;

function vmAt(profile: string, opts: { epochNs?: Ns; rtc?: RtcConfig } = {}) {
  const e = new Engine();
  const vm = new VirtualMachine({
    profile: machineProfile(profile),
    scheduler: e,
    epochNs: opts.epochNs ?? EPOCH_S * NSEC_PER_SEC,
    ...(opts.rtc ? { rtc: opts.rtc } : {}),
  });
  return { e, vm };
}

// qemu-kvm: a trapped port access costs 2.5 µs, so the k-th CMOS_READ's inb happens (2k+1)·2.5 µs after
// the start: seconds 2.5, A 7.5, seconds 12.5, min…ctrl (7 reads, century included) 17.5…47.5, A 52.5,
// seconds 57.5. UIP is set from 244,140 ns (8/32768 s, truncated) before each update.

test('an RTC read started 100 µs before a second boundary waits for UIP to clear and returns the new second', () => {
  const { e, vm } = vmAt('qemu-kvm');
  e.run(5n * NSEC_PER_SEC - 100n * US);
  const r = vm.platform.readCmos!();
  // first look at A (7.5 µs in) sees UIP, udelay(100) → the second pass starts at 110 µs, past the update
  assert.equal(r.seconds, EPOCH_S + 5n);
  assert.equal(r.uipWaitNs, 100n * US);
  assert.equal(vm.devices.lastRtcRead!.loops, 2);
  assert.equal(vm.devices.lastRtcRead!.elapsedNs, 100n * US + 2n * 2n * 2500n + 12n * 2n * 2500n);
});

test('an RTC read that sees UIP clear twice, 300 µs before the update, keeps the old second without waiting', () => {
  const { e, vm } = vmAt('qemu-kvm');
  e.run(5n * NSEC_PER_SEC - 300n * US);
  const r = vm.platform.readCmos!();
  // UIP rises at 300 - 244.14 = 55.86 µs; the second look at A is at 52.5 µs
  assert.equal(r.seconds, EPOCH_S + 4n);
  assert.equal(r.uipWaitNs, 0n);
  assert.equal(vm.devices.lastRtcRead!.loops, 1);
});

test('UIP rising between the time registers and the second look at A restarts the read (the kernel checks again)', () => {
  const { e, vm } = vmAt('qemu-kvm');
  e.run(5n * NSEC_PER_SEC - 295n * US);
  const r = vm.platform.readCmos!();
  // UIP rises at 50.86 µs: the check at 52.5 fails; passes at 155 and 270 µs still see UIP (update at 295);
  // the fourth pass, from 385 µs, reads the new second
  assert.equal(r.seconds, EPOCH_S + 5n);
  assert.equal(r.uipWaitNs, 300n * US);
  assert.equal(vm.devices.lastRtcRead!.loops, 4);
});

test("QEMU's RTC ticks on the phase of the VM's start (base_rtc = whole second, offset 0); Cloud Hypervisor's and kvmtool's on the host's", () => {
  const epochNs = EPOCH_S * NSEC_PER_SEC + 700n * MS; // the VM starts at …:00.7 UTC
  const at = 500n * MS; // read at …:01.2 UTC
  const read = (profile: string) => {
    const { e, vm } = vmAt(profile, { epochNs });
    e.run(at);
    return vm.platform.readCmos!().seconds;
  };
  assert.equal(read('qemu-kvm'), EPOCH_S); // the RTC shows :00 + 0.5 s
  assert.equal(read('cloud-hypervisor'), EPOCH_S + 1n);
  assert.equal(read('kvmtool'), EPOCH_S + 1n);
});

test("kvmtool's RTC never sets UIP (hw/rtc.c): a read 100 µs before the second returns the old one at once", () => {
  const { e, vm } = vmAt('kvmtool');
  e.run(5n * NSEC_PER_SEC - 100n * US);
  const r = vm.platform.readCmos!();
  assert.equal(r.seconds, EPOCH_S + 4n);
  assert.equal(r.uipWaitNs, 0n);
  // no century byte without an FADT: 11 reads of 2 accesses
  assert.equal(vm.devices.lastRtcRead!.elapsedNs, 11n * 2n * 2500n);
});

test('binary mode (register B DM) is read as binary, BCD otherwise', () => {
  const { e, vm } = vmAt('qemu-kvm');
  e.run(3723n * NSEC_PER_SEC + 10n * MS); // 01:02:03 on 2026-01-01
  const rtc = vm.devices.rtc!;
  const reg = (i: number) => (rtc.portWrite(0x70, 1, i), rtc.portRead(0x71, 1));
  assert.equal(reg(0x04), 0x01);
  assert.equal(reg(0x00), 0x03);
  assert.equal(vm.platform.readCmos!().seconds, EPOCH_S + 3723n);
  rtc.portWrite(0x70, 1, 0x0b);
  rtc.portWrite(0x71, 1, 0x06); // DM | 24H
  e.run(e.now + NSEC_PER_SEC); // the registers are rewritten in binary at the next read
  assert.equal(reg(0x09), 26); // year 26 in binary, not 0x26
  assert.equal(vm.platform.readCmos!().seconds, EPOCH_S + 3724n);
});

test('an RTC whose base is a given date shows that date in the guest (boot wall clock and the rtc_cmos line)', () => {
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile('qemu-tcg'),
    kernel: kernelPreset('distro'),
    scheduler: e,
    epochNs: EPOCH_S * NSEC_PER_SEC,
    rtc: { base: '2030-06-15T12:00:00' },
  });
  e.run(5n * NSEC_PER_SEC);
  const base = BigInt(Date.UTC(2030, 5, 15, 12, 0, 0) / 1000);
  const g = b.guest;
  // no kvm-clock under TCG: timekeeping_init reads the CMOS 0.9 + 0.248 s after creation (kernel entry
  // plus its boot step), in the RTC's second 1 since the base
  assert.equal(g.wallClockSource, 'cmos');
  assert.equal(g.bootWallNs, (base + 1n) * NSEC_PER_SEC);
  // rtc_hctosys reads it again at late_initcall (0.9 + 0.429 s), still second 1
  const line = g.bootLog().find((l) => l.includes('setting system clock'));
  assert.equal(line, `rtc_cmos 00:04: setting system clock to 2030-06-15T12:00:01 UTC (${base + 1n})`);
});

test('-rtc options are refused for VMMs whose RTC always shows host UTC', () => {
  assert.throws(() => vmAt('kvmtool', { rtc: { base: '2030-01-01' } }), /QEMU/);
});

test('the guest reads the HPET main counter by MMIO at 0xfed000f0 and the PM timer by PIO at 0x608: the device registers', () => {
  const { e, vm } = vmAt('qemu-kvm');
  e.run(2n * NSEC_PER_SEC + 123_456n);
  const h0 = vm.platform.readHpet!();
  assert.equal(h0, vm.devices.mmio.read(HPET_BASE + 0xf0n, 4));
  assert.equal(h0, vm.devices.hpet!.counter() & 0xffff_ffffn);
  assert.equal(h0, 0n); // hpet_restart_counter zeroed it at this first read
  e.run(e.now + NSEC_PER_SEC);
  assert.equal(vm.platform.readHpet!(), 100_000_000n); // 1 s of a 100 MHz counter
  const pm = vm.platform.readPmTimer!();
  assert.equal(pm, BigInt(vm.devices.ports.read(0x608, 4)));
  assert.equal(Number(pm), vm.devices.acpiPm!.counter());
  // 3.000123456 s of 3,579,545 Hz since VM creation, 24 bits: floor(3000123456 · 3579545 / 1e9) & 0xffffff
  assert.equal(pm, ((3_000_123_456n * 3_579_545n) / NSEC_PER_SEC) & 0xff_ffffn);
});

// Pause and resume are scheduled up front, as the world simulation does, so the resume runs before any
// guest work that waited for it.
function pausedBoot(profile: string, pauseAt: Ns, resumeAt: Ns, rtc?: RtcConfig) {
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile(profile),
    kernel: kernelPreset('distro'),
    scheduler: e,
    epochNs: EPOCH_S * NSEC_PER_SEC,
    ...(rtc ? { rtc } : {}),
  });
  const lc = new VmLifecycle(b);
  e.at(pauseAt, () => lc.pause(resumeAt));
  e.at(resumeAt, () => lc.resume());
  return { e, b, p: b.vm.platform };
}

test('a QEMU pause stops HPET and PM timer (QEMU_CLOCK_VIRTUAL); the clock=host RTC runs on', () => {
  const { e, p } = pausedBoot('qemu-kvm', 4n * NSEC_PER_SEC, 14n * NSEC_PER_SEC);
  e.run(3n * NSEC_PER_SEC);
  const h0 = p.readHpet!();
  const pm0 = p.readPmTimer!();
  e.run(13n * NSEC_PER_SEC);
  assert.equal(p.readHpet!(), h0 + 100_000_000n); // only the running second 3 → 4 s counted
  assert.equal(p.readPmTimer!(), (4n * 3_579_545n) & 0xff_ffffn); // virtual time stands at 4 s
  e.run(15n * NSEC_PER_SEC);
  assert.equal(p.readHpet!(), h0 + 200_000_000n);
  // PM timer: virtual time 3 s → 5 s, 24-bit wrap
  assert.equal((p.readPmTimer!() - pm0) & 0xff_ffffn, (5n * 3_579_545n - 3n * 3_579_545n) & 0xff_ffffn);
  // the RTC (clock=host) saw all 15 s
  assert.equal(p.readCmos!().seconds, EPOCH_S + 15n);
});

test('with -rtc clock=vm the RTC stops during a QEMU pause too', () => {
  const { e, p } = pausedBoot('qemu-kvm', 4n * NSEC_PER_SEC + 500n * MS, 14n * NSEC_PER_SEC + 500n * MS, { clock: 'vm' });
  e.run(15n * NSEC_PER_SEC + 500n * MS);
  assert.equal(p.readCmos!().seconds, EPOCH_S + 5n); // 5.5 s of VM time
});

test("Cloud Hypervisor's PM timer counts host time: a pause does not stop it", () => {
  const { e, b, p } = pausedBoot('cloud-hypervisor', 2n * NSEC_PER_SEC, 12n * NSEC_PER_SEC);
  e.run(12n * NSEC_PER_SEC + 1n);
  assert.equal(p.readPmTimer!(), (((12n * NSEC_PER_SEC + 1n) * 3_579_545n) / NSEC_PER_SEC) & 0xff_ffffn);
  assert.equal(b.vm.devices.pmTimerPort, 0x608);
  assert.equal(b.vm.devices.ports.read(0x600, 4), 0xffffffff); // only the timer register is there
});

test('mc146818_get_time gives up after the timeout with 100 µs rechecks (an RTC stuck in UIP)', () => {
  let t = 0n;
  const io: CmosPortIo = {
    outb: () => {},
    inb: () => 0x80, // every register reads UIP set
    advance: (ns) => void (t += ns),
    accessNs: 0n,
  };
  const r = mc146818GetTime(io, { timeoutMs: 10 });
  assert.equal(r.ok, false);
  assert.equal(r.seconds, 0n);
  assert.equal(r.loops, 100); // i / 10 < 10
  assert.equal(r.uipWaitNs, 10n * MS);
  assert.equal(t, 10n * MS);
});

test('profiles get the devices their VMM has: Firecracker a PIT only, kvmtool no port 0x61', () => {
  const fc = vmAt('firecracker').vm.devices;
  assert.ok(fc.pit && fc.speaker && !fc.rtc && !fc.hpet && !fc.acpiPm);
  assert.equal(vmAt('firecracker').vm.platform.readCmos, undefined);
  const kt = vmAt('kvmtool').vm.devices;
  assert.ok(kt.pit && !kt.speaker && kt.rtc && !kt.hpet && !kt.acpiPm);
  assert.equal(kt.ports.read(0x61, 1), 0xff); // unhandled port
  const q = vmAt('qemu-kvm').vm.devices;
  assert.ok(q.pit && q.speaker && q.rtc && q.hpet && q.acpiPm);
});

test("the PIT: QEMU's reset state runs channel 0 at 18.2 Hz until the guest's i8253 driver stops it; KVM's own reset starts no timer", () => {
  const q = vmAt('qemu-kvm');
  q.e.run(100n * MS);
  const s0 = q.vm.devices.pit!.saveState().kvm!;
  assert.equal(s0.isPeriodic, true);
  assert.equal(s0.period, String((65536n * NSEC_PER_SEC) / 1_193_182n)); // 0x10000 PIT ticks
  assert.notEqual(s0.expires, null);
  const fc = vmAt('firecracker');
  fc.e.run(100n * MS);
  assert.equal(fc.vm.devices.pit!.saveState().kvm!.expires, null);
  // booted: clockevent_i8253_disable at kernel entry (0.35 s) leaves a 0x10000-tick one-shot, spent by 0.41 s
  const e = new Engine();
  const b = bootVm({ profile: machineProfile('qemu-kvm'), kernel: kernelPreset('distro'), scheduler: e });
  e.run(2n * NSEC_PER_SEC);
  const s1 = b.vm.devices.pit!.saveState();
  assert.equal(s1.channels[0]!.mode, 0);
  assert.equal(s1.kvm!.isPeriodic, false);
  assert.equal(s1.kvm!.expires, null);
});

test('a read at the very ns of a QEMU RTC update, before the update timer has run, still reads the new second', () => {
  const e = new Engine();
  let r: { seconds: bigint } | null = null;
  let vm: VirtualMachine | null = null;
  e.at(NSEC_PER_SEC, () => (r = vm!.platform.readCmos!())); // queued before the RTC arms its update timer
  vm = new VirtualMachine({ profile: machineProfile('qemu-kvm'), scheduler: e, epochNs: EPOCH_S * NSEC_PER_SEC });
  e.run(2n * NSEC_PER_SEC);
  assert.equal(r!.seconds, EPOCH_S + 1n);
});

test("a host whose CLOCK_REALTIME is 2.5 s ahead gives a QEMU guest an RTC 2.5 s ahead (base=utc reads the host's clock)", () => {
  const e = new Engine();
  const vm = new VirtualMachine({
    profile: machineProfile('qemu-kvm'),
    scheduler: e,
    epochNs: EPOCH_S * NSEC_PER_SEC,
    hostRealtime: () => EPOCH_S * NSEC_PER_SEC + 2_500n * MS + e.now,
  });
  e.run(600n * MS);
  // created at host time :02.5 → base :02, phase 0 at creation; 0.6 s later the RTC shows :02
  assert.equal(vm.platform.readCmos!().seconds, EPOCH_S + 2n);
  e.run(1_500n * MS);
  assert.equal(vm.platform.readCmos!().seconds, EPOCH_S + 3n);
});
