// The live /dev/kvm backend: one LiveKvm object owns every fd and mapping it creates (the /dev/kvm
// fd, VM fds, guest memory, vCPU fds and their kvm_run mappings) and releases them all in close(),
// which also runs on SIGINT/SIGTERM and at process exit. Struct layouts come from uapi.ts (checked
// against <linux/kvm.h>); errors become UnavailableError with the errno name.
import { existsSync } from 'node:fs';
import type { Cycles, Ns } from '../core/index.ts';
import { UnavailableError } from '../core/index.ts';
import { decodePvclock, decodeStealTime, PVCLOCK_VCPU_TIME_INFO_SIZE, type KvmStealTime, type PvclockVcpuTimeInfo } from '../core/index.ts';
import type { KvmClockData } from '../hypervisor/index.ts';
import {
  errnoName,
  libc,
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  O_CLOEXEC,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
  type Libc,
  type NativePointer,
} from './sys.ts';
import * as U from './uapi.ts';

/** The KVM device node; TIMEVISOR_KVM_DEVICE overrides it (tests use it to check the missing-device path). */
const EINTR = 4;

export function kvmDevicePath(): string {
  return process.env.TIMEVISOR_KVM_DEVICE ?? '/dev/kvm';
}

/**
 * /dev/kvm itself is missing or unusable here: the device node is absent, opening it failed with a named
 * errno (ENOENT, EACCES, EPERM, ENXIO, ENODEV), or this KVM lacks the API version or a capability the
 * backend needs. Only this is a reason to skip the live features; any other error is a bug.
 */
export class KvmUnusableError extends UnavailableError {
  override name = 'KvmUnusableError';
}

/** errnos of open(/dev/kvm) that mean "no usable KVM here" rather than a bug. */
const UNUSABLE_ERRNOS = new Set([1, 2, 6, 13, 19]); // EPERM ENOENT ENXIO EACCES ENODEV

/**
 * Why the live backend cannot run here, or null if /dev/kvm is usable: another platform, not root, or
 * KvmUnusableError (named in the reason). Any other error (a TypeError, koffi failing to load) is thrown.
 */
export function kvmUnavailableReason(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    return `live KVM needs Linux on x86-64 (this is ${process.platform}/${process.arch})`;
  if (!existsSync(kvmDevicePath())) return `${kvmDevicePath()} does not exist (ENOENT: no KVM on this machine)`;
  if (process.getuid?.() !== 0) return `live KVM experiments need root (uid ${process.getuid?.()})`;
  try {
    const k = LiveKvm.open();
    k.close();
  } catch (err) {
    if (err instanceof KvmUnusableError) return `${err.message}: ${err.reason}`;
    throw err;
  }
  return null;
}

type Cleanup = { what: string; run: () => void };

export class LiveKvm {
  private readonly c: Libc;
  private readonly cleanups: Cleanup[] = [];
  private closed = false;
  readonly fd: number;
  readonly vcpuMmapSize: number;
  private readonly onSignal: (sig: NodeJS.Signals) => void;
  private readonly onExit: () => void;

  private readonly onClose: ((released: number) => void) | null;

  private constructor(c: Libc, fd: number, onClose: ((released: number) => void) | null) {
    this.c = c;
    this.fd = fd;
    this.onClose = onClose;
    this.track(`close ${kvmDevicePath()}`, () => c.close(fd));
    this.onSignal = (sig) => {
      this.close();
      process.removeListener(sig, this.onSignal);
      process.kill(process.pid, sig);
    };
    this.onExit = () => this.close();
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
    process.once('exit', this.onExit);
    try {
      const api = c.ioctlInt(fd, U.KVM_GET_API_VERSION, 0);
      if (api !== U.KVM_API_VERSION)
        throw new KvmUnusableError('unsupported KVM API', `KVM_GET_API_VERSION returned ${api}, expected ${U.KVM_API_VERSION}`);
      for (const [cap, name] of [
        [U.KVM_CAP_USER_MEMORY, 'KVM_CAP_USER_MEMORY'],
        [U.KVM_CAP_IRQCHIP, 'KVM_CAP_IRQCHIP'],
        [U.KVM_CAP_ADJUST_CLOCK, 'KVM_CAP_ADJUST_CLOCK'],
        [U.KVM_CAP_EXT_CPUID, 'KVM_CAP_EXT_CPUID'],
      ] as const) {
        if (c.ioctlInt(fd, U.KVM_CHECK_EXTENSION, cap) <= 0)
          throw new KvmUnusableError('KVM lacks a needed capability', `${name} not supported by this host`);
      }
      this.vcpuMmapSize = c.ioctlInt(fd, U.KVM_GET_VCPU_MMAP_SIZE, 0);
      if (this.vcpuMmapSize < U.KVM_RUN_LAYOUT.size) throw new UnavailableError('KVM_GET_VCPU_MMAP_SIZE failed', errnoName(c.errno()));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Open /dev/kvm. Throws KvmUnusableError (missing device, permission, API, capability) or UnavailableError. */
  static open(opts: { onClose?: (released: number) => void } = {}): LiveKvm {
    const dev = kvmDevicePath();
    if (!existsSync(dev)) throw new KvmUnusableError(`${dev} is not available`, 'no such device: this machine has no KVM');
    const c = libc();
    const fd = c.open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      const e = c.errno();
      const reason = e === 13 ? 'permission denied (EACCES): run as root or join the kvm group' : errnoName(e);
      throw UNUSABLE_ERRNOS.has(e)
        ? new KvmUnusableError(`cannot open ${dev}`, reason)
        : new UnavailableError(`cannot open ${dev}`, reason);
    }
    return new LiveKvm(c, fd, opts.onClose ?? null);
  }

  /** KVM_CHECK_EXTENSION. */
  checkExtension(cap: number): number {
    return this.c.ioctlInt(this.fd, U.KVM_CHECK_EXTENSION, cap);
  }

  /** Remember how to release a resource; close() runs these newest first. */
  track(what: string, run: () => void): void {
    this.cleanups.push({ what, run });
  }

  /** Release every fd and mapping (idempotent, all paths). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
    process.removeListener('exit', this.onExit);
    let released = 0;
    while (this.cleanups.length) {
      const c = this.cleanups.pop()!;
      try {
        c.run();
        released++;
      } catch {
        // keep releasing the rest
      }
    }
    this.onClose?.(released);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resources still held (for tests of the release path). */
  get openResources(): number {
    return this.cleanups.length;
  }

  ioctl(fd: number, req: number, arg: Uint8Array | null, what: string): number {
    const r = this.c.ioctlPtr(fd, req, arg);
    if (r < 0) throw new UnavailableError(`${what} failed`, errnoName(this.c.errno()));
    return r;
  }

  /** ioctl with an integer argument; returns the raw result (errno via lastErrno()). */
  ioctlRaw(fd: number, req: number, arg: number): number {
    return this.c.ioctlInt(fd, req, arg);
  }

  lastErrno(): number {
    return this.c.errno();
  }

  ioctlInt(fd: number, req: number, arg: number, what: string): number {
    const r = this.c.ioctlInt(fd, req, arg);
    if (r < 0) throw new UnavailableError(`${what} failed`, errnoName(this.c.errno()));
    return r;
  }

  mmap(len: number, prot: number, flags: number, fd: number, what: string): { ptr: NativePointer; bytes: Uint8Array } {
    const ptr = this.c.mmap(len, prot, flags, fd, 0);
    if (ptr === null || this.c.address(ptr) === 0xffff_ffff_ffff_ffffn)
      throw new UnavailableError(`mmap for ${what} failed`, errnoName(this.c.errno()));
    this.track(`munmap ${what}`, () => this.c.munmap(ptr, len));
    return { ptr, bytes: new Uint8Array(this.c.view(ptr, len)) };
  }

  address(ptr: NativePointer): bigint {
    return this.c.address(ptr);
  }

  /** KVM_CREATE_VM with `memSize` bytes of guest RAM at GPA 0 and an in-kernel irqchip. */
  createVm(memSize = 0x10000): LiveVm {
    const fd = this.ioctlInt(this.fd, U.KVM_CREATE_VM, 0, 'KVM_CREATE_VM');
    this.track('close VM fd', () => this.c.close(fd));
    return new LiveVm(this, fd, memSize);
  }

  /** KVM_GET_SUPPORTED_CPUID. */
  supportedCpuid(): Uint8Array {
    const n = 256;
    const buf = new Uint8Array(U.KVM_CPUID2_LAYOUT.size + n * U.KVM_CPUID_ENTRY2_LAYOUT.size);
    new DataView(buf.buffer).setUint32(U.KVM_CPUID2_LAYOUT.nent, n, true);
    this.ioctl(this.fd, U.KVM_GET_SUPPORTED_CPUID, buf, 'KVM_GET_SUPPORTED_CPUID');
    return buf;
  }

  close_fd(fd: number): void {
    this.c.close(fd);
  }
}

export class LiveVm {
  readonly memory: Uint8Array;
  /** Host virtual address of guest RAM. */
  readonly memAddress: bigint;
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: held so the mapping outlives every view of it
  private readonly memPtr: NativePointer;
  readonly vcpus: LiveVcpu[] = [];

  constructor(
    readonly kvm: LiveKvm,
    readonly fd: number,
    readonly memSize: number,
  ) {
    // Real mode on VMX needs a TSS area; harmless elsewhere (arch/x86/kvm/vmx/vmx.c).
    try {
      kvm.ioctlInt(fd, U.KVM_SET_TSS_ADDR, 0xfffbd000, 'KVM_SET_TSS_ADDR');
    } catch {
      // kvm-pvm and SVM do not need it
    }
    kvm.ioctlInt(fd, U.KVM_CREATE_IRQCHIP, 0, 'KVM_CREATE_IRQCHIP');
    const m = kvm.mmap(memSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 'guest memory');
    this.memory = m.bytes;
    this.memPtr = m.ptr; // held so the mapping outlives every view of it
    this.memAddress = kvm.address(m.ptr);
    const region = new Uint8Array(U.KVM_USERSPACE_MEMORY_REGION_LAYOUT.size);
    const dv = new DataView(region.buffer);
    dv.setUint32(U.KVM_USERSPACE_MEMORY_REGION_LAYOUT.slot, 0, true);
    dv.setBigUint64(U.KVM_USERSPACE_MEMORY_REGION_LAYOUT.guest_phys_addr, 0n, true);
    dv.setBigUint64(U.KVM_USERSPACE_MEMORY_REGION_LAYOUT.memory_size, BigInt(memSize), true);
    dv.setBigUint64(U.KVM_USERSPACE_MEMORY_REGION_LAYOUT.userspace_addr, this.memAddress, true);
    kvm.ioctl(fd, U.KVM_SET_USER_MEMORY_REGION, region, 'KVM_SET_USER_MEMORY_REGION');
  }

  /** KVM_CREATE_VCPU, its kvm_run mapping, and the KVM CPUID leaves (KVM_SET_CPUID2). */
  createVcpu(): LiveVcpu {
    const id = this.vcpus.length;
    const fd = this.kvm.ioctlInt(this.fd, U.KVM_CREATE_VCPU, id, 'KVM_CREATE_VCPU');
    this.kvm.track('close vCPU fd', () => this.kvm.close_fd(fd));
    const run = this.kvm.mmap(this.kvm.vcpuMmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 'kvm_run');
    const v = new LiveVcpu(this, id, fd, run.bytes);
    v.setCpuid(this.kvm.supportedCpuid());
    this.vcpus.push(v);
    return v;
  }

  /** KVM_GET_CLOCK. */
  getClock(): KvmClockData {
    const buf = new Uint8Array(U.KVM_CLOCK_DATA_LAYOUT.size);
    this.kvm.ioctl(this.fd, U.KVM_GET_CLOCK, buf, 'KVM_GET_CLOCK');
    const dv = new DataView(buf.buffer);
    return {
      clock: dv.getBigUint64(U.KVM_CLOCK_DATA_LAYOUT.clock, true),
      flags: dv.getUint32(U.KVM_CLOCK_DATA_LAYOUT.flags, true),
      realtime: dv.getBigUint64(U.KVM_CLOCK_DATA_LAYOUT.realtime, true),
      hostTsc: dv.getBigUint64(U.KVM_CLOCK_DATA_LAYOUT.host_tsc, true),
    };
  }

  /** KVM_SET_CLOCK. */
  setClock(data: { clock: Ns; flags?: number; realtime?: Ns }): void {
    const buf = new Uint8Array(U.KVM_CLOCK_DATA_LAYOUT.size);
    const dv = new DataView(buf.buffer);
    dv.setBigUint64(U.KVM_CLOCK_DATA_LAYOUT.clock, data.clock, true);
    dv.setUint32(U.KVM_CLOCK_DATA_LAYOUT.flags, data.flags ?? 0, true);
    dv.setBigUint64(U.KVM_CLOCK_DATA_LAYOUT.realtime, data.realtime ?? 0n, true);
    this.kvm.ioctl(this.fd, U.KVM_SET_CLOCK, buf, 'KVM_SET_CLOCK');
  }

  /** Copy bytes into guest memory at `gpa`. */
  writeGuest(gpa: number, bytes: Uint8Array): void {
    this.memory.set(bytes, gpa);
  }

  /** A consistent copy of the pvclock record at `gpa` (version even and unchanged across the copy). */
  readPvclock(gpa: number): PvclockVcpuTimeInfo {
    for (let i = 0; i < 1000; i++) {
      const a = decodePvclock(this.memory, gpa);
      const copy = this.memory.slice(gpa, gpa + PVCLOCK_VCPU_TIME_INFO_SIZE);
      const b = decodePvclock(copy);
      if (!(a.version & 1) && a.version === b.version && decodePvclock(this.memory, gpa).version === a.version) return b;
    }
    throw new UnavailableError('pvclock record never settled', `version at 0x${gpa.toString(16)} stayed odd or kept changing`);
  }

  readSteal(gpa: number): KvmStealTime {
    return decodeStealTime(this.memory.slice(gpa, gpa + 64));
  }
}

export interface ExitInfo {
  reason: number;
  port?: number;
  direction?: number;
}

export class LiveVcpu {
  private readonly runView: DataView;

  constructor(
    readonly vm: LiveVm,
    readonly id: number,
    readonly fd: number,
    readonly run: Uint8Array,
  ) {
    this.runView = new DataView(run.buffer, run.byteOffset, run.byteLength);
  }

  setCpuid(cpuid: Uint8Array): void {
    this.vm.kvm.ioctl(this.fd, U.KVM_SET_CPUID2, cpuid, 'KVM_SET_CPUID2');
  }

  /** Real mode, CS:IP = 0:ip, flat segments at 0. */
  setRealMode(ip: number): void {
    const k = this.vm.kvm;
    const sregs = new Uint8Array(U.KVM_SREGS_LAYOUT.size);
    k.ioctl(this.fd, U.KVM_GET_SREGS, sregs, 'KVM_GET_SREGS');
    const sv = new DataView(sregs.buffer);
    for (const seg of [U.KVM_SREGS_LAYOUT.cs, U.KVM_SREGS_LAYOUT.ds, U.KVM_SREGS_LAYOUT.es, U.KVM_SREGS_LAYOUT.ss]) {
      sv.setBigUint64(seg + U.KVM_SEGMENT_LAYOUT.base, 0n, true);
      sv.setUint16(seg + U.KVM_SEGMENT_LAYOUT.selector, 0, true);
    }
    k.ioctl(this.fd, U.KVM_SET_SREGS, sregs, 'KVM_SET_SREGS');
    this.setEntryRegs(ip);
  }

  /**
   * 32-bit protected mode with flat 4 GiB segments (CR0.PE, CS 0x08 code, data 0x10), paging off, at EIP
   * `ip`: what a loader leaves a 32-bit kernel in, and the way a micro-guest reaches MMIO at 0xfed00000.
   */
  setFlatProtectedMode(ip: number): void {
    const k = this.vm.kvm;
    const sregs = new Uint8Array(U.KVM_SREGS_LAYOUT.size);
    k.ioctl(this.fd, U.KVM_GET_SREGS, sregs, 'KVM_GET_SREGS');
    const sv = new DataView(sregs.buffer);
    const S = U.KVM_SEGMENT_LAYOUT;
    const flat = (at: number, code: boolean) => {
      sv.setBigUint64(at + S.base, 0n, true);
      sv.setUint32(at + S.limit, 0xffff_ffff, true);
      sv.setUint16(at + S.selector, code ? 0x08 : 0x10, true);
      sv.setUint8(at + S.type, code ? 0xb : 0x3); // execute/read accessed, read/write accessed
      sv.setUint8(at + S.present, 1);
      sv.setUint8(at + S.dpl, 0);
      sv.setUint8(at + S.db, 1);
      sv.setUint8(at + S.s, 1);
      sv.setUint8(at + S.l, 0);
      sv.setUint8(at + S.g, 1);
    };
    flat(U.KVM_SREGS_LAYOUT.cs, true);
    for (const seg of [U.KVM_SREGS_LAYOUT.ds, U.KVM_SREGS_LAYOUT.es, U.KVM_SREGS_LAYOUT.fs, U.KVM_SREGS_LAYOUT.gs, U.KVM_SREGS_LAYOUT.ss])
      flat(seg, false);
    sv.setBigUint64(U.KVM_SREGS_LAYOUT.cr0, sv.getBigUint64(U.KVM_SREGS_LAYOUT.cr0, true) | 1n, true);
    k.ioctl(this.fd, U.KVM_SET_SREGS, sregs, 'KVM_SET_SREGS');
    this.setEntryRegs(ip);
  }

  /** KVM_SET_REGS for a micro-guest's entry: RIP = ip, RFLAGS = 2 (the reserved bit), stack at 0x8000. */
  private setEntryRegs(ip: number): void {
    const regs = new Uint8Array(U.KVM_REGS_LAYOUT.size);
    const rv = new DataView(regs.buffer);
    rv.setBigUint64(U.KVM_REGS_LAYOUT.rip, BigInt(ip), true);
    rv.setBigUint64(U.KVM_REGS_LAYOUT.rflags, 2n, true);
    rv.setBigUint64(U.KVM_REGS_LAYOUT.rsp, 0x8000n, true);
    this.vm.kvm.ioctl(this.fd, U.KVM_SET_REGS, regs, 'KVM_SET_REGS');
  }

  /** KVM_SET_MSRS (host-initiated writes). */
  setMsrs(msrs: [number, bigint][]): void {
    const buf = new Uint8Array(U.KVM_MSRS_LAYOUT.size + msrs.length * U.KVM_MSR_ENTRY_LAYOUT.size);
    const dv = new DataView(buf.buffer);
    dv.setUint32(U.KVM_MSRS_LAYOUT.nmsrs, msrs.length, true);
    msrs.forEach(([index, data], i) => {
      const at = U.KVM_MSRS_LAYOUT.entries + i * U.KVM_MSR_ENTRY_LAYOUT.size;
      dv.setUint32(at + U.KVM_MSR_ENTRY_LAYOUT.index, index, true);
      dv.setBigUint64(at + U.KVM_MSR_ENTRY_LAYOUT.data, data, true);
    });
    const n = this.vm.kvm.ioctl(this.fd, U.KVM_SET_MSRS, buf, 'KVM_SET_MSRS');
    if (n !== msrs.length)
      throw new UnavailableError('KVM_SET_MSRS refused an MSR', `MSR 0x${msrs[n]![0].toString(16)} (KVM accepted ${n} of ${msrs.length})`);
  }

  /** KVM_GET_MSRS for one MSR. */
  getMsr(index: number): bigint {
    const buf = new Uint8Array(U.KVM_MSRS_LAYOUT.size + U.KVM_MSR_ENTRY_LAYOUT.size);
    const dv = new DataView(buf.buffer);
    dv.setUint32(U.KVM_MSRS_LAYOUT.nmsrs, 1, true);
    dv.setUint32(U.KVM_MSRS_LAYOUT.entries + U.KVM_MSR_ENTRY_LAYOUT.index, index, true);
    const n = this.vm.kvm.ioctl(this.fd, U.KVM_GET_MSRS, buf, 'KVM_GET_MSRS');
    if (n !== 1) throw new UnavailableError('KVM_GET_MSRS failed', `MSR 0x${index.toString(16)}`);
    return dv.getBigUint64(U.KVM_MSRS_LAYOUT.entries + U.KVM_MSR_ENTRY_LAYOUT.data, true);
  }

  /** KVM_RUN once; returns the exit. */
  runOnce(): ExitInfo {
    // A signal (SIGCHLD of a finished helper, SIGINT) makes KVM_RUN return EINTR: report it as
    // KVM_EXIT_INTR and let the caller loop; SIGINT's handler closes everything once JS runs again.
    if (this.vm.kvm.ioctlRaw(this.fd, U.KVM_RUN, 0) < 0) {
      const e = this.vm.kvm.lastErrno();
      if (e === EINTR) return { reason: U.KVM_EXIT_INTR };
      throw new UnavailableError('KVM_RUN failed', errnoName(e));
    }
    const reason = this.runView.getUint32(U.KVM_RUN_LAYOUT.exit_reason, true);
    if (reason === U.KVM_EXIT_IO) {
      return {
        reason,
        port: this.runView.getUint16(U.KVM_RUN_LAYOUT['io.port'], true),
        direction: this.run[U.KVM_RUN_LAYOUT['io.direction']]!,
      };
    }
    if (reason === U.KVM_EXIT_FAIL_ENTRY || reason === U.KVM_EXIT_INTERNAL_ERROR || reason === U.KVM_EXIT_SHUTDOWN) {
      throw new UnavailableError(
        'the micro-guest could not run',
        `KVM exit reason ${reason} (suberror/hw reason ${this.runView.getBigUint64(32, true)})`,
      );
    }
    return { reason };
  }

  /** KVM_KVMCLOCK_CTRL. */
  kvmclockCtrl(): void {
    this.vm.kvm.ioctlInt(this.fd, U.KVM_KVMCLOCK_CTRL, 0, 'KVM_KVMCLOCK_CTRL');
  }

  /** KVM_SET_TSC_KHZ on the vCPU (kvm_set_tsc_khz). */
  setTscKhz(khz: number): void {
    this.vm.kvm.ioctlInt(this.fd, U.KVM_SET_TSC_KHZ, khz, 'KVM_SET_TSC_KHZ');
  }

  /** KVM_GET_TSC_KHZ on the vCPU. */
  getTscKhz(): number {
    return this.vm.kvm.ioctlInt(this.fd, U.KVM_GET_TSC_KHZ, 0, 'KVM_GET_TSC_KHZ');
  }

  /**
   * The vCPU's L1 TSC offset (KVM_VCPU_TSC_CTRL / KVM_VCPU_TSC_OFFSET device attribute), or null
   * where the attribute is unsupported. KVM writes the value through a user pointer: we point it at
   * the last 8 bytes of guest RAM's host mapping (unused by the micro-guests) and read it back there.
   */
  tscOffset(): bigint | null {
    const attr = new Uint8Array(U.KVM_DEVICE_ATTR_LAYOUT.size);
    const dv = new DataView(attr.buffer);
    dv.setUint32(U.KVM_DEVICE_ATTR_LAYOUT.group, U.KVM_VCPU_TSC_CTRL, true);
    dv.setBigUint64(U.KVM_DEVICE_ATTR_LAYOUT.attr, BigInt(U.KVM_VCPU_TSC_OFFSET), true);
    if (this.vm.kvm.checkExtension(U.KVM_CAP_VCPU_ATTRIBUTES) <= 0) return null;
    try {
      this.vm.kvm.ioctl(this.fd, U.KVM_HAS_DEVICE_ATTR, attr, 'KVM_HAS_DEVICE_ATTR');
    } catch {
      return null;
    }
    const scratch = this.vm.memSize - 8;
    dv.setBigUint64(U.KVM_DEVICE_ATTR_LAYOUT.addr, this.vm.memAddress + BigInt(scratch), true);
    this.vm.kvm.ioctl(this.fd, U.KVM_GET_DEVICE_ATTR, attr, 'KVM_GET_DEVICE_ATTR');
    return new DataView(this.vm.memory.buffer, this.vm.memory.byteOffset).getBigUint64(scratch, true);
  }
}

export type { Cycles };
