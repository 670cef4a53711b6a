// FFI overhead of the live backend: one KVM_RUN round trip (PIO exit of the micro-guest) through the
// TypeScript backend (koffi) vs the same loop in C, built here at bench time from
// test/fixtures/c/kvm_pio_bench.c. Alternating rounds, best of each, so background load hits both.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Bench } from './run.ts';
import { compileC, cToolchainMissing } from '../src/live/cc.ts';
import { kvmUnavailableReason, LiveKvm } from '../src/live/kvm.ts';
import { bootMicroGuest } from '../src/live/micro-guest.ts';
import { buildGuest } from '../src/live/guest-build.ts';
import { LiveMachine, TICK_PORT } from '../src/live/vmm.ts';

const VMM_EXITS = 5_000;

/** ns per guest port write through the VMM: handled in the vCPU thread, or dispatched to the main thread. */
async function vmmRound(port: number): Promise<number> {
  const k = LiveKvm.open();
  try {
    const m = new LiveMachine(k, { guest: buildGuest('pio'), params: [port, VMM_EXITS] });
    m.start();
    await m.waitForLine(/^pio done$/, 60_000);
    const [a, b] = m.markTimes;
    await m.stop();
    return Number(b! - a!) / VMM_EXITS;
  } finally {
    k.close();
  }
}

const EXITS = 20_000;
const ROUNDS = 3;

function tsRound(kvm: LiveKvm): number {
  const g = bootMicroGuest(kvm, { steal: false });
  for (let i = 0; i < EXITS / 10; i++) g.vcpu.runOnce();
  const t0 = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < EXITS; i++) sink += g.vcpu.runOnce().port ?? 1000;
  const ns = Number(process.hrtime.bigint() - t0) / EXITS;
  if (sink === 0) throw new Error('unreachable');
  return ns;
}

const bench: Bench = async (report) => {
  const noKvm = kvmUnavailableReason();
  const noCc = cToolchainMissing();
  if (noKvm || noCc) {
    console.log(`kvm bench skipped: ${noKvm ?? noCc}`);
    return;
  }
  const prog = compileC(fileURLToPath(new URL('../test/fixtures/c/kvm_pio_bench.c', import.meta.url)), 'kvm_pio_bench');
  const kvm = LiveKvm.open();
  try {
    const ts: number[] = [];
    const c: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const out = spawnSync(prog.path, [String(EXITS)], { encoding: 'utf8' });
      const m = /ns_per_exit ([\d.]+)/.exec(out.stdout);
      if (out.status !== 0 || !m) throw new Error(`C bench failed: ${out.stderr}`);
      c.push(Number(m[1]));
      ts.push(tsRound(kvm));
    }
    const bestTs = Math.min(...ts);
    const bestC = Math.min(...c);
    report({
      name: 'KVM_RUN PIO exit round trip, TypeScript (koffi)',
      value: bestTs / 1000,
      unit: 'µs/exit',
      note: `best of ${ROUNDS}×${EXITS}`,
    });
    report({ name: 'KVM_RUN PIO exit round trip, C', value: bestC / 1000, unit: 'µs/exit', note: `best of ${ROUNDS}×${EXITS}` });
    const local: number[] = [];
    const main: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      local.push(await vmmRound(TICK_PORT));
      main.push(await vmmRound(0x80));
    }
    report({
      name: 'VMM port exit handled in the vCPU worker thread',
      value: Math.min(...local) / 1000,
      unit: 'µs/exit',
      note: `best of ${ROUNDS}×${VMM_EXITS}`,
    });
    report({
      name: 'VMM port exit dispatched to the main thread (postMessage + Atomics.wait)',
      value: Math.min(...main) / 1000,
      unit: 'µs/exit',
      note: `best of ${ROUNDS}×${VMM_EXITS}`,
    });
    report({
      name: 'FFI overhead: TypeScript / C',
      value: bestTs / bestC,
      unit: '×',
      note: `goal ≤ 1.10; ${((bestTs - bestC) / 1000).toFixed(2)} µs/exit extra`,
    });
  } finally {
    kvm.close();
    prog.dispose();
  }
};
export default bench;
