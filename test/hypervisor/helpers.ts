// A host whose TSC the test moves by hand (no wall clock anywhere).
import { LinuxHostTimekeeper } from '../../src/hypervisor/index.ts';

export class ManualHost {
  tsc: bigint;
  readonly tk: LinuxHostTimekeeper;
  constructor(tscKhz = 2_596_136, startTsc = 1_000_000_000_000n, opts: { realtimeAtBootNs?: bigint; clocksourceIsTsc?: boolean } = {}) {
    this.tsc = startTsc;
    this.tk = new LinuxHostTimekeeper({
      tscKhz,
      rdtsc: () => this.tsc,
      tscAtBoot: 0n,
      realtimeAtBootNs: opts.realtimeAtBootNs ?? 1_700_000_000_000_000_000n,
      clocksourceIsTsc: opts.clocksourceIsTsc ?? true,
    });
  }
  advance(cycles: bigint): void {
    this.tsc += cycles;
  }
}
