// The timer devices a VMM puts on a VM's buses (src/devices), per profile, and the guest's reads of
// them as real port/MMIO accesses:
//
//   qemu-*            QEMU pc (hw/i386/pc.c pc_basic_device_init): MC146818 RTC at 0x70 (-rtc base=utc,
//                     clock=host by default: system/rtc.c configure_rtc), PIT at 0x40 and port 0x61 (in-kernel
//                     under KVM, QEMU's own under TCG), HPET at 0xfed00000, PIIX4 PM block at 0x600 (PM_TMR
//                     0x608). HPET, PM timer and PIT count QEMU_CLOCK_VIRTUAL, which stops while the VM is stopped
//                     (the in-kernel PIT is saved on stop and reloaded on cont: hw/i386/kvm/i8254.c
//                     kvm_pit_vm_state_change).
//   cloud-hypervisor  KVM's in-kernel PIT with the speaker stub, its PM timer at 0x608 counting host time
//                     since the device was made (devices/src/acpi.rs AcpiPmTimerDevice, Instant::now), its CMOS
//                     (devices/src/legacy/cmos.rs): host CLOCK_REALTIME on every read, UIP in the last 244 µs
//                     of each host second.
//   kvmtool           KVM's in-kernel PIT without port 0x61, its CMOS (hw/rtc.c: host time(), no UIP).
//   firecracker       KVM's in-kernel PIT with the speaker stub; nothing else.
//
// The KVM in-kernel PIT runs on host hrtimers and the Cloud Hypervisor / kvmtool devices on host clocks,
// so under those VMMs nothing stops while the VM is paused.
import { Engine, type Scheduler } from '../core/index.ts';
import { InputError } from '../core/index.ts';
import { NSEC_PER_SEC, type Clock, type Ns } from '../core/index.ts';
import {
  AcpiPmTimer,
  CmosRtc,
  Hpet,
  UIP_HOLD_LENGTH,
  HPET_BASE,
  HPET_CFG,
  HPET_CFG_ENABLE,
  HPET_COUNTER,
  HPET_LEN,
  type IrqLine,
  LapicTimer,
  MmioBus,
  noIrq,
  VcpuIrr,
  LatenessHistogram,
  Pit,
  type PitCommon,
  PortBus,
  rtcBaseSeconds,
  SpeakerPort,
  type PortDevice,
} from '../devices/index.ts';
import type { CmosReading, GuestInterrupts } from '../guest/index.ts';
import { IRQ0_VECTOR, KvmLapic, KvmPit, LOCAL_TIMER_VECTOR } from '../hypervisor/index.ts';
import type { Cycles } from '../core/index.ts';
import { KvmtoolRtc } from './kvmtool-rtc.ts';
import { mc146818GetTime, type Mc146818Time } from './mc146818-get-time.ts';
import type { MachineProfile } from './profiles.ts';
import type { TraceRecorder } from '../core/index.ts';
import { VmVirtualClock } from './vm-clock.ts';

/** QEMU's `-rtc` option (qemu-* profiles only; the other VMMs' RTCs always show host UTC). */
export interface RtcConfig {
  /** `base=`: 'utc' (default), 'localtime' (with utcOffsetSeconds) or a date 'YYYY-MM-DD[THH:MM:SS]'. */
  base?: string;
  /** `clock=`: 'host' (QEMU's default: host CLOCK_REALTIME, runs on while paused) or 'vm' (QEMU_CLOCK_VIRTUAL). */
  clock?: 'host' | 'vm';
  /** The host's UTC offset for base=localtime. */
  utcOffsetSeconds?: number;
}

export interface VmDevicesOptions {
  profile: MachineProfile;
  scheduler: Scheduler;
  /** The host's CLOCK_REALTIME (ns since the epoch): what `-rtc base=utc` and the host-clocked RTCs read. */
  hostRealtime: Clock;
  rtc?: RtcConfig;
  /** Trace recorder the devices emit into, and the VM name their trace sources start with. */
  trace?: TraceRecorder;
  name?: string;
  /** KVM's in-kernel PIT: reinject missed ticks (KVM_CREATE_PIT2's default) or discard them (KVM_REINJECT_CONTROL). */
  pitLostTickPolicy?: 'reinject' | 'discard';
}

export type VmmKind = 'qemu' | 'firecracker' | 'cloud-hypervisor' | 'kvmtool';

/** Which VMM's device models a profile gets (profiles not named after one get QEMU's). */
export function vmmKind(profile: MachineProfile): VmmKind {
  const n = profile.name;
  if (n === 'firecracker' || n === 'cloud-hypervisor' || n === 'kvmtool') return n;
  return 'qemu';
}

/** QEMU's FADT names CMOS 0x32 as the century byte (hw/i386/acpi-build.c, RTC_CENTURY). */
const QEMU_FADT_CENTURY = 0x32;
const HPET_COUNTER_ADDR = HPET_BASE + BigInt(HPET_COUNTER);
const HPET_CFG_ADDR = HPET_BASE + BigInt(HPET_CFG);

export class VmDevices {
  readonly kind: VmmKind;
  readonly ports = new PortBus();
  readonly mmio = new MmioBus();
  /** QEMU_CLOCK_VIRTUAL (used by the qemu-* device set; other VMMs' devices never stop). */
  readonly virtualClock: VmVirtualClock;
  readonly rtc: CmosRtc | KvmtoolRtc | null = null;
  readonly pit: PitCommon | null = null;
  readonly speaker: SpeakerPort | null = null;
  readonly hpet: Hpet | null = null;
  readonly acpiPm: AcpiPmTimer | null = null;
  /** The port the guest reads the PM timer at (the FADT's PM_TMR_BLK), when there is one. */
  readonly pmTimerPort: number | null = null;
  /** The guest's most recent RTC read, as mc146818_get_time went. */
  lastRtcRead: Mc146818Time | null = null;
  private readonly rtcClock: Clock | null = null;
  private hpetStarted = false;
  /** ISA IRQ0 (the PIT's output) as the interrupt controllers see it; wire() connects it. */
  private irq0Sink: (() => boolean) | null = null;
  private readonly irq0: IrqLine = { raise: () => (this.irq0Sink ? this.irq0Sink() : true), lower: () => {} };
  /** The vCPUs' interrupt paths, once wired. */
  private wired: WiredInterrupts | null = null;

  constructor(private readonly opts: VmDevicesOptions) {
    const { profile: p, scheduler } = opts;
    this.kind = vmmKind(p);
    const qemu = this.kind === 'qemu';
    const vclock = new VmVirtualClock(scheduler);
    this.virtualClock = vclock;
    const createdAt = scheduler.now;
    const label = opts.name ?? p.name;
    const tr = opts.trace ? { trace: opts.trace } : {};
    if (opts.rtc && !qemu) throw new InputError(`-rtc options are QEMU's; the ${p.name} RTC always shows host UTC`, 'rtc');

    if (p.devices.rtc) {
      if (qemu) {
        const onVm = opts.rtc?.clock === 'vm';
        const clock: Clock = onVm ? vclock.clock : opts.hostRealtime;
        const base = rtcBaseSeconds(opts.rtc?.base ?? 'utc', opts.hostRealtime(), opts.rtc?.utcOffsetSeconds ?? 0);
        // rtc_set_date_from_host: base_rtc = the base's whole second, offset 0 at realize — the RTC's
        // seconds turn on the phase of QEMU's start, not on the host's second boundaries
        this.rtc = new CmosRtc({
          scheduler: onVm ? vclock.scheduler : scheduler,
          clock,
          irq: noIrq,
          name: `${label}/rtc`,
          ...tr,
          baseSeconds: base,
        });
        this.rtcClock = clock;
      } else if (this.kind === 'cloud-hypervisor') {
        // the host's UTC seconds, sub-second phase included (clock_gettime on every read). Register B
        // reads 0x02 here, 0 under CH; both give 24-hour BCD hours, which is all mc146818_get_time sees
        const now = opts.hostRealtime();
        const sec = now / NSEC_PER_SEC;
        this.rtc = new CmosRtc({
          scheduler,
          clock: opts.hostRealtime,
          irq: noIrq,
          name: `${label}/cmos`,
          ...tr,
          baseSeconds: sec,
          startNs: sec * NSEC_PER_SEC,
        });
        this.rtcClock = opts.hostRealtime;
      } else {
        this.rtc = new KvmtoolRtc(opts.hostRealtime);
        this.rtcClock = opts.hostRealtime;
      }
      this.ports.map(0x70, 2, this.rtc!);
    }

    if (p.devices.pit) {
      // IRQ0 goes to the interrupt controllers wire() connects (nowhere until then)
      const irq = this.irq0;
      const deps = qemu
        ? { scheduler: vclock.scheduler, clock: vclock.clock, irq, name: `${label}/pit`, ...tr }
        : { scheduler, irq, name: `${label}/pit`, ...tr };
      // Under KVM the PIT is the kernel's. Only QEMU writes its own reset state (mode 3) into it; after
      // KVM_CREATE_PIT2 alone kvm_pit_reset's mode 0xff starts no hrtimer (arch/x86/kvm/i8254.c).
      const reinject = (opts.pitLostTickPolicy ?? 'reinject') === 'reinject';
      this.pit = p.accel === 'kvm' ? new KvmPit({ ...deps, reinject, reset: qemu ? 'qemu' : 'kvm' }) : new Pit(deps);
      this.ports.map(0x40, 4, this.pit!);
      if (p.devices.pit.speakerPort) {
        this.speaker = new SpeakerPort(this.pit!);
        this.ports.map(0x61, 1, this.speaker!);
      }
    }

    if (p.devices.hpet) {
      // GSI 0 is IRQ0 (timer 0 under LegacyReplacement: hw/timer/hpet.c update_irq), the others go nowhere;
      // the legacy route silences the PIT (hpet_handle_legacy_irq → pit irq_control). QEMU's hpet_timer runs
      // after the expiry by its main loop's latency, more than one 10 ns HPET tick on a real host, so its
      // `while (cur > cmp) cmp += period` advances a periodic comparator on every expiry: 'reached'.
      this.hpet = new Hpet({
        scheduler: vclock.scheduler,
        clock: vclock.clock,
        irqs: [this.irq0],
        name: `${label}/hpet`,
        ...tr,
        periodicAdvance: 'reached',
        onLegacyRoute: (on) => this.pit?.setIrqDisabled(on),
      });
      this.mmio.map(HPET_BASE, HPET_LEN, this.hpet!, { min: 4, max: 8 });
    }

    const acpi = p.devices.acpi;
    if (acpi?.pmTimer) {
      const port = acpi.pmTimerPort;
      this.pmTimerPort = port;
      if (qemu) {
        // the PIIX4 PM1a block, PM_TMR at +8 (hw/acpi/core.c acpi_pm_tmr_get on QEMU_CLOCK_VIRTUAL)
        this.acpiPm = new AcpiPmTimer({
          scheduler: vclock.scheduler,
          clock: vclock.clock,
          irq: noIrq,
          name: `${label}/acpi-pm`,
          ...tr,
          base: port - 8,
        });
        this.ports.map(port - 8, AcpiPmTimer.LENGTH, this.acpiPm!, 4);
      } else {
        // Cloud Hypervisor's AcpiPmTimerDevice is the timer register alone, counting from its creation
        this.acpiPm = new AcpiPmTimer({
          scheduler,
          clock: () => scheduler.now - createdAt,
          irq: noIrq,
          name: `${label}/pm-timer`,
          ...tr,
          base: port - 8,
        });
        this.ports.map(port, 4, this.acpiPm!, 4);
      }
    }
  }

  /** Whether the VM is stopped or running (QEMU's vm_state_change): the virtual clock follows. */
  vmStateChange(running: boolean): void {
    if (this.kind !== 'qemu') return;
    if (running) this.virtualClock.start();
    else this.virtualClock.stop();
  }

  /**
   * What the guest's i8253 driver leaves the PIT in when the PIT is not its tick (pit_timer_init →
   * clockevent_i8253_disable, drivers/clocksource/i8253.c): mode 0 written to 0x43, then a zero count
   * (i8253_clear_counter_on_shutdown) — so the 18.2 Hz of the reset state (QEMU's pit_reset_common,
   * which QEMU also loads into KVM's PIT) ends with one last one-shot. Applied at kernel entry; a guest
   * that ticks from the PIT has that tick modelled in src/guest, not written to this device.
   */
  guestPitDisable(): void {
    if (!this.pit) return;
    this.ports.write(0x43, 1, 0x30);
    this.ports.write(0x40, 1, 0);
    this.ports.write(0x40, 1, 0);
  }

  /** hpet_readl(HPET_COUNTER): a 32-bit MMIO read at 0xfed000f0. */
  readHpet(): bigint {
    if (!this.hpetStarted) this.hpetEnable();
    return this.mmio.read(HPET_COUNTER_ADDR, 4);
  }

  /**
   * What hpet_enable → hpet_clocksource_register → hpet_restart_counter (arch/x86/kernel/hpet.c) writes:
   * stop the counter, zero both halves, start it. Done at the guest's first counter read, which the guest
   * model makes just after the hpet clocksource is registered; the guest's clocks use only differences.
   */
  private hpetEnable(): void {
    this.hpetStarted = true;
    const cfg = this.mmio.read(HPET_CFG_ADDR, 4);
    this.mmio.write(HPET_CFG_ADDR, 4, cfg & ~HPET_CFG_ENABLE);
    this.mmio.write(HPET_COUNTER_ADDR, 4, 0n);
    this.mmio.write(HPET_COUNTER_ADDR + 4n, 4, 0n);
    this.mmio.write(HPET_CFG_ADDR, 4, cfg | HPET_CFG_ENABLE);
  }

  /** acpi_pm_read_verified's inl(pmtmr_ioport). */
  readPmTimer(): bigint {
    if (this.pmTimerPort === null) throw new InputError('this machine has no ACPI PM timer', 'readPmTimer');
    return BigInt(this.ports.read(this.pmTimerPort, 4));
  }

  /**
   * The guest's mc146818_get_time(): the kernel's port accesses, in order, each taking the profile's
   * trapped-PIO time, and 100 µs udelays while UIP is set — evaluated on a copy of the RTC that runs
   * ahead of the VMM's clock by exactly that much (the guest model reads synchronously at one instant).
   */
  readCmos(timeoutMs?: number): CmosReading {
    const rtc = this.rtc;
    if (!rtc || !this.rtcClock) throw new InputError('this machine has no CMOS RTC', 'readCmos');
    const accessNs = BigInt(Math.round(this.opts.profile.pioReadNs));
    const opts = { centuryIndex: this.kind === 'qemu' ? QEMU_FADT_CENTURY : null, ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
    const getTime = (dev: { port: PortDevice; advance: (ns: Ns) => void }) =>
      mc146818GetTime(
        { outb: (port, v) => dev.port.portWrite(port, 1, v), inb: (port) => dev.port.portRead(port, 1), advance: dev.advance, accessNs },
        opts,
      );
    let r: Mc146818Time | null = null;
    if (this.rtcQuiet(rtc, this.rtcClock, 32n * accessNs)) {
      // on the real device at this instant; a read that had to wait (it cannot, if the check is right)
      // is redone on the copy, where time moves
      r = getTime({ port: rtc, advance: () => {} });
      if (!r.ok || r.loops > 1) r = null;
    }
    r ??= getTime(this.rtcProbe(rtc, this.rtcClock));
    rtc.portWrite(0x70, 1, 0x00); // the index the guest left selected (RTC_SECONDS)
    this.lastRtcRead = r;
    return { seconds: r.seconds, uipWaitNs: r.uipWaitNs };
  }

  /**
   * Whether nothing the reader can see changes within `spanNs` from now: the RTC's second (and so its
   * UIP window, 244 µs before the update) lies further ahead. Then the kernel's accesses, all made in
   * that span, read the same on the real device at this instant as at their own times.
   */
  private rtcQuiet(rtc: CmosRtc | KvmtoolRtc, clock: Clock, spanNs: Ns): boolean {
    if (rtc instanceof KvmtoolRtc) {
      const frac = clock() % NSEC_PER_SEC;
      return frac >= 0n && frac + spanNs < NSEC_PER_SEC;
    }
    const frac = rtc.guestRtcNs() % NSEC_PER_SEC;
    // UIP stays latched until the update timer has run, which at the very ns of an update may not yet
    // have happened: ask register A too (a read the kernel makes anyway)
    rtc.portWrite(0x70, 1, 0x0a);
    return frac >= 0n && frac + spanNs < NSEC_PER_SEC - UIP_HOLD_LENGTH && (rtc.portRead(0x71, 1) & 0x80) === 0;
  }

  /** A copy of the RTC on a private clock starting at the real one's reading, and a way to move it on. */
  private rtcProbe(rtc: CmosRtc | KvmtoolRtc, clock: Clock): { port: PortDevice; advance: (ns: Ns) => void } {
    const t0 = clock();
    if (rtc instanceof KvmtoolRtc) {
      let dt = 0n;
      return { port: new KvmtoolRtc(() => t0 + dt), advance: (ns) => void (dt += ns) };
    }
    // one copy per VM, re-loaded for each read; its engine only moves forward, so the copy's clock is
    // t0 plus how far the engine has moved since this read began
    let p = this.probe;
    if (!p) {
      const engine = new Engine(16);
      const at = { t0: 0n, e0: 0n };
      const copy = new CmosRtc({ scheduler: engine, clock: () => at.t0 + engine.now - at.e0, irq: noIrq, baseSeconds: 0n });
      p = this.probe = { engine, at, copy };
    }
    const { engine, at, copy } = p;
    at.t0 = t0;
    at.e0 = engine.now;
    copy.restore(rtc.saveState());
    return { port: copy, advance: (ns) => engine.run(engine.now + ns) };
  }

  private probe: { engine: Engine; at: { t0: Ns; e0: Ns }; copy: CmosRtc } | null = null;

  /**
   * The profile's interrupt path from the timer devices to the vCPUs, and what the guest sees of it
   * (GuestPlatform.interrupts). KVM profiles have KVM's in-kernel irqchip: the PIT's IRQ0 reaches vCPU 0's
   * local APIC (kvm_set_irq → IO-APIC/PIC → kvm_apic_set_irq), each vCPU's LAPIC timer is KVM's
   * (src/hypervisor/kvm-lapic.ts), and the EOI of IRQ0 runs kvm_pit_ack_irq. qemu-tcg has QEMU's own PIC/IO-APIC
   * and APIC (hw/intc/apic.c) in userspace: the same request register and a LAPIC timer without KVM's
   * hv/sw timer split; QEMU's userspace PIT has no reinjection.
   */
  wire(w: InterruptWiring, kvm: boolean): GuestInterrupts {
    const sched = this.opts.scheduler;
    const label = this.opts.name ?? this.opts.profile.name;
    const trace = this.opts.trace;
    let handler: ((cpu: number, vector: number) => void) | null = null;
    const wired: WiredInterrupts = { irrs: [], lapics: [], timers: [], timerIrqs: 0 };
    const take = (cpu: number, vector: number): void => {
      if (vector === IRQ0_VECTOR || vector === LOCAL_TIMER_VECTOR) wired.timerIrqs++;
      handler?.(cpu, vector); // before the guest installs its IDT the interrupt goes nowhere
    };
    for (let cpu = 0; cpu < w.vcpus; cpu++) {
      const running = () => w.running(cpu);
      const nextRun = () => w.nextRun(cpu);
      if (kvm) {
        const lapic = new KvmLapic({
          scheduler: sched,
          vcpuId: cpu,
          tscKhz: w.virtualTscKhz ? () => w.virtualTscKhz!(cpu) : w.tscKhz,
          guestTsc: () => w.guestTsc(cpu),
          hvTimer: w.hvTimer,
          ...(w.hvTimerDelay ? { hvTimerDelay: (d: Cycles) => w.hvTimerDelay!(cpu, d) } : {}),
          running,
          nextRun,
          inject: (v) => take(cpu, v),
          ...(w.enterGuest ? { enterGuest: () => w.enterGuest!(cpu) } : {}),
          ...(trace ? { trace } : {}),
          name: `${label}/vcpu${cpu}`,
        });
        wired.lapics.push(lapic);
        wired.irrs.push(lapic.irr);
        wired.timers.push(lapic.timer);
      } else {
        const irr = new VcpuIrr({ scheduler: sched, running, nextRun, inject: (v) => take(cpu, v) });
        const timer = new LapicTimer({
          scheduler: sched,
          irq: noIrq,
          name: `${label}/vcpu${cpu}/apic`,
          ...(trace ? { trace } : {}),
          tscKhz: w.tscKhz,
          tsc: () => w.guestTsc(cpu),
          vcpuId: cpu,
          deliver: (v) => void irr.accept(v),
        });
        wired.lapics.push(null);
        wired.irrs.push(irr);
        wired.timers.push(timer);
      }
    }
    this.wired = wired;
    // ISA IRQ0 is routed to vCPU 0 (the MADT's override to IO-APIC pin 2, or the PIC's virtual wire)
    this.irq0Sink = () => wired.irrs[0]!.accept(IRQ0_VECTOR);
    const pit = this.pit;
    if (pit instanceof KvmPit) wired.lapics[0]!.onAck(IRQ0_VECTOR, () => pit.ackIrq());
    const hpet = this.hpet
      ? {
          // hpet_enable restarted the counter (hpet_clocksource_register) before any clockevent access
          mmioRead: (addr: bigint) => {
            if (!this.hpetStarted) this.hpetEnable();
            return this.mmio.read(addr, 4);
          },
          mmioWrite: (addr: bigint, value: bigint) => {
            if (!this.hpetStarted) this.hpetEnable();
            this.mmio.write(addr, 4, value);
          },
        }
      : {};
    return {
      ...hpet,
      outb: (port, value) => this.ports.write(port, 1, value),
      wrmsrApic: (cpu, msr, value) => {
        const lapic = wired.lapics[cpu];
        if (lapic) lapic.wrmsr(msr, value);
        else wired.timers[cpu]!.msrWrite(msr, value);
      },
      setHandler: (h) => {
        handler = h;
      },
      eoi: (cpu, vector) => wired.lapics[cpu]?.eoi(vector),
      hlt: (cpu) => wired.lapics[cpu]?.hlt(),
    };
  }

  /** The vCPU threads run again (the VMM restarted them): requested interrupts are taken now. */
  kickVcpus(): void {
    for (const irr of this.wired?.irrs ?? []) irr.deliver();
  }

  /** Timer interrupt counts for the summary (zeros before the interrupts are wired). */
  timerIrqStats(): TimerIrqStats {
    const w = this.wired;
    const pit = this.pit instanceof KvmPit ? this.pit.stats : null;
    let lost = 0;
    let late = 0n;
    const lateness = new LatenessHistogram();
    for (const irr of w?.irrs ?? []) {
      lateness.merge(irr.lateness);
      lost += (irr.coalescedByVector.get(IRQ0_VECTOR) ?? 0) + (irr.coalescedByVector.get(LOCAL_TIMER_VECTOR) ?? 0);
      if (irr.stats.maxLatenessNs > late) late = irr.stats.maxLatenessNs;
    }
    return { timerIrqs: w?.timerIrqs ?? 0, ticksLost: lost, ticksReinjected: pit?.reinjected ?? 0, maxLatenessNs: late, lateness };
  }
}

/** What wire() needs of the VM: its vCPUs' threads (the host scheduler's answers) and TSC. */
export interface InterruptWiring {
  vcpus: number;
  running(cpu: number): boolean;
  nextRun(cpu: number): Ns;
  /** vcpu->arch.virtual_tsc_khz and the guest TSC of vCPU `cpu`. */
  tscKhz: number;
  guestTsc(cpu: number): Cycles;
  /** KVM: the host has the VMX preemption timer (Intel); AMD hosts run the LAPIC timer on hrtimers only. */
  hvTimer: boolean;
  /** KVM: vCPU `cpu`'s virtual_tsc_khz now (KVM_SET_TSC_KHZ on a restore changes it); absent: `tscKhz`. */
  virtualTscKhz?(cpu: number): number;
  /** KVM: ns until vCPU `cpu`'s VMX preemption timer fires for a guest TSC delta (vmx_set_hv_timer). */
  hvTimerDelay?(cpu: number, deltaTsc: Cycles): Ns | null;
  /** KVM: vCPU `cpu` enters the guest (vcpu_enter_guest handles its pending requests before injecting). */
  enterGuest?(cpu: number): void;
}

/** Per-VM interrupt counts for summary.json. */
export interface TimerIrqStats {
  /** Timer interrupts the guest took (PIT IRQ0 and LAPIC timer vectors). */
  timerIrqs: number;
  /** Timer interrupts coalesced with one still requested: ticks the guest never sees. */
  ticksLost: number;
  /** PIT ticks KVM delivered late from its reinject count (one per EOI). */
  ticksReinjected: number;
  /** Longest wait from an interrupt's request to the guest taking it. */
  maxLatenessNs: Ns;
  /** Every taken timer interrupt's lateness, all vCPUs. */
  lateness: LatenessHistogram;
}

interface WiredInterrupts {
  irrs: VcpuIrr[];
  lapics: (KvmLapic | null)[];
  timers: LapicTimer[];
  timerIrqs: number;
}
