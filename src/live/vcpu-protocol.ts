// The control block shared by the main thread and a vCPU worker (vcpu-worker.ts): one Int32Array over
// a SharedArrayBuffer, and the kinds of message the worker posts.

/** Word indices in the control block. */
export const CTL = {
  /** 0: guest running; 1: an exit waits for the main thread; 2: answered. */
  state: 0,
  /** Set by the main thread: leave the KVM_RUN loop. */
  stop: 1,
  /** Answer to a read: low and high 32 bits. */
  dataLo: 2,
  dataHi: 3,
  /** The worker's kernel thread id (for the kick signal). */
  tid: 4,
  /** KVM_RUN returns so far. */
  exits: 5,
  /** Timestamps kept in `stamps` for TICK_PORT and MARK_PORT writes. */
  ticks: 6,
  marks: 7,
  /** Set by the main thread: leave KVM_RUN and wait until it is cleared (pause). */
  pause: 8,
  /** Set by the worker while it waits paused. */
  paused: 9,
  size: 10,
} as const;

export const EXIT = { io: 1, mmio: 2, hlt: 3, stopped: 4, error: 5 } as const;

/** Ports the worker timestamps itself (no round trip to the main thread): a guest's tick and mark. */
export const TICK_PORT = 0x510;
export const MARK_PORT = 0x511;
/** `stamps` holds MAX_MARKS mark times, then up to MAX_TICKS tick times (BigInt64, host CLOCK_MONOTONIC ns). */
export const MAX_MARKS = 64;
export const MAX_TICKS = 1 << 17;

export interface VcpuWorkerData {
  vcpuFd: number;
  mmapSize: number;
  control: SharedArrayBuffer;
  stamps: SharedArrayBuffer;
}

export interface VcpuExitMessage {
  kind: number;
  /** Host CLOCK_MONOTONIC at the exit, ns (process.hrtime.bigint in the worker). */
  t: bigint;
  addr?: bigint;
  size?: number;
  write?: boolean;
  value?: bigint;
  message?: string;
}
