// A small VMM on /dev/kvm: in-kernel irqchip (PIC, IOAPIC, LAPIC) and optionally the in-kernel PIT
// (KVM_CREATE_PIT2, reinject on or off through KVM_REINJECT_CONTROL), CPUID from a machine profile's
// policy, one vCPU on a worker thread running KVM_RUN, and port/MMIO exits dispatched to the same device
// models the simulation uses (CMOS RTC, HPET, ACPI PM timer, 16550 serial), whose time base is the
// host's CLOCK_MONOTONIC. Everything it creates is released by its LiveKvm's close(), which also runs
// on SIGINT/SIGTERM and at exit; stop() ends the vCPU threads first.
import { Worker } from 'node:worker_threads';
import { UnavailableError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { AcpiPmTimer } from '../devices/index.ts';
import { type AccessSize, MmioBus, PortBus } from '../devices/index.ts';
import { Hpet } from '../devices/index.ts';
import type { IrqLine } from '../devices/index.ts';
import { CmosRtc } from '../devices/index.ts';
import { COM1_BASE, Serial16550 } from '../devices/index.ts';
import { applyCpuidPolicy, type CpuidPolicy } from './cpuid.ts';
import { GUEST_LOAD_GPA } from './guest-build.ts';
import { HostScheduler } from './host-scheduler.ts';
import type { LiveKvm, LiveVcpu, LiveVm } from './kvm.ts';
import { libc } from './sys.ts';
import * as U from './uapi.ts';
import { CTL, EXIT, MAX_MARKS, MAX_TICKS, type VcpuExitMessage, type VcpuWorkerData } from './vcpu-protocol.ts';

/** The mailbox the micro-guests share with the host (src/live/guests/common.inc). */
export const MB = { param0: 0x600, param1: 0x604, param2: 0x608, count: 0x610, last: 0x614, done: 0x618, result: 0x620 } as const;
export { MARK_PORT, TICK_PORT } from './vcpu-protocol.ts';
export const HPET_BASE = 0xfed0_0000n;
/** PIIX4's PM base as SeaBIOS programs it (hw/acpi/piix4.c); PM_TMR is at +8. */
export const PM_BASE = 0x600;

export interface LiveMachineOptions {
  /** The flat guest binary, loaded at GUEST_LOAD_GPA and entered there. */
  guest: Uint8Array;
  /** Real mode (default) or flat 32-bit protected mode (for MMIO above 1 MiB). */
  mode?: 'real' | 'protected';
  /** u32 parameters written to the mailbox before the first entry. */
  params?: number[];
  /** The in-kernel PIT, with reinject on (KVM's default) or off. Absent: no PIT. */
  pit?: { reinject: boolean };
  /** CPUID from a machine profile (vmm profiles' cpuid(host)), given the vCPU's TSC kHz; absent: KVM_GET_SUPPORTED_CPUID as is. */
  cpuid?: (tscKhz: number) => CpuidPolicy;
  memSize?: number;
  /** Host REALTIME seconds the RTC starts from (QEMU -rtc base=utc); default: now. */
  rtcBaseSeconds?: bigint;
}

const SIGUSR2 = 12;
const SYS_tgkill = 234;

/** KVM_IRQ_LINE on one GSI of the in-kernel irqchip. */
class KvmIrqLine implements IrqLine {
  constructor(
    private readonly vm: LiveVm,
    private readonly gsi: number,
  ) {}
  private set(level: number): void {
    const b = new Uint8Array(U.KVM_IRQ_LEVEL_LAYOUT.size);
    const dv = new DataView(b.buffer);
    dv.setUint32(U.KVM_IRQ_LEVEL_LAYOUT.irq, this.gsi, true);
    dv.setUint32(U.KVM_IRQ_LEVEL_LAYOUT.level, level, true);
    this.vm.kvm.ioctl(this.vm.fd, U.KVM_IRQ_LINE, b, 'KVM_IRQ_LINE');
  }
  raise(): boolean {
    this.set(1);
    return true;
  }
  lower(): void {
    this.set(0);
  }
}

export class LiveMachine {
  readonly vm: LiveVm;
  readonly vcpu: LiveVcpu;
  /** The CPUID policy applied, if any. */
  readonly cpuidPolicy: CpuidPolicy | null;
  readonly scheduler = new HostScheduler();
  readonly ports = new PortBus();
  readonly mmio = new MmioBus();
  readonly rtc: CmosRtc;
  readonly hpet: Hpet;
  readonly pm: AcpiPmTimer;
  readonly serial: Serial16550;
  private readonly stamps = new SharedArrayBuffer((MAX_MARKS + MAX_TICKS) * 8);
  private serialLine = '';
  /** Complete lines the guest printed, with the host CLOCK_MONOTONIC of their last byte. */
  readonly serialLines: { t: Ns; text: string }[] = [];
  private lineWaiters: { re: RegExp; resolve: (l: { t: Ns; text: string }) => void }[] = [];
  private worker: Worker | null = null;
  private readonly control = new SharedArrayBuffer(CTL.size * 4);
  private readonly ctl = new Int32Array(this.control);
  private finished: Promise<void> | null = null;
  private workerError: Error | null = null;
  /** Host CLOCK_MONOTONIC when the vCPU thread started, and when stop() was asked for. */
  startedAt: Ns = 0n;
  stoppedAt: Ns = 0n;
  private exitAt: Ns = 0n;
  private readonly onUsr2 = () => {};
  /** While paused: the kvmclock saved at pause ('qemu'), null ('none'); undefined when running. */
  private pausedClock: bigint | null | undefined = undefined;

  constructor(
    readonly kvm: LiveKvm,
    readonly opts: LiveMachineOptions,
  ) {
    this.vm = kvm.createVm(opts.memSize ?? 0x10000);
    if (opts.pit) this.createPit(opts.pit.reinject);
    this.vcpu = this.vm.createVcpu();
    this.cpuidPolicy = opts.cpuid?.(this.vcpu.getTscKhz()) ?? null;
    if (this.cpuidPolicy) this.vcpu.setCpuid(applyCpuidPolicy(kvm.supportedCpuid(), this.cpuidPolicy));
    this.vm.writeGuest(GUEST_LOAD_GPA, opts.guest);
    const mb = new DataView(this.vm.memory.buffer, this.vm.memory.byteOffset);
    (opts.params ?? []).forEach((v, i) => mb.setUint32(MB.param0 + 4 * i, v >>> 0, true));
    if (opts.mode === 'protected') this.vcpu.setFlatProtectedMode(GUEST_LOAD_GPA);
    else this.vcpu.setRealMode(GUEST_LOAD_GPA);

    const s = this.scheduler;
    const gsi = (n: number) => new KvmIrqLine(this.vm, n);
    const base = opts.rtcBaseSeconds ?? BigInt(Date.now()) / 1000n;
    this.rtc = new CmosRtc({ scheduler: s, irq: gsi(8), baseSeconds: base, name: 'live/rtc' });
    this.hpet = new Hpet({ scheduler: s, irqs: Array.from({ length: 24 }, (_, i) => gsi(i)), name: 'live/hpet' });
    this.pm = new AcpiPmTimer({ scheduler: s, irq: gsi(9), base: PM_BASE, name: 'live/acpi-pm' });
    this.serial = new Serial16550({ irq: gsi(4), transmit: (b) => this.serialByte(b) });
    this.ports.map(0x70, 2, this.rtc);
    this.ports.map(PM_BASE, AcpiPmTimer.LENGTH, this.pm, 4);
    this.ports.map(COM1_BASE, 8, this.serial);
    this.mmio.map(HPET_BASE, 0x400n, this.hpet, { min: 4, max: 8 });
    kvm.track('stop vCPU thread', () => this.kick());
    kvm.track('cancel device timers', () => this.scheduler.cancelAll());
  }

  /** KVM_CREATE_PIT2 with a dummy speaker port (QEMU's kvm-pit does the same), then reinject on/off. */
  private createPit(reinject: boolean): void {
    if (this.kvm.checkExtension(U.KVM_CAP_PIT2) <= 0) throw new UnavailableError('no in-kernel PIT', 'KVM_CAP_PIT2 not supported');
    const cfg = new Uint8Array(U.KVM_PIT_CONFIG_LAYOUT.size);
    new DataView(cfg.buffer).setUint32(U.KVM_PIT_CONFIG_LAYOUT.flags, U.KVM_PIT_SPEAKER_DUMMY, true);
    this.kvm.ioctl(this.vm.fd, U.KVM_CREATE_PIT2, cfg, 'KVM_CREATE_PIT2');
    if (this.kvm.checkExtension(U.KVM_CAP_REINJECT_CONTROL) <= 0)
      throw new UnavailableError('cannot set PIT reinjection', 'KVM_CAP_REINJECT_CONTROL not supported');
    const rc = new Uint8Array(U.KVM_REINJECT_CONTROL_LAYOUT.size);
    rc[U.KVM_REINJECT_CONTROL_LAYOUT.pit_reinject] = reinject ? 1 : 0;
    this.kvm.ioctl(this.vm.fd, U.KVM_REINJECT_CONTROL, rc, 'KVM_REINJECT_CONTROL');
  }

  /** Host times of the guest's TICK_PORT writes (one per handled interrupt), taken by the vCPU thread at the exit. */
  get tickTimes(): readonly Ns[] {
    return [...new BigInt64Array(this.stamps, MAX_MARKS * 8, Atomics.load(this.ctl, CTL.ticks))];
  }

  /** Host times of the guest's MARK_PORT writes. */
  get markTimes(): readonly Ns[] {
    return [...new BigInt64Array(this.stamps, 0, Atomics.load(this.ctl, CTL.marks))];
  }

  /** Write mailbox parameter `i` (before start()). */
  setParam(i: number, v: number): void {
    new DataView(this.vm.memory.buffer, this.vm.memory.byteOffset).setUint32(MB.param0 + 4 * i, v >>> 0, true);
  }

  /** A u32 of the mailbox, read now from guest memory. */
  mailbox(offset: number): number {
    return new DataView(this.vm.memory.buffer, this.vm.memory.byteOffset).getUint32(offset, true);
  }

  mailbox64(offset: number): bigint {
    return new DataView(this.vm.memory.buffer, this.vm.memory.byteOffset).getBigUint64(offset, true);
  }

  private serialByte(b: number): void {
    if (b === 0x0a) {
      const line = { t: this.exitAt, text: this.serialLine };
      this.serialLines.push(line);
      this.serialLine = '';
      this.lineWaiters = this.lineWaiters.filter((w) => (w.re.test(line.text) ? (w.resolve(line), false) : true));
    } else {
      this.serialLine += String.fromCharCode(b);
    }
  }

  /** The first serial line matching `re` (already printed or still to come). */
  waitForLine(re: RegExp, timeoutMs: number): Promise<{ t: Ns; text: string }> {
    const have = this.serialLines.find((l) => re.test(l.text));
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.lineWaiters = this.lineWaiters.filter((w) => w.re !== re);
        reject(
          this.workerError ??
            new UnavailableError(
              'the micro-guest did not answer',
              `no serial line matching ${re} within ${timeoutMs} ms (got ${JSON.stringify(this.serialLines.map((l) => l.text))})`,
            ),
        );
      }, timeoutMs);
      this.lineWaiters.push({
        re,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** Start the vCPU thread. */
  start(): void {
    if (this.worker) return;
    const data: VcpuWorkerData = { vcpuFd: this.vcpu.fd, mmapSize: this.kvm.vcpuMmapSize, control: this.control, stamps: this.stamps };
    process.on('SIGUSR2', this.onUsr2); // the kick signal must interrupt KVM_RUN, not kill the process
    this.startedAt = process.hrtime.bigint();
    // The worker loads TypeScript through tsx's API, as bin/timevisor.js does (Node 20 does not carry
    // --import hooks into workers).
    const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(new URL('./vcpu-worker.ts', import.meta.url).href)}); });`;
    const w = new Worker(boot, { eval: true, workerData: data });
    this.worker = w;
    this.finished = new Promise<void>((resolve) => {
      w.on('message', (m: VcpuExitMessage) => this.onExit(m));
      w.on('error', (err) => {
        this.workerError = err;
      });
      w.on('exit', () => {
        process.removeListener('SIGUSR2', this.onUsr2);
        resolve();
      });
    });
  }

  private onExit(m: VcpuExitMessage): void {
    this.exitAt = m.t;
    if (m.kind === EXIT.io || m.kind === EXIT.mmio) {
      let r = 0n;
      try {
        if (m.kind === EXIT.io) {
          const port = Number(m.addr);
          if (m.write) this.ports.write(port, m.size as 1 | 2 | 4, Number(m.value));
          else r = BigInt(this.ports.read(port, m.size as 1 | 2 | 4));
        } else if (m.write) this.mmio.write(m.addr!, m.size as AccessSize, m.value!);
        else r = this.mmio.read(m.addr!, m.size as AccessSize);
      } finally {
        this.ctl[CTL.dataLo] = Number(r & 0xffff_ffffn) | 0;
        this.ctl[CTL.dataHi] = Number((r >> 32n) & 0xffff_ffffn) | 0;
        Atomics.store(this.ctl, CTL.state, 2);
        Atomics.notify(this.ctl, CTL.state);
      }
    } else if (m.kind === EXIT.error) {
      this.workerError = new UnavailableError('the vCPU thread failed', m.message ?? 'unknown error');
    }
  }

  /**
   * Pause the vCPU and, with 'qemu' semantics, save kvmclock as QEMU does on stop (hw/i386/kvm/clock.c
   * kvmclock_vm_state_change: KVM_GET_CLOCK). 'none' leaves kvmclock alone (the guest sees the pause as
   * elapsed time). The device models keep the host clock (QEMU's RTC with -rtc clock=host does too).
   */
  async pause(semantics: 'qemu' | 'none' = 'qemu'): Promise<void> {
    if (!this.worker || this.pausedClock !== undefined) return;
    Atomics.store(this.ctl, CTL.pause, 1);
    for (let i = 0; i < 200 && !Atomics.load(this.ctl, CTL.paused); i++) {
      this.signalVcpu();
      await new Promise((r) => setTimeout(r, 10));
      if (this.workerError) throw this.workerError;
    }
    if (!Atomics.load(this.ctl, CTL.paused)) throw new UnavailableError('the vCPU did not pause', 'KVM_RUN was not interrupted within 2 s');
    this.pausedClock = semantics === 'qemu' ? this.vm.getClock().clock : null;
  }

  /**
   * Resume: with 'qemu' semantics KVM_SET_CLOCK to the saved kvmclock and KVM_KVMCLOCK_CTRL (GUEST_STOPPED
   * for the guest's watchdogs; EINVAL when the guest has no kvmclock, which QEMU ignores), then run.
   */
  resume(): void {
    if (this.pausedClock === undefined) return;
    if (this.pausedClock !== null) {
      this.vm.setClock({ clock: this.pausedClock });
      try {
        this.vcpu.kvmclockCtrl();
      } catch (err) {
        if (!(err instanceof UnavailableError && err.reason === 'EINVAL')) throw err;
      }
    }
    this.pausedClock = undefined;
    Atomics.store(this.ctl, CTL.pause, 0);
    Atomics.notify(this.ctl, CTL.pause);
  }

  /** immediate_exit and a signal to the vCPU thread: KVM_RUN returns EINTR now or at its next entry. */
  private signalVcpu(): void {
    this.vcpu.run[U.KVM_RUN_LAYOUT.immediate_exit] = 1;
    const tid = this.ctl[CTL.tid]!;
    if (tid > 0) libc().syscall3(SYS_tgkill, process.pid, tid, SIGUSR2);
  }

  /** Ask the vCPU thread to leave KVM_RUN: stop word, immediate_exit, and a signal to the thread. */
  private kick(): void {
    if (!this.worker) return;
    Atomics.store(this.ctl, CTL.stop, 1);
    Atomics.notify(this.ctl, CTL.pause); // a paused thread wakes and sees the stop word
    this.signalVcpu();
    // a dispatch in flight must not leave the thread waiting
    Atomics.store(this.ctl, CTL.state, 2);
    Atomics.notify(this.ctl, CTL.state);
  }

  /** Stop the vCPU thread and wait for it (the kick is repeated until it has left KVM_RUN). */
  async stop(): Promise<void> {
    if (!this.worker || !this.finished) return;
    this.stoppedAt = process.hrtime.bigint();
    let done = false;
    const f = this.finished.then(() => {
      done = true;
    });
    for (let i = 0; i < 200 && !done; i++) {
      this.kick();
      await Promise.race([f, new Promise((r) => setTimeout(r, 10))]);
    }
    if (!done) {
      // terminate() cannot interrupt a thread blocked in an ioctl: do not wait for it
      void this.worker.terminate();
      throw new UnavailableError('the vCPU thread did not stop', 'KVM_RUN was not interrupted within 2 s');
    }
    if (this.workerError) throw this.workerError;
  }
}
