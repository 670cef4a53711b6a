// The real guest: Debian's kernel and the lab's initramfs under real QEMU (TCG), booted once and used
// by every experiment in turn (boot, pause with no sync, pause + guest agent, pause + NTP, in-guest
// traces). Skips with a printed reason where QEMU is missing or the Debian packages cannot be fetched.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootLabGuest,
  buildGuestImage,
  GRAPH_FUNCTIONS,
  labBootOn,
  labPauseOn,
  labTraceRtcOn,
  labTraceSettimeOn,
  prepareSync,
  RTC_TRACE_APPEND,
  traceResult,
  which,
  type GuestImage,
  type QemuGuest,
} from '../../src/lab/index.ts';

function skip(t: { skip: (m: string) => void }, reason: string): void {
  console.log(`# lab real-guest tests skipped: ${reason}`);
  t.skip(reason);
}

const near = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} not within ${tol} of ${want}`);

test('real guest under QEMU TCG', { timeout: 600_000 }, async (t) => {
  if (!which('qemu-system-x86_64')) return skip(t, 'qemu-system-x86_64 is not installed (Debian package qemu-system-x86)');
  let image: GuestImage;
  try {
    image = buildGuestImage();
  } catch (e) {
    return skip(t, `guest image not available: ${(e as Error).message} (${(e as { reason?: string }).reason ?? ''})`);
  }
  const guest: QemuGuest = await bootLabGuest({ image, network: true, append: RTC_TRACE_APPEND, lifetimeMs: 540_000 });
  try {
    await t.test('boot: clocksources, clockevent, clocksource lines and the RTC-derived boot offset beside the twins', async () => {
      const r = await labBootOn(guest);
      assert.equal(r.real.current_clocksource, r.model.current_clocksource);
      assert.deepEqual(r.real.available_clocksource.split(' ').sort(), r.model.available_clocksource.split(' ').sort());
      assert.equal(r.real.clockevent_device, r.model.clockevent_device);
      // Clocksource registration lines that do not depend on the TSC calibration are the same text.
      const strip = (l: string) => l.replace(/^\[\s*\d+\.\d+\]\s*/, '');
      for (const name of ['hpet', 'acpi_pm', 'jiffies', 'refined-jiffies']) {
        const line = (log: string[]) => log.map(strip).find((l) => l.startsWith(`clocksource: ${name}: mask`));
        assert.equal(line(r.real.boot_log), line(r.model.boot_log), name);
      }
      // The lines that depend neither on the TSC calibration nor on the time of day come in the same order.
      // Timing-dependent lines a loaded host can add to the real TCG guest's log, which the model does not
      // print: "Long readout interval" (the watchdog timer ran late) and the LAPIC timer calibration
      // disagreeing with the PM timer (apic.c calibrate_APIC_clock; the model has no LAPIC calibration).
      const fixed = (log: string[]) =>
        log
          .map(strip)
          .filter(
            (l) =>
              !/^tsc:|tsc-early|^clocksource: tsc:|rtc_cmos|sched_clock|Calibrating|Reserving HPET|^ACPI: HPET 0x|Long readout interval|^APIC calibration not consistent with PM-Timer|^APIC delta adjusted to PM-Timer/.test(
                l,
              ),
          );
      assert.deepEqual(fixed(r.real.boot_log), fixed(r.model.boot_log));
      assert.ok(
        r.real.boot_log.some((l) => /rtc_cmos \S+: setting system clock to/.test(l)),
        'hctosys line',
      );
      assert.ok(
        r.real.boot_log.some((l) => /Switched to clocksource tsc$/.test(l)),
        'switch to tsc',
      );
      // RTC: 1 s granularity, phase set by QEMU's start, +0.5 s from hctosys → (−1.5, +0.5] plus sampling error.
      assert.ok(
        r.real.boot_offset_s > -1.5 - r.real.sample_rtt_s && r.real.boot_offset_s <= 0.5 + r.real.sample_rtt_s,
        `boot offset ${r.real.boot_offset_s}`,
      );
      // QEMU's RTC arithmetic, fed the measured RTC phase, predicts the offset; only a read within a few ms
      // of an RTC tick may round the other way.
      const c = r.rtc_check;
      assert.ok(c.predicted_boot_offset_s !== null && c.read_to_tick_s !== null, 'RTC phase measured through QMP');
      // tolerance: the clock sample's and the RTC tick's timing uncertainty, plus 10 ms for printk → monotonic
      const tol = 0.01 + r.real.sample_rtt_s + (c.tick_uncertainty_s ?? 0);
      const diff = r.real.boot_offset_s - c.predicted_boot_offset_s;
      const flipPossible = c.read_to_tick_s < tol;
      assert.ok(
        Math.abs(diff) < tol || (flipPossible && Math.abs(Math.abs(diff) - 1) < tol),
        `real ${r.real.boot_offset_s} vs predicted ${c.predicted_boot_offset_s} (tolerance ${tol})`,
      );
    });

    await t.test('trace rtc: the boot-time RTC read, traced from the kernel command line, follows the twin’s call path', async () => {
      const r = await labTraceRtcOn(guest);
      const stacks = r.real.stacks.map((l) => l.replace(/ \d+$/, ''));
      for (const path of r.model.stacks) assert.ok(stacks.includes(path), `missing ${path}`);
    });

    await t.test('pause, no sync: REALTIME falls behind by the pause, MONOTONIC and BOOTTIME see nothing', async () => {
      const r = await labPauseOn(guest, 2, 'none');
      const tol = 0.05 + r.real.sample_rtt_s;
      near(r.real.pause_host_s, 2, 0.2, 'pause length');
      near(r.real.realtime_lag_after_resume_s, r.model.realtime_lag_after_resume_s, tol, 'lag');
      near(r.real.monotonic_advance_during_pause_s, 0, tol, 'monotonic');
      near(r.real.boottime_advance_during_pause_s, 0, tol, 'boottime');
      near(r.real.error_after_sync_s, r.model.error_after_sync_s, tol, 'error');
      assert.equal(r.real.sync_done_at_s, null);
    });

    await t.test('pause + guest agent: guest-set-time from the real qemu-ga puts the clock right', async () => {
      await prepareSync(guest, 'agent');
      const r = await labPauseOn(guest, 2, 'agent');
      const tol = 0.05 + r.real.sample_rtt_s;
      near(r.real.realtime_lag_after_resume_s, 2, tol + 0.2, 'lag');
      near(r.real.error_after_sync_s, 0, tol + 0.05, 'error after guest-set-time'); // + agent delivery over isa-serial
      assert.ok(r.real.sync_done_at_s !== null && r.real.sync_done_at_s < 5);
    });

    await t.test('trace settime: guest-set-time goes through clock_settime → do_settimeofday64, then hwclock -w', async () => {
      const r = await labTraceSettimeOn(guest);
      const stacks = r.real.stacks.map((l) => l.replace(/ \d+$/, ''));
      for (const path of r.model.stacks) assert.ok(stacks.includes(path), `missing ${path}`);
    });

    await t.test('pause + NTP: chronyd in the guest, against a serve-only chronyd on host loopback, steps the clock back', async (tt) => {
      if (process.geteuid && process.geteuid() !== 0) return skip(tt, 'the host chronyd (serve-only, -x) needs root');
      await guest.ok(`trace-start ${GRAPH_FUNCTIONS.ntp.join(' ')}`);
      const prep = await prepareSync(guest, 'ntp'); // host chronyd -x on 127.0.0.1, guest chronyd via 10.0.2.2
      try {
        const r = await labPauseOn(guest, 2, 'ntp');
        const tol = 0.05 + r.real.sample_rtt_s;
        near(r.real.realtime_lag_after_resume_s, 2, tol + 0.2, 'lag');
        near(r.real.monotonic_advance_during_pause_s, 0, tol, 'monotonic');
        assert.ok(
          r.real.notes.some((n) => /chronyd: .*System clock wrong by|chronyd: .*stepped by/.test(n)),
          `chronyd saw the offset: ${r.real.notes.join('; ')}`,
        );
        // chronyd's step estimate comes from NTP samples over slirp: within 0.1 s (its makestep threshold).
        near(r.real.error_after_sync_s, 0, 0.1 + tol, 'error after the step');
        assert.ok(r.real.sync_done_at_s !== null && r.real.sync_done_at_s < 30);
        // chronyd's clock_adjtime calls, the step after the resume among them (trace ntp)
        const trace = traceResult('ntp', await guest.block('trace-dump', 'trace', 60_000));
        const stacks = trace.real.stacks.map((l) => l.replace(/ \d+$/, ''));
        for (const path of trace.model.stacks) assert.ok(stacks.includes(path), `missing ${path}`);
      } finally {
        await prep.close();
      }
    });
  } finally {
    await guest.close();
  }
});
