// The simulated twins of the lab's experiments, for the machine the lab runs: QEMU `-machine pc`, TCG,
// `-cpu qemu64`, one vCPU. Boot uses the guest model (vmm profile `qemu-tcg`). The vmm's pause/resume
// lifecycle models KVM VMMs only, so the TCG pause semantics, and the exact RTC arithmetic of QEMU's
// mc146818 (which the guest model simplifies), are written out here, small and explicit, each with its
// source. docs/fidelity.md (## lab) lists every difference measured against the real guest.
import type { Ns } from '../core/index.ts';
import { pnpacpiDeviceName, type GuestDevices } from '../guest/index.ts';
import { guestReport } from '../vmm/index.ts';
import { scenarioForGuest, World } from '../world/index.ts';

const NS = 1_000_000_000n;

// ---------------------------------------------------------------------------------------------- boot

export interface BootSide {
  boot_log: string[];
  available_clocksource: string;
  current_clocksource: string;
  clockevent_device: string;
  boot_offset_s: number;
}

/**
 * The RTC arithmetic that sets the boot wall clock.
 * - QEMU hw/rtc/mc146818rtc.c: rtc_set_date_from_host() seeds base_rtc = the host's time in whole seconds
 *   and last_update = the host clock (rtc_clock = host) in ns at the same instant; get_guest_rtc_ns() is
 *   base_rtc·10⁹ + (now − last_update), read in whole seconds. So the RTC ticks at last_update + k s, and
 *   at each tick it shows floor(host time at that tick).
 * - Linux drivers/rtc/class.c rtc_hctosys(): tv_sec = RTC seconds, tv_nsec = NSEC_PER_SEC >> 1 (the
 *   "best guess is to add 0.5s" for the truncated value), then do_settimeofday64().
 * `rtcTickHostNs` is any host instant at which the RTC's seconds ticked over (QEMU start, or a tick seen
 * through QMP). Returns the guest's REALTIME − host REALTIME right after hctosys, ns: in (−1.5 s, +0.5 s].
 */
export function rtcBootOffsetNs(rtcTickHostNs: Ns, hostAtReadNs: Ns): Ns {
  const floorDiv = (a: bigint, b: bigint) => (a >= 0n ? a / b : -((-a + b - 1n) / b));
  const shown = floorDiv(rtcTickHostNs, NS) + floorDiv(hostAtReadNs - rtcTickHostNs, NS);
  return shown * NS + NS / 2n - hostAtReadNs;
}

/** Distance from a host instant to the nearest RTC tick, ns (how close the boot read came to a flip). */
export function distanceToRtcTickNs(rtcTickHostNs: Ns, hostNs: Ns): Ns {
  const r = (((hostNs - rtcTickHostNs) % NS) + NS) % NS;
  return r < NS - r ? r : NS - r;
}

// ------------------------------------------------------------------------------ the lab's device set

/** The ISA devices a `qemu-system-x86_64 -machine pc` command line creates that describe themselves in ACPI. */
export interface QemuPcIsaSet {
  /** `-serial` backends: serial_hds_isa_init makes COM1, COM2, … from them. */
  serials: number;
  /** `-device isa-serial,…`, created after the board in command-line order. */
  isaSerialDevices: number;
  /** `-m` in MiB. */
  memoryMiB: number;
}

/** Read the ISA device set from QEMU's arguments (the ones QemuGuest ran); other devices are not counted. */
export function qemuPcIsaSet(args: readonly string[]): QemuPcIsaSet {
  const set: QemuPcIsaSet = { serials: 0, isaSerialDevices: 0, memoryMiB: 128 };
  for (let i = 0; i < args.length; i++) {
    const [a, v] = [args[i], args[i + 1] ?? ''];
    if (a === '-serial' && v !== 'none') set.serials++;
    else if (a === '-device' && /^isa-serial(,|$)/.test(v)) set.isaSerialDevices++;
    else if (a === '-m') set.memoryMiB = Number.parseInt(v, 10);
  }
  return set;
}

/**
 * The ACPI PNP devices of QEMU 7.2's pc machine in the order Linux's pnpacpi numbers them.
 * - hw/i386/acpi-build.c build_isa_devices_aml → isa_build_aml → qbus_build_aml walks the ISA bus's
 *   children, and hw/core/qdev.c bus_add_child inserts each new child at the head: newest first.
 * - Creation order: hw/i386/pc.c pc_basic_device_init makes the RTC (mc146818_rtc_init; the PIT, speaker
 *   and DMA have no AML), then pc_superio_init the serial ports (serial_hds_isa_init: COM1, COM2, …), the
 *   floppy controller (pc_piix.c passes create_fdctrl = true), the i8042 (two ACPI devices, KBD and MOU);
 *   `-device` ISA devices come after the board.
 * - drivers/pnp/pnpacpi/core.c numbers the devices in namespace order (ACPICA keeps AML order); the HPET
 *   (\_SB.HPET, PNP0103) is not an ACPI PNP device (drivers/acpi/acpi_pnp.c), nor is the PCI host bridge.
 * The real guest confirms it: `00:00: ttyS1` (the -device isa-serial), `pnp 00:03: [dma 2]` (FDC),
 * `00:04: ttyS0`, `rtc_cmos 00:05`, "found 6 devices".
 */
export function qemuPcPnpDevices(set: QemuPcIsaSet): string[] {
  const created: string[][] = [['RTC']];
  for (let i = 0; i < set.serials; i++) created.push([`COM${i + 1}`]);
  created.push(['FDC0'], ['KBD', 'MOU']);
  for (let i = 0; i < set.isaSerialDevices; i++) created.push([`COM${set.serials + i + 1}`]);
  return created.reverse().flat();
}

/**
 * Where SeaBIOS put QEMU 7.2's HPET table. QEMU (hw/i386/acpi-build.c acpi_build) lays the tables out as
 * FACS (64 bytes), DSDT, FACP (0x74), APIC (0x78 for one CPU), HPET (0x38), WAET; SeaBIOS allocates the blob
 * in its high zone, the top 128 KiB of RAM below 4 GiB (e820 reserved 0x0ffe0000-0x0fffffff at -m 256).
 * The DSDT is 0x18f1 bytes with the basic device set (one -serial; the HPET table at 0x0FFE1A1D in
 * test/fixtures/doctor/qemu-tcg-pc) and each further serial port adds its 53-byte Device (COMn) { _HID,
 * _UID, _STA, _CRS { IO, IRQNoFlags } } (hw/char/serial-isa.c serial_isa_build_aml): 0x0FFE1A52 with the
 * lab's second port, as the lab's guest printed. Measured at -m 256 only.
 */
export function qemuPcHpetTableAddress(set: QemuPcIsaSet): number {
  const serialPorts = set.serials + set.isaSerialDevices;
  const dsdt = 0x18f1 + 53 * (serialPorts - 1);
  return set.memoryMiB * 0x10_0000 - 0x2_0000 + 0x40 + dsdt + 0x74 + 0x78;
}

/** The qemu-tcg profile's devices as this command line gives them to the guest. */
export function qemuPcGuestDevices(base: GuestDevices, args: readonly string[]): GuestDevices {
  const set = qemuPcIsaSet(args);
  const pnp = qemuPcPnpDevices(set);
  const rtcPnpName = pnpacpiDeviceName(pnp.indexOf('RTC'));
  return {
    ...base,
    rtcPnpName,
    rtcCmos: {
      pnpName: rtcPnpName,
      // hw/i386/acpi-build.c (FADT): ACPI_FADT_F_RTC_S4 set, century register RTC_CENTURY (0x32), no
      // day/month alarm registers; 242 bytes of NVRAM as the real guest printed (CMOS 256 − NVRAM_OFFSET 14)
      s4RtcWake: true,
      century: true,
      dayAlarm: false,
      monthAlarm: false,
      nvramBytes: 242,
    },
    acpi: base.acpi && {
      ...base.acpi,
      // hw/acpi/aml-build.c build_header: OEM "BOCHS ", table id "BXPC", creator "BXPC", revisions 1
      hpetTable: {
        address: qemuPcHpetTableAddress(set),
        length: 0x38,
        revision: 1,
        oemId: 'BOCHS',
        oemTableId: 'BXPC',
        oemRevision: 1,
        creatorId: 'BXPC',
        creatorRevision: 1,
      },
    },
  };
}

// ------------------------------------------------------------------------------------------ the model

export interface ModelBootOptions {
  /** The host ns at which QEMU started (the RTC's base and phase). */
  hostStartNs: Ns;
  /** QEMU's arguments: the device set the guest model is given. */
  qemuArgs: readonly string[];
  /** This machine's TSC kHz: under TCG the guest's TSC is the host's rdtsc (cpu_get_host_ticks). */
  hostTscKhz?: number;
  settleNs?: Ns;
}

/**
 * The guest model's prediction for this machine: the vmm's `qemu-tcg` profile (QEMU pc, TCG, qemu64) with
 * the devices this QEMU command line created, booting the `debian12` kernel preset (Linux 6.1, as the lab's
 * Debian kernel) on this machine's TSC, with the model's host clock starting at the host time QEMU was
 * started. Boot log lines lose their printk stamps so they can be compared with the real ones by text.
 */
export function modelBootQemuTcg(o: ModelBootOptions): BootSide & { boot_wall_clock_source: string; hctosys_host_s: number | null } {
  // the qemu-tcg/debian12 guest through the scenario resolver and the world, as every command boots its VMs;
  // then what a scenario cannot say: the device set this QEMU command line made, the BogoMIPS line (the lab
  // compares every clock line the real guest prints), and the host clock starting at QEMU's start to the ns
  const resolved = scenarioForGuest({
    profile: 'qemu-tcg',
    kernel: 'debian12',
    cmdline: '',
    host: o.hostTscKhz ? { tscKhz: o.hostTscKhz } : {},
  });
  const base = resolved.vms[0]!;
  const vm = {
    ...base,
    profile: { ...base.profile, devices: qemuPcGuestDevices(base.profile.devices, o.qemuArgs) },
    kernel: { ...base.kernel, printCalibrateDelay: true },
  };
  const world = new World({ ...resolved, epochNs: o.hostStartNs, vms: [vm] });
  const engine = world.engine;
  const b = world.bootVm(vm);
  try {
    engine.run(b.kernelEntryAt + (o.settleNs ?? 3n * NS));
    const r = guestReport(b);
    const hostNow = o.hostStartNs + engine.now;
    const hctosys = b.guest.log.find((l) => /setting system clock/.test(l.line));
    return {
      boot_log: r.boot_log,
      available_clocksource: r.available_clocksource,
      current_clocksource: r.current_clocksource,
      clockevent_device: r.clockevent_device,
      boot_offset_s: Number(b.guest.timekeeper.get('realtime') - hostNow) / 1e9,
      boot_wall_clock_source: r.wall_clock_source,
      // host seconds from QEMU's start to the model's hctosys read
      hctosys_host_s: hctosys ? Number(b.kernelEntryAt + hctosys.t) / 1e9 : null,
    };
  } finally {
    b.vm.destroy();
  }
}

// --------------------------------------------------------------------------------------------- pause

export type SyncMode = 'none' | 'agent' | 'ntp';

export interface PauseSide {
  realtime_lag_after_resume_s: number;
  monotonic_advance_during_pause_s: number;
  boottime_advance_during_pause_s: number;
  error_after_sync_s: number;
  sync_done_at_s: number | null;
}

export interface PauseModelInput {
  /** Host time between the STOP and RESUME events, ns. */
  pauseNs: Ns;
  /** Guest REALTIME − host REALTIME just before the pause, ns (the twin starts from the real state). */
  offsetBeforeNs: Ns;
  sync: SyncMode;
  /** chronyd poll interval in the guest, s (the lab configures minpoll = maxpoll = −1: 0.5 s). */
  ntpPollS?: number;
}

/**
 * QEMU stop/cont: under TCG, vm_stop → cpu_disable_ticks freezes the guest TSC (softmmu/cpu-timers.c) and
 * QEMU_CLOCK_VIRTUAL (HPET, PIT, APIC timer) stops; under KVM, hw/i386/kvm/clock.c saves the kvmclock on
 * stop and restores it on cont. Either way the guest's clocksource does not advance while paused, so
 * MONOTONIC and BOOTTIME (no suspend happened inside the guest) see nothing and REALTIME falls behind by
 * the pause length.
 * Sync: qga guest-set-time (qga/commands-posix.c) calls settimeofday() with µs, truncating the ns the host
 * sent; the twin takes delivery as instantaneous. chronyd with `makestep 0.1 -1` steps at its first poll
 * after the resume (a poll timer on the frozen monotonic clock comes due ≤ one poll interval later).
 */
export function modelPause(inp: PauseModelInput): PauseSide {
  const lagNs = inp.pauseNs;
  const afterResume = inp.offsetBeforeNs - lagNs;
  let error: Ns;
  let done: number | null;
  switch (inp.sync) {
    case 'none':
      error = afterResume;
      done = null;
      break;
    case 'agent':
      error = 0n; // settimeofday's µs truncation (< 1 µs) is below what the report rounds to
      done = 0;
      break;
    case 'ntp':
      error = 0n;
      done = inp.ntpPollS ?? 0.5;
      break;
  }
  return {
    realtime_lag_after_resume_s: Number(lagNs) / 1e9,
    monotonic_advance_during_pause_s: 0,
    boottime_advance_during_pause_s: 0,
    error_after_sync_s: Number(error) / 1e9,
    sync_done_at_s: done,
  };
}
