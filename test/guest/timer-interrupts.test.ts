// The guest's tick runs from its clock event device's interrupt (issue 12): the PIT programmed in mode 2
// with LATCH, the LAPIC timer in periodic or TSC-deadline mode through the MSR path, the interrupt waiting
// while the vCPU is off its CPU, and KVM's PIT reinjecting or discarding the ticks it missed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, MSR_IA32_TSC_DEADLINE, NSEC_PER_SEC, TraceRecorder, type Ns } from '../../src/core/index.ts';
import type { KvmPit } from '../../src/hypervisor/index.ts';
import { bootVm, kernelPreset, machineProfile, type BootedVm } from '../../src/vmm/index.ts';

const MS = 1_000_000n;
/** KVM's PIT period for LATCH 4773 (create_pit_timer: 4773 · 1e9 / 1193182 = 4,000,227.6, truncated). */
const PIT_PERIOD = (4773n * NSEC_PER_SEC) / 1_193_182n;
/** refined-jiffies' ns per jiffy at HZ=250 (kernel/time/jiffies.c register_refined_jiffies). */
const JIFFY_NS = 4_000_250n;

interface Run {
  b: BootedVm;
  e: Engine;
}

function boot(
  profile: string,
  kernel: string,
  cmdline: string,
  opts: { policy?: 'reinject' | 'discard'; deschedule?: boolean; vendor?: 'amd' | 'intel'; trace?: TraceRecorder } = {},
): Run {
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile(profile),
    kernel: kernelPreset(kernel),
    cmdline,
    scheduler: e,
    ...(opts.vendor ? { host: { vendor: opts.vendor } } : {}),
    ...(opts.policy ? { pitLostTickPolicy: opts.policy } : {}),
    ...(opts.trace ? { trace: opts.trace } : {}),
    ...((opts.deschedule ?? true) ? { deschedule: { periodNs: 100n * MS, runNs: 50n * MS } } : {}),
  });
  return { b, e };
}

/** Guest CLOCK_MONOTONIC advance and PIT counts from t0 to t1 (absolute scheduler times). */
function span(r: Run, t0: Ns, t1: Ns) {
  const pit = r.b.vm.devices.pit as KvmPit;
  r.e.run(t0);
  const m0 = r.b.guest.clockGettime('monotonic');
  const s0 = { ...pit.stats };
  r.e.run(t1);
  const s1 = pit.stats;
  return {
    advanced: r.b.guest.clockGettime('monotonic') - m0,
    expiries: BigInt(s1.expiries - s0.expiries),
    coalesced: BigInt(s1.coalesced - s0.coalesced),
    reinjected: BigInt(s1.reinjected - s0.reinjected),
  };
}

test('a jiffies guest on nolapic programs the PIT as i8253.c does: mode 2, LATCH 4773 (HZ=250), ticking every 4,000,227 ns', () => {
  const r = boot('kvmtool', 'yocto-qemux86', 'nolapic', { deschedule: false });
  r.e.run(r.b.kernelEntryAt + 2n * NSEC_PER_SEC);
  const g = r.b.guest;
  assert.equal(g.clockeventDevice(), 'pit\n');
  assert.equal(g.currentClocksource(), 'refined-jiffies\n');
  assert.ok(g.periodicTick.interruptDriven);
  const ch0 = r.b.vm.devices.pit!.saveState().channels[0]!;
  assert.equal(ch0.mode, 2);
  assert.equal(ch0.count, 4773);
  assert.equal(PIT_PERIOD, 4_000_227n);
  // every expiry is a jiffy and nothing waits: 10 s of ticks is exactly the expiries × 4,000,250 ns
  const s = span(r, r.e.now, r.e.now + 10n * NSEC_PER_SEC);
  assert.equal(s.advanced, s.expiries * JIFFY_NS);
  assert.equal(s.coalesced + s.reinjected, 0n);
});

test('KVM PIT discard: a jiffies guest on a 2:1 share loses exactly the coalesced ticks × 4,000,250 ns; reinject loses none once caught up', () => {
  // Both measure from 2 s to 22 s after VM creation: run windows start there (every 100 ms), and the reinject
  // backlog is delivered at the window's first ns, so 1 µs later the guest has caught up.
  const t0 = 2n * NSEC_PER_SEC + 1000n;
  const t1 = 22n * NSEC_PER_SEC + 1000n;
  const reinject = span(boot('kvmtool', 'yocto-qemux86', 'nolapic', { policy: 'reinject' }), t0, t1);
  const discard = span(boot('kvmtool', 'yocto-qemux86', 'nolapic', { policy: 'discard' }), t0, t1);
  // same PIT phase in both: the same expiries
  assert.equal(reinject.expiries, discard.expiries);
  assert.equal(reinject.coalesced, 0n);
  assert.ok(reinject.reinjected > 0n, 'reinject delivered the missed ticks late');
  assert.equal(reinject.advanced, reinject.expiries * JIFFY_NS, 'reinject: every expiry became a jiffy');
  assert.equal(discard.reinjected, 0n);
  assert.ok(discard.coalesced > 0n);
  assert.equal(discard.advanced, (discard.expiries - discard.coalesced) * JIFFY_NS, 'discard: each coalesced tick is a lost jiffy');
  assert.equal(reinject.advanced - discard.advanced, discard.coalesced * JIFFY_NS);
  // The vCPU is off 50 of every 100 ms: of the ~12.5 expiries in each off half the first waits in the irqchip
  // and the rest coalesce with it (11 or 12 per window over 200 windows)
  assert.ok(discard.coalesced >= 200n * 11n && discard.coalesced <= 200n * 12n, `coalesced ${discard.coalesced}`);
  assert.equal(reinject.reinjected, discard.coalesced);
});

test('a tickless kvm-clock guest loses no time on a 2:1 share: its clock advances the same with and without descheduling', () => {
  const read = (deschedule: boolean) => {
    const r = boot('qemu-kvm-noinvtsc', 'distro', '', { deschedule });
    r.e.run(r.b.kernelEntryAt + 2n * NSEC_PER_SEC);
    const g = r.b.guest;
    assert.equal(g.currentClocksource(), 'kvm-clock\n');
    assert.equal(g.clockeventDevice(), 'lapic-deadline\n');
    assert.equal(g.oneshot, true);
    const m0 = g.clockGettime('monotonic');
    const lost0 = r.b.vm.devices.timerIrqStats().ticksLost;
    const out: bigint[] = [];
    for (let i = 1; i <= 20; i++) {
      r.e.run(r.e.now + NSEC_PER_SEC + 1000n);
      out.push(g.clockGettime('monotonic') - m0);
    }
    const stats = r.b.vm.devices.timerIrqStats();
    return { out, stats, lost: stats.ticksLost - lost0 };
  };
  const busy = read(true);
  const alone = read(false);
  // (during boot, before kvm-clock takes over from jiffies, the descheduled guest did lose boot-time jiffies:
  // an offset fixed at the switch, not a rate)
  assert.deepEqual(busy.out, alone.out);
  // its timer interrupts were late (the vCPU was off) but none was lost
  assert.ok(busy.stats.maxLatenessNs > 0n);
  assert.equal(alone.stats.maxLatenessNs, 0n);
  assert.equal(busy.lost, 0);
});

test('the tickless guest programs the LAPIC TSC-deadline timer through WRMSR 0x6e0, one deadline per tick_sched_timer', () => {
  const trace = new TraceRecorder({ enabled: true, filter: (n) => n === 'kvm_msr' });
  const r = boot('firecracker', 'distro', '', { deschedule: false, trace });
  r.e.run(r.b.kernelEntryAt + 2n * NSEC_PER_SEC);
  const st0 = r.b.vm.devices.timerIrqStats();
  const byCpu0 = r.b.guest.periodicTick.timerIrqsByCpu;
  const u0 = r.b.guest.timekeeper.advances;
  const t0 = r.e.now;
  r.e.run(r.e.now + NSEC_PER_SEC);
  const st1 = r.b.vm.devices.timerIrqStats();
  // update_wall_time ran from tick_sched_timer every 4 ms of ktime (the default update interval: every tick), on
  // CPU 0 only: a tick 4 ms away is not stopped (tick_nohz_next_event), so CPU 0 keeps tick_do_timer_cpu
  const updates = r.b.guest.timekeeper.advances - u0;
  assert.ok(updates >= 249 && updates <= 251, `updates ${updates}`);
  assert.equal(r.b.guest.periodicTick.doTimerCpuNow, 0);
  // each interrupt is taken at its TSC deadline and programs the next one. clockevents' truncating ns→TSC
  // conversion can put a deadline before the hrtimer's expiry in ktime: then hrtimer_interrupt finds nothing
  // due and reprograms min_delta_ns (1 µs: 324 ticks of tsc_khz/8, 2,592 cycles) after the deadline it was
  // taken at (the TSC then reads the old deadline + 0..2 cycles at 2.6 cycles/ns). Whether a tick comes
  // early depends on the rounding of both conversions: some ticks are one interrupt, the others two.
  // Firecracker's 2 vCPUs each run tick_sched_timer on their own LAPIC on the same grid.
  const byCpu1 = r.b.guest.periodicTick.timerIrqsByCpu;
  const sources = [...new Set(trace.recorded.filter((e) => e.name === 'kvm_msr').map((e) => e.source))].sort();
  assert.equal(sources.length, 2, `one LAPIC per vCPU: ${sources.join(', ')}`);
  const earlyByCpu = sources.map((src) => {
    const writes = trace.recorded
      .filter((e) => e.name === 'kvm_msr' && e.source === src && e.args!.ecx === MSR_IA32_TSC_DEADLINE)
      .map((e) => ({ ts: e.ts, d: BigInt(e.args!.data as bigint) }));
    let early = 0;
    for (let i = 1; i < writes.length; i++) {
      const step = writes[i]!.d - writes[i - 1]!.d;
      if (writes[i]!.ts > t0 && step >= 2592n && step <= 2594n) early++;
    }
    return early;
  });
  for (const early of earlyByCpu) assert.ok(early > 0 && early < updates, `early ${early} of ${updates}`);
  assert.deepEqual(
    byCpu1.map((n, c) => n - byCpu0[c]!),
    earlyByCpu.map((early) => updates + early),
  );
  assert.equal(st1.timerIrqs - st0.timerIrqs, 2 * updates + earlyByCpu[0]! + earlyByCpu[1]!);
  assert.equal(st1.ticksLost, 0);
});

test("QEMU's userspace PIT (qemu-tcg) has no reinjection: ticks that find the vCPU off coalesce and are jiffies lost", () => {
  const r = boot('qemu-tcg', 'yocto-qemux86', 'nolapic hpet=disable clocksource=refined-jiffies');
  r.e.run(r.b.kernelEntryAt + 2n * NSEC_PER_SEC);
  const g = r.b.guest;
  assert.equal(g.clockeventDevice(), 'pit\n');
  assert.equal(g.oneshot, false);
  const pit = r.b.vm.devices.pit as unknown as { stats: { irq0: number } };
  const m0 = g.clockGettime('monotonic');
  const s0 = r.b.vm.devices.timerIrqStats();
  const raised0 = pit.stats.irq0;
  r.e.run(r.e.now + 20n * NSEC_PER_SEC);
  const s1 = r.b.vm.devices.timerIrqStats();
  const taken = s1.timerIrqs - s0.timerIrqs;
  const lost = s1.ticksLost - s0.ticksLost;
  // every rising edge of OUT is either taken (a jiffy) or coalesced in the IRR (lost)
  assert.equal(taken + lost, pit.stats.irq0 - raised0);
  assert.ok(lost > 2000, `lost ${lost}`);
  assert.equal(s1.ticksReinjected, 0);
  assert.equal(g.clockGettime('monotonic') - m0, BigInt(taken) * JIFFY_NS);
});
