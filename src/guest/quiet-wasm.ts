// The timekeeper's updates in a quiet span as one WebAssembly loop (wasm/quiet-updates.ts, AssemblyScript,
// built into quiet-updates-wasm.ts by scripts/build-wasm.mjs). Timekeeper.advanceEvery copies its slots
// and NtpState's in, the loop runs the updates on i64 — the same integers as advance() on BigInt64Array
// slots (test/guest/quiet-wasm.test.ts) — and the slots are copied back. One instance per thread: its
// memory holds one timekeeper's state, only during a call.
import type { TscPlan } from '../core/index.ts';
import { QUIET_UPDATES_WASM_BASE64 } from './quiet-updates-wasm.ts';

/** Slot index (in an i64 view of the loop's memory) of Timekeeper.st, NtpState.st and the loop's I/O. */
const WASM_TK = 0;
const WASM_NTP = 64;
/** How many slots Timekeeper.st and NtpState.st have (their SLOTS). */
export const TK_SLOTS = 37;
export const NTP_SLOTS = 12;
const IO = 128;
// I/O slots: the plan, and the clocksource's max_raw_delta and whether its mask is 64 bits
const SEG_START = IO + 0;
const SEG_PHASE = IO + 1;
const RATE_HI = IO + 2;
const RATE_LO = IO + 3;
const RATE_ZERO = IO + 4;
const KHZ = IO + 5;
const INT64_BELOW = IO + 6;
const ADD = IO + 7;
export const IO_MAX_RAW_DELTA = IO + 8;
export const IO_MASK64 = IO + 9;
// 32-bit flags (QuietLoop.flags, at byte FLAGS_BYTE: wasm/quiet-updates.ts FLAGS): the timekeeper's
// fields outside its slots, and the outputs
const FLAGS_BYTE = 1536;
/** ntp_error's high part, clamped to ±2^30 (the loop reads only its sign and adds a carry). */
export const FLAG_ERR_HIGH = 0;
export const FLAG_SKIP = 1;
export const FLAG_ADVANCES = 2;
export const FLAG_UNSYNC = 3;
/** Why run() stopped early: 1, the next update did not start; 2, it accumulated and left the adjustment. */
export const FLAG_STATUS = 4;

/** The loop's exports: run(n, t0, interval) runs up to n updates, returns how many (FLAG_STATUS: why it stopped). */
export interface QuietLoop {
  readonly mem: BigInt64Array;
  /** Timekeeper.st's and NtpState.st's slots in mem. */
  readonly tk: BigInt64Array;
  readonly ntp: BigInt64Array;
  readonly flags: Int32Array;
  /** The plan last written into mem (setPlan skips a rewrite of the same one). */
  plan: TscPlan | null;
  run(n: number, t0: bigint, interval: bigint): number;
}

// the WebAssembly global (lib ES2022 and @types/node 20 leave its classes out)
const wasm = (
  globalThis as unknown as {
    WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object, imports: object) => { exports: unknown } };
  }
).WebAssembly;

let loop: QuietLoop | null | undefined;
let enabled = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.TIMEVISOR_NO_WASM !== '1';

/** Switch the loop off (the TypeScript paths run instead: benchmarks, tests). TIMEVISOR_NO_WASM=1 starts it off. */
export function setQuietWasm(on: boolean): void {
  enabled = on;
}

/** This thread's loop, instantiated on first use; null when switched off. */
export function quietLoop(): QuietLoop | null {
  if (!enabled) return null;
  if (loop === undefined) {
    const bytes = Uint8Array.from(atob(QUIET_UPDATES_WASM_BASE64), (c) => c.charCodeAt(0));
    const exports = new wasm.Instance(new wasm.Module(bytes), {}).exports as {
      memory: { buffer: ArrayBuffer };
      run(n: number, t0: bigint, interval: bigint): number;
    };
    const buffer = exports.memory.buffer;
    loop = {
      mem: new BigInt64Array(buffer),
      tk: new BigInt64Array(buffer, WASM_TK * 8, TK_SLOTS),
      ntp: new BigInt64Array(buffer, WASM_NTP * 8, NTP_SLOTS),
      flags: new Int32Array(buffer, FLAGS_BYTE, 8),
      plan: null,
      run: exports.run,
    };
  }
  return loop;
}

/** Write `plan` into the loop's I/O slots (unless it is the one there). */
export function setPlan(loop: QuietLoop, plan: TscPlan): void {
  if (loop.plan === plan) return;
  loop.plan = plan;
  const mem = loop.mem;
  mem[SEG_START] = plan.segStart;
  mem[SEG_PHASE] = plan.segPhase;
  mem[RATE_HI] = plan.rateHi;
  mem[RATE_LO] = plan.rateLo;
  mem[RATE_ZERO] = plan.rateZero ? 1n : 0n;
  mem[KHZ] = plan.khz;
  mem[INT64_BELOW] = plan.int64Below;
  mem[ADD] = plan.add;
}
