import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/core/prng.ts';
import type { Ns } from '../../src/core/index.ts';
import { InputError } from '../../src/core/errors.ts';
import { HostCpus, schedBaseSliceNs } from '../../src/world/host-cpus.ts';
import { parseScenarioText, resolveScenario } from '../../src/world/index.ts';
import { FifoRoundRobin } from './fifo-round-robin.ts';

test("the slice is the host kernel's sysctl_sched_base_slice: 0.70 ms × (1 + ilog2(min(ncpus, 8)))", () => {
  const ms = (cpus: number) => Number(schedBaseSliceNs(cpus)) / 1e6;
  assert.deepEqual([1, 2, 3, 4, 7, 8, 64].map(ms), [0.7, 1.4, 1.4, 2.1, 2.1, 2.8, 2.8]);
});

/** A host with busy threads and VMs whose threads come and go, against the FIFO run queue stepped slot by slot. */
function compare(cpus: number, busy: number, vms: number[], sliceNs: Ns, seed: number): number {
  let now = 0n;
  const host = new HostCpus({ cpus, busyThreads: busy, sliceNs }, () => now);
  const names: string[] = Array.from({ length: busy }, (_, i) => `busy${i}`);
  const runnable = new Set(names);
  const oracle = new FifoRoundRobin(cpus, sliceNs, names);
  const order = (): string[] => names.filter((n) => runnable.has(n));
  const schedules: { name: string; s: ReturnType<HostCpus['vcpuThreads']>; cpu: number }[] = [];
  const prng = new Prng(seed);
  let checks = 0;
  const vmThreads: string[][] = [];
  for (let step = 0; step < 400; step++) {
    // mostly small steps (inside a slot, across a few), sometimes a long one
    const r = prng.float();
    now += r < 0.1 ? BigInt(Math.floor(prng.float() * 50)) * sliceNs + 17n : BigInt(Math.floor(prng.float() * Number(sliceNs) * 3));
    oracle.advanceTo(now);
    if (step % 40 === 5 && vmThreads.length < vms.length) {
      // a VM is created: its vCPU threads are runnable from now
      const v = vmThreads.length;
      const ths = Array.from({ length: vms[v]! }, (_, c) => `vm${v}/vcpu${c}`);
      vmThreads.push(ths);
      names.push(...ths);
      for (const n of ths) runnable.add(n);
      const s = host.vcpuThreads(ths.length, `vm${v}`);
      ths.forEach((name, cpu) => schedules.push({ name, s, cpu }));
      oracle.setRunnable(order());
    } else if (step % 40 === 25 && vmThreads.length > 0) {
      // the VMM stops or restarts one VM's threads
      const v = step % vmThreads.length;
      const ths = vmThreads[v]!;
      const stop = runnable.has(ths[0]!);
      for (const n of ths) stop ? runnable.delete(n) : runnable.add(n);
      schedules.find((x) => x.name === ths[0])!.s.setRunnable(!stop);
      oracle.setRunnable(order());
    }
    for (const { name, s, cpu } of schedules) {
      const running = oracle.running(name, now);
      assert.equal(s.running(cpu, now), running, `${name} running at ${now}`);
      assert.equal(s.runDelay(cpu, now), oracle.runDelay(name, now), `${name} run_delay at ${now}`);
      if (runnable.has(name)) assert.equal(s.nextRun(cpu, now), oracle.nextRun(name, now), `${name} next run after ${now}`);
      checks++;
    }
  }
  return checks;
}

test('running, next run and run_delay equal a FIFO run queue stepped slot by slot, to the ns, as VMs start, stop and restart', () => {
  assert.ok(compare(2, 2, [2, 2], 1_400_000n, 1) > 1000); // 6 threads on 2 CPUs
  assert.ok(compare(3, 1, [2, 3, 1], 1_400_000n, 2) > 1000); // 7 on 3: gcd 1
  assert.ok(compare(4, 0, [2, 2, 2], 2_100_000n, 3) > 1000); // 6 on 4
  assert.ok(compare(8, 0, [2, 1], 2_800_000n, 4) > 0); // never more threads than CPUs: nobody waits
  assert.ok(compare(1, 3, [1, 1], 7n, 5) > 500); // a 7-ns slice: slots far shorter than the steps
});

test('over N/gcd(N, C) slots every thread runs C/gcd of them: 6 threads on 2 CPUs each wait exactly 2/3', () => {
  let now = 0n;
  const host = new HostCpus({ cpus: 2, busyThreads: 2 }, () => now);
  const a = host.vcpuThreads(2, 'a');
  const b = host.vcpuThreads(2, 'b');
  const S = host.sliceNs;
  assert.equal(S, 1_400_000n);
  // the cycle is 3 slots: busy threads in slot 0, a's vCPUs in slot 1, b's in slot 2
  assert.deepEqual(
    [0n, S, 2n * S].map((t) => [a.running(0, t), a.running(1, t), b.running(0, t), b.running(1, t)]),
    [
      [false, false, false, false],
      [true, true, false, false],
      [false, false, true, true],
    ],
  );
  now = 3_000_000n * S; // a million cycles
  for (const [s, c] of [
    [a, 0],
    [a, 1],
    [b, 0],
    [b, 1],
  ] as const)
    assert.equal(s.runDelay(c, now), 2_000_000n * S);
  // a VM stopped: its threads wait for nothing, the other four share the CPUs 1:1
  b.setRunnable(false);
  now += 1_000n * S;
  assert.equal(a.runDelay(0, now), 2_000_000n * S + 500n * S);
  assert.equal(b.runDelay(0, now), 2_000_000n * S);
  assert.equal(b.running(0, now), false);
  assert.equal(host.runnableThreads, 4);
});

test('queries before the current epoch are refused (the closed form only knows the epoch since the last change)', () => {
  let now = 10n;
  const host = new HostCpus({ cpus: 1, busyThreads: 1 }, () => now);
  const v = host.vcpuThreads(1);
  assert.throws(() => v.runDelay(0, 9n), /before its current epoch/);
  now = 11n;
  assert.equal(v.runDelay(0, 11n) >= 0n, true);
});

test('hosts[].cpus and hosts[].load: bad values are one line naming the path and what was expected', () => {
  const yaml = (host: string) =>
    `duration: 1s\nhosts:\n  - name: h\n    tsc: { freq_khz: 2596136 }\n${host}\nvms:\n  - { name: v, host: h }\n`;
  const err = (host: string) => {
    try {
      parseScenarioText(yaml(host), 's.yaml');
    } catch (e) {
      assert.ok(e instanceof InputError);
      return `${e.where}: ${e.path}: ${e.message}`;
    }
    assert.fail('accepted');
  };
  assert.match(err('    cpus: 0'), /^s\.yaml:\d+: hosts\[0\]\.cpus: must be ≥ 1, got 0$/);
  assert.match(err('    cpus: 1.5'), /^s\.yaml:\d+: hosts\[0\]\.cpus: expected a whole number, got 1\.5$/);
  assert.match(err('    cpus: 2\n    load: { busy_threads: -1 }'), /^s\.yaml:\d+: hosts\[0\]\.load\.busy_threads: must be ≥ 0, got -1$/);
  assert.match(err('    cpus: 2\n    load: { threads: 2 }'), /^s\.yaml:\d+: hosts\[0\]\.load\.threads: unknown key "threads"$/);
  assert.match(err('    load: { busy_threads: 2 }'), /^s\.yaml:\d+: hosts\[0\]\.load: has no effect without hosts\[\]\.cpus/);
  const ok = resolveScenario(parseScenarioText(yaml('    cpus: 2\n    load: { busy_threads: 3 }'), 's.yaml'));
  assert.deepEqual(ok.hosts[0]!.cpuShare, { cpus: 2, busyThreads: 3 });
  assert.equal(resolveScenario(parseScenarioText(yaml(''), 's.yaml')).hosts[0]!.cpuShare, undefined);
});
