// The vCPU thread: a worker that maps the vCPU's kvm_run and loops on KVM_RUN. Port and MMIO exits go
// to the main thread, which owns the device models: the worker posts the exit and waits (Atomics.wait)
// on a shared control block until the main thread has dispatched it and written the answer. The main
// thread stops the loop by setting the stop word, kvm_run.immediate_exit, and a signal to this thread
// (KVM_RUN returns EINTR on a pending signal, arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_run).
import { parentPort, workerData } from 'node:worker_threads';
import { CTL, EXIT, MARK_PORT, MAX_MARKS, MAX_TICKS, TICK_PORT, type VcpuWorkerData } from './vcpu-protocol.ts';
import { errnoName, libc, MAP_SHARED, PROT_READ, PROT_WRITE } from './sys.ts';
import * as U from './uapi.ts';

const EINTR = 4;
const SYS_gettid = 186;
const data = workerData as VcpuWorkerData;
const ctl = new Int32Array(data.control);
const stamps = new BigInt64Array(data.stamps);
const c = libc();
ctl[CTL.tid] = c.syscall0(SYS_gettid);
const ptr = c.mmap(data.mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, data.vcpuFd, 0);
const run = new Uint8Array(c.view(ptr, data.mmapSize));
const rv = new DataView(run.buffer);

function post(kind: number, extra: Record<string, unknown> = {}): void {
  parentPort!.postMessage({ kind, t: process.hrtime.bigint(), ...extra });
}

/** Hand one access to the main thread and wait for its answer; returns the value read (reads). */
function dispatch(kind: number, addr: bigint, size: number, write: boolean, value: bigint): bigint {
  Atomics.store(ctl, CTL.state, 1);
  post(kind, { addr, size, write, value });
  while (Atomics.load(ctl, CTL.state) === 1) Atomics.wait(ctl, CTL.state, 1, 1000);
  const lo = BigInt(ctl[CTL.dataLo]! >>> 0);
  const hi = BigInt(ctl[CTL.dataHi]! >>> 0);
  return (hi << 32n) | lo;
}

function loop(): void {
  for (;;) {
    if (Atomics.load(ctl, CTL.stop)) return;
    if (Atomics.load(ctl, CTL.pause)) {
      Atomics.store(ctl, CTL.paused, 1);
      while (Atomics.load(ctl, CTL.pause) && !Atomics.load(ctl, CTL.stop)) Atomics.wait(ctl, CTL.pause, 1, 100);
      // the kick may have set immediate_exit after we saw the pause word: clear it only now
      run[U.KVM_RUN_LAYOUT.immediate_exit] = 0;
      Atomics.store(ctl, CTL.paused, 0);
      continue;
    }
    if (c.ioctlInt(data.vcpuFd, U.KVM_RUN, 0) < 0) {
      const e = c.errno();
      if (e === EINTR) {
        // a kick with nothing to do (stop and pause are clear): a stale immediate_exit would spin here
        if (!Atomics.load(ctl, CTL.stop) && !Atomics.load(ctl, CTL.pause)) run[U.KVM_RUN_LAYOUT.immediate_exit] = 0;
        continue;
      }
      throw new Error(`KVM_RUN failed: ${errnoName(e)}`);
    }
    ctl[CTL.exits]!++;
    const reason = rv.getUint32(U.KVM_RUN_LAYOUT.exit_reason, true);
    if (reason === U.KVM_EXIT_IO) {
      const dir = run[U.KVM_RUN_LAYOUT['io.direction']]!;
      const size = run[U.KVM_RUN_LAYOUT['io.size']]!;
      const port = rv.getUint16(U.KVM_RUN_LAYOUT['io.port'], true);
      const count = rv.getUint32(U.KVM_RUN_LAYOUT['io.count'], true);
      let off = Number(rv.getBigUint64(U.KVM_RUN_LAYOUT['io.data_offset'], true));
      if (dir === U.KVM_EXIT_IO_OUT && (port === TICK_PORT || port === MARK_PORT)) {
        // timestamped here, at the exit, without waiting for the main thread
        const t = process.hrtime.bigint();
        if (port === MARK_PORT && ctl[CTL.marks]! < MAX_MARKS) stamps[ctl[CTL.marks]!++] = t;
        if (port === TICK_PORT && ctl[CTL.ticks]! < MAX_TICKS) stamps[MAX_MARKS + ctl[CTL.ticks]!++] = t;
        continue;
      }
      for (let i = 0; i < count; i++, off += size) {
        if (dir === U.KVM_EXIT_IO_OUT) {
          const v = size === 1 ? rv.getUint8(off) : size === 2 ? rv.getUint16(off, true) : rv.getUint32(off, true);
          dispatch(EXIT.io, BigInt(port), size, true, BigInt(v));
        } else {
          const v = Number(dispatch(EXIT.io, BigInt(port), size, false, 0n) & 0xffff_ffffn);
          if (size === 1) rv.setUint8(off, v);
          else if (size === 2) rv.setUint16(off, v, true);
          else rv.setUint32(off, v, true);
        }
      }
    } else if (reason === U.KVM_EXIT_MMIO) {
      const addr = rv.getBigUint64(U.KVM_RUN_LAYOUT['mmio.phys_addr'], true);
      const len = rv.getUint32(U.KVM_RUN_LAYOUT['mmio.len'], true);
      const isWrite = run[U.KVM_RUN_LAYOUT['mmio.is_write']]! !== 0;
      const at = U.KVM_RUN_LAYOUT['mmio.data'];
      let v = 0n;
      if (isWrite) for (let i = len - 1; i >= 0; i--) v = (v << 8n) | BigInt(run[at + i]!);
      const r = dispatch(EXIT.mmio, addr, len, isWrite, v);
      if (!isWrite) for (let i = 0; i < len; i++) run[at + i] = Number((r >> BigInt(8 * i)) & 0xffn);
    } else if (reason === U.KVM_EXIT_HLT) {
      post(EXIT.hlt); // the guest halted with interrupts off: nothing more will happen
      return;
    } else if (reason === U.KVM_EXIT_INTR) {
      // a signal or immediate_exit: loop and look at the stop word
    } else {
      // KVM_EXIT_INTERNAL_ERROR: suberror 1 is an emulation failure; the RIP tells which guest instruction
      const sub = rv.getUint32(U.KVM_RUN_LAYOUT['internal.suberror'], true);
      throw new Error(`unexpected KVM exit reason ${reason} (suberror ${sub})`);
    }
  }
}

try {
  loop();
  post(EXIT.stopped);
} catch (err) {
  post(EXIT.error, { message: (err as Error).message });
} finally {
  c.munmap(ptr, data.mmapSize);
}
