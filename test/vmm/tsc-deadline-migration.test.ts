// A TSC-deadline tick across a live migration between hosts of different TSC rates (issue 12). The guest
// (kvm-clock, NOHZ) programs deadlines with the tsc_khz it booted with; KVM converts them with the vCPU's
// virtual_tsc_khz in the software timer (lapic.c start_sw_tscdeadline) and counts guest TSC cycles in the VMX
// preemption timer (vmx.c vmx_set_hv_timer: the host delta through the scaling ratio). QEMU sends the source's
// TSC kHz (KVM_SET_TSC_KHZ); kvm_set_tsc_khz sets virtual_tsc_khz to it even where set_tsc_khz then fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, NSEC_PER_SEC, TraceRecorder, type Ns } from '../../src/core/index.ts';
import { KvmLapic, LOCAL_TIMER_VECTOR } from '../../src/hypervisor/index.ts';
import { MSR_IA32_TSC_DEADLINE, X2APIC_LVTT } from '../../src/devices/index.ts';
import { clockeventsConfig } from '../../src/guest/index.ts';
import { bootVm, kernelPreset, machineProfile, VmLifecycle } from '../../src/vmm/index.ts';

interface Migrated {
  /** Timer interrupts (vector 0xec) taken, by time, from 1 s after the migration for 1 s. */
  irqs: Ns[];
  updates: number;
  virtualTscKhz: number;
  guestTscKhz: number;
  tscKhzError: string | null;
  tscCatchup: boolean;
  /** kvm_msr IA32_TSC_DEADLINE writes and start_hv_timer delays in that second. */
  deadlines: bigint[];
  hvDelays: number[];
}

/** A kvm-clock guest booted on an Intel host at `fromKhz`, migrated after 3 s to one at `toKhz`. */
function migrate(fromKhz: number, toKhz: number, tscScaling: boolean, busy: boolean): Migrated {
  const e = new Engine();
  const trace = new TraceRecorder({ enabled: true, filter: (n) => n === 'kvm_msr' || n === 'start_hv_timer' });
  const b = bootVm({
    profile: machineProfile('qemu-kvm-noinvtsc'),
    kernel: kernelPreset('distro'),
    cmdline: '',
    scheduler: e,
    trace,
    host: { vendor: 'intel', tscKhz: fromKhz },
    // a busy vCPU stays in guest mode (the hv timer); an idle one halts after each interrupt (the sw timer)
    ...(busy ? { cpuMode: () => 'user' as const } : {}),
  });
  const irqs: Ns[] = [];
  const itf = b.vm.platform.interrupts!;
  const setHandler = itf.setHandler;
  itf.setHandler = (h) =>
    setHandler((cpu, v) => {
      if (v === LOCAL_TIMER_VECTOR) irqs.push(e.now);
      h(cpu, v);
    });
  e.run(b.kernelEntryAt + 3n * NSEC_PER_SEC);
  const g = b.guest;
  const lc = new VmLifecycle(b);
  lc.pause();
  const state = b.vm.saveClockState();
  e.run(e.now + 100_000_000n);
  const out = lc.restore(
    state,
    {
      host: { ...b.vm.host, tscKhz: toKhz },
      hostTscAt: (t) => (t * BigInt(toKhz)) / 1_000_000n,
      hostRealtime: () => e.now,
      tscScaling,
      clockRealtime: false,
    },
    'migration',
  );
  e.run(e.now + NSEC_PER_SEC);
  trace.clear();
  const n0 = irqs.length;
  const u0 = g.timekeeper.advances;
  e.run(e.now + NSEC_PER_SEC);
  const v = b.vm.vcpus[0]!;
  return {
    irqs: irqs.slice(n0),
    updates: g.timekeeper.advances - u0,
    virtualTscKhz: v.virtualTscKhz,
    guestTscKhz: g.tscKhz,
    tscKhzError: out.tscKhzError,
    tscCatchup: out.tscCatchup,
    deadlines: trace.recorded.filter((x) => x.name === 'kvm_msr').map((x) => x.args!.data as bigint),
    hvDelays: trace.recorded.filter((x) => x.name === 'start_hv_timer').map((x) => x.args!.delay as number),
  };
}

const gaps = (t: Ns[]) => t.slice(1).map((x, i) => x - t[i]!);
/** The guest's lapic-deadline clockevent for tsc_khz 2,600,000: clockevents_config(tsc_khz·1000/TSC_DIVISOR). */
const SC26 = clockeventsConfig(2_600_000 * 125, 0xfn, (1n << 64n) - 1n);

test('2.6 → 3.0 GHz without TSC scaling, vCPU in guest mode: the VMX preemption timer reaches each deadline 13 % early and hrtimer_interrupt reprograms the rest, six interrupts a tick', () => {
  const r = migrate(2_600_000, 3_000_000, false, true);
  assert.match(r.tscKhzError ?? '', /below the host's 3000000 kHz/);
  assert.equal(r.virtualTscKhz, 2_600_000, 'kvm_set_tsc_khz stored it before set_tsc_khz failed');
  assert.equal(r.guestTscKhz, 2_600_000);
  assert.deepEqual(SC26, { mult: 10905190n, shift: 25n, minDeltaNs: 1000n, maxDeltaNs: 1691556412470n });
  // Derived by hand: the guest asks for delta ns → clc = delta·10905190 >> 25 deadline ticks → 8·clc TSC cycles;
  // unscaled, the preemption timer counts them at the host's 3.0 GHz: floor(8·clc / 3) ns, and the VM entry then
  // waits for the first ns at which the guest TSC (exactly 3 cycles a ns, unscaled) reads the deadline
  // (kvm_wait_lapic_expire): the interrupt comes ceil(8·clc / 3) ns after the WRMSR. kvm-clock (rescaled by
  // KVM for the new host) is right, so hrtimer_interrupt finds tick_sched_timer not yet due and programs what is
  // left, each time 2/15 of it, until the remainder is under min_delta_ns (1 µs: 324 ticks, 2592 cycles, 864 ns),
  // which overshoots by ~694 ns; the next tick starts from 4,000,000 − 694:
  //   3,999,306 ns → 1,299,774 ticks → 10,398,192 cycles → 3,466,064 ns;  533,242 ns → 173,303 ticks → 1,386,424
  //   cycles → 462,141.3 → 462,142 ns; … — the chain below computes every step the same way.
  const step = (delta: Ns) => {
    const d = delta < SC26.minDeltaNs ? SC26.minDeltaNs : delta;
    return (((d * SC26.mult) >> SC26.shift) * 8n * 1_000_000n + 2_999_999n) / 3_000_000n;
  };
  // The overshoot moves the next tick's start: from 0 ns the chain settles into two ticks that alternate
  // (overshoots 694, 695 ns), differing only in the fourth step
  const ticks = new Set<string>();
  let over = 0n;
  for (let tick = 0; tick < 7; tick++) {
    const cycle: bigint[] = [];
    let rem = 4_000_000n - over;
    while (rem > 0n) {
      const ns = step(rem);
      cycle.push(ns);
      rem -= ns;
    }
    over = -rem;
    if (tick > 0) ticks.add(cycle.join(' '));
  }
  assert.deepEqual([...ticks].sort(), ['3466064 462142 61619 8214 1096 864', '3466064 462142 61619 8216 1096 864']);
  // every tick of the second measured is one of them, gap for gap (kvm-clock, scaled for 3.0 GHz, runs 1 ns per
  // 4 ms fast against host time here, which shifts the overshoot: which of the two a tick is is not asserted)
  const g = gaps(r.irqs);
  const first = g.indexOf(3_466_064n);
  let whole = 0;
  for (let i = first; i + 6 <= g.length; i += 6, whole++)
    assert.ok(ticks.has(g.slice(i, i + 6).join(' ')), `tick at gap ${i}: ${g.slice(i, i + 6).join(' ')}`);
  assert.equal(whole, 249);
  assert.equal(r.updates, 250);
  assert.equal(r.irqs.length, 1500);
});

test('2.6 → 3.0 GHz without TSC scaling, idle vCPU: HLT moves the deadline to the software timer, which converts with virtual_tsc_khz (2.6 GHz) and fires on kvm-clock time', () => {
  const r = migrate(2_600_000, 3_000_000, false, false);
  assert.equal(r.virtualTscKhz, 2_600_000);
  // start_sw_tscdeadline: ns = cycles · 1e6 / virtual_tsc_khz undoes the guest's own 2.6 GHz conversion, so the
  // deadline's ns are the guest's (truncated twice: a few ns early); the TSC, really at 3.0 GHz, is long past the
  // deadline then, so the VM entry does not wait. The early interrupt is followed by min_delta_ns (1 µs: 324 ticks,
  // 2592 cycles) → 2592·1e6/2,600,000 = 996 ns
  assert.equal(r.updates, 250);
  assert.equal(r.irqs.length, 500);
  const g = gaps(r.irqs);
  assert.ok(
    g.every((x) => x === 996n || (x >= 3_999_000n && x <= 4_000_000n)),
    `gaps ${[...new Set(g)].join(' ')}`,
  );
  assert.equal(g.filter((x) => x === 996n).length, 250);
});

test('2.6 → 3.0 GHz with TSC scaling: the guest TSC runs at 2.6 GHz, the preemption timer converts through the ratio and the tick keeps its source-host shape', () => {
  const r = migrate(2_600_000, 3_000_000, true, true);
  assert.equal(r.tscKhzError, null);
  assert.equal(r.virtualTscKhz, 2_600_000);
  // ratio = (1 << 48) · 2,600,000 / 3,000,000 = 243,944,979,815,901; the 1 µs min-delta step: 2592 guest cycles →
  // (2592 << 48) / ratio = 2990 host cycles → 2990·1e6/3,000,000 = 996 ns for the preemption timer; the guest TSC
  // (3 host cycles a ns through the ratio) has then moved 2589 or 2590 cycles (2589.6 and the phase), short of the
  // deadline, so the VM entry waits for the first ns at which it reads it (kvm_wait_lapic_expire): after 997 ns it
  // has moved 2592 or 2593 (2592.2 and the phase): the step is 997 ns
  assert.equal((2592n << 48n) / 243_944_979_815_901n, 2990n);
  assert.equal((3n * 996n * 243_944_979_815_901n) >> 48n, 2589n);
  assert.equal((3n * 997n * 243_944_979_815_901n) >> 48n, 2592n);
  assert.ok(r.irqs.length < 500 && r.irqs.length >= 250, `irqs ${r.irqs.length}`);
  assert.equal(r.updates, 250);
  const g = gaps(r.irqs);
  assert.ok(
    g.every((x) => x === 997n || (x >= 3_999_000n && x <= 4_000_000n)),
    `gaps ${[...new Set(g)].join(' ')}`,
  );
});

test('3.0 → 2.6 GHz without TSC scaling: always_catchup keeps the guest TSC at 3.0 GHz on entries, but the preemption timer counts host cycles at 2.6 GHz: every tick 533,334 ns late', () => {
  const r = migrate(3_000_000, 2_600_000, false, true);
  assert.equal(r.tscKhzError, null);
  assert.equal(r.tscCatchup, true);
  assert.equal(r.virtualTscKhz, 3_000_000);
  assert.equal(r.guestTscKhz, 3_000_000);
  // Derived by hand: a deadline D guest cycles ahead is D host cycles for the unscaled preemption timer, floor(D / 2.6)
  // ns at 2.6 GHz. The late interrupt finds tick_sched_timer overdue; hrtimer_forward keeps the 4 ms grid, so the
  // guest asks for the rest of the period, D = 4 ms·2.6 GHz at the fixed point: every interval is 4,000,000 ns,
  // D = 10,400,000 cycles, which the guest (3.0 GHz) meant as 10,400,000/3 = 3,466,666 ns: each tick comes
  // 4,000,000 − 3,466,666 = 533,334 ns after its expiry.
  // Around the fixed point kvm-clock's drift against host time (1 ns here and there) can move a deadline by one
  // deadline tick (8 cycles: 3.08 ns at 2.6 GHz): D = 10,400,008 → floor(D / 2.6) = 4,000,003 ns, at which the TSC
  // has moved 10,400,007.8 + the phase, the deadline: 3 ns late; the guest then asks for 3 ns (9 cycles → one tick)
  // less, D = 10,399,992 → 3,999,996 ns, at which the TSC has moved 10,399,989.6 + the phase, short of it, so the
  // VM entry waits the first ns it reads it (kvm_wait_lapic_expire): 3,999,997 ns, back on the 4 ms grid.
  const deltas = gaps(r.deadlines);
  assert.deepEqual([...new Set(deltas)].sort(), [10_399_992n, 10_400_000n, 10_400_008n]);
  assert.deepEqual(
    [...new Set(r.hvDelays)].sort(),
    [10_399_992n, 10_400_000n, 10_400_008n].map((d) => Number((d * 1_000_000n) / 2_600_000n)),
  );
  const g = gaps(r.irqs);
  assert.deepEqual([...new Set(g)].sort(), [3_999_997n, 4_000_000n, 4_000_003n]);
  g.forEach((x, i) => {
    if (x === 4_000_003n && i + 1 < g.length) assert.equal(g[i + 1], 3_999_997n, `gap ${i + 1}`);
    if (x === 3_999_997n) assert.equal(g[i - 1], 4_000_003n, `gap ${i - 1}`);
  });
  assert.equal(deltas.filter((d) => d === 10_400_000n).length > deltas.length / 2, true, 'mostly the fixed point');
  assert.equal(4_000_000n - 10_400_000n / 3n, 533_334n);
  assert.equal(r.updates, 250);
});

test("KvmLapic converts a TSC deadline with the vCPU's virtual_tsc_khz at the WRMSR, not the rate it was created with", () => {
  const e = new Engine();
  let khz = 2_600_000;
  let base = 0n; // guest TSC = base + (now − t0)·khz
  let t0 = 0n;
  const tsc = () => base + ((e.now - t0) * BigInt(khz)) / 1_000_000n;
  const taken: Ns[] = [];
  const lapic: KvmLapic = new KvmLapic({
    scheduler: e,
    vcpuId: 0,
    tscKhz: () => khz,
    guestTsc: tsc,
    hvTimer: false,
    running: () => true,
    nextRun: () => e.now,
    inject: (v) => {
      taken.push(e.now);
      lapic.eoi(v);
    },
    name: 'vm0/vcpu0',
  });
  lapic.wrmsr(X2APIC_LVTT, BigInt(LOCAL_TIMER_VECTOR | (2 << 17)));
  e.run(1_000_000n);
  // KVM_SET_TSC_KHZ 3,000,000 with a TSC that now runs at that rate (scaling)
  base = tsc();
  t0 = e.now;
  khz = 3_000_000;
  lapic.wrmsr(MSR_IA32_TSC_DEADLINE, tsc() + 3_000_000n); // 1 ms of a 3.0 GHz TSC
  e.run(5_000_000n);
  // 3,000,000 cycles · 1e6 / 3,000,000 kHz = 1,000,000 ns; at the creation rate it would be 1,153,846 ns
  assert.deepEqual(taken, [2_000_000n]);
});
