// Quiet spans below what a scenario reports: after a span the VM's whole guest RAM (pvclock and steal-time
// records with their version counters), each vCPU's KVM state and the guest's clocks are what event-by-event
// expiries leave, and the engine has counted the same events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Ns } from '../../src/core/time.ts';
import { parseScenarioText } from '../../src/world/scenario.ts';
import { resolveScenario } from '../../src/world/resolve.ts';
import { World } from '../../src/world/world.ts';

const SEC = 1_000_000_000n;
/** KvmVm fields that link to other objects (compared on their own) rather than hold its state. */
const KVM_LINKS = new Set(['host', 'memory', 'scheduler', 'updateWork', 'syncWork', 'vcpus', 'trace']);

function runVm(yaml: string, quiet: boolean, stops: Ns[]) {
  const r = resolveScenario(parseScenarioText(yaml, 'test'));
  const world = new World(r);
  world.engine.quietSpans = quiet;
  const b = world.bootVm(r.vms[0]!);
  const out: string[] = [];
  for (const t of stops) {
    world.engine.run(t);
    const vm = b.vm;
    const g = b.guest;
    out.push(
      JSON.stringify(
        {
          t,
          events: world.engine.eventsDispatched,
          ram: Buffer.from(vm.memory.bytes).toString('base64'),
          vcpus: vm.vcpus.map((v) => ({ ...v, vm: undefined, requests: [...(v as unknown as { requests: Set<string> }).requests] })),
          // KVM's VM-wide clock state and its delayed work (kvmclock_sync_fn runs inside spans)
          kvm: vm.kvm && {
            ...Object.fromEntries(Object.entries(vm.kvm).filter(([k]) => !KVM_LINKS.has(k))),
            syncAt: vm.kvm.kvmclockSyncAt,
            updateAt: vm.kvm.kvmclockUpdateAt,
          },
          next: world.engine.nextEventTime(),
          clocks: (['realtime', 'monotonic', 'boottime', 'monotonic_raw'] as const).map((id) => g.clockGettime(id)),
          stat: g.procStat(),
        },
        (_k, x) => (typeof x === 'bigint' ? `${x}n` : x),
      ),
    );
  }
  return out;
}

const yaml = (vm: string, host = '') => `
name: t
duration: 1d
hosts: [{ name: h, tsc: { freq_khz: 2596136 }, oscillator: { ppm: 7 }${host} }]
vms: [{ name: v, host: h${vm} }]
`;

for (const [name, vm, ...rest] of [
  ['one vCPU on the tsc clocksource', ''],
  ['two vCPUs on kvm-clock', ", vcpus: 2, cmdline: 'clocksource=kvm-clock'"],
  ['four vCPUs, 10-s updates', ', vcpus: 4, update_interval: 10s'],
  // what a span declines: RDTSC exits, a skewed host (stable or not)
  ['RDTSC exiting with offset compensation', ', rdtsc_exiting: { exit_cost: 1.2us, offset_compensation: true, rate: 10000 }'],
  ['a skewed host that trusts its TSC', ', vcpus: 4', ', tsc_skew: { per_cpu_ns: [0, 1500, 3000, 4500], tsc_reliable: true }'],
  ['a skewed host that marks its TSC unstable', ', vcpus: 2', ', tsc_skew: { per_cpu_ns: [0, 3000] }'],
] as const) {
  test(`after quiet spans a VM's RAM, vCPUs and clocks are what event-by-event expiries leave: ${name}`, () => {
    const host = (rest as readonly string[])[0] ?? '';
    // stops inside and at the ends of spans, one far past the boot (a span of hours)
    // and around KVM's 300-s kvmclock syncs: at one, before and after the entry that handles it
    const stops = [3n * SEC, 10n * SEC + 1n, 61n * SEC, 300n * SEC, 300n * SEC + 1n, 301n * SEC, 301n * SEC + 1n, 3600n * SEC];
    stops.push(3601n * SEC + 500_000_000n, 4n * 3600n * SEC, 4n * 3600n * SEC + 301n * SEC + 1n, 23n * 3600n * SEC);
    const slow = runVm(yaml(vm, host), false, stops);
    const fast = runVm(yaml(vm, host), true, stops);
    for (let i = 0; i < stops.length; i++) assert.equal(fast[i], slow[i], `at ${stops[i]} ns`);
  });
}
