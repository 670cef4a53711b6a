// The global clock event devices as the tick (issue 12): the legacy HPET channel 0 (arch/x86/kernel/hpet.c)
// and the PIT in one-shot mode (drivers/clocksource/i8253.c), programmed through MMIO and ports exactly as
// Linux does, their IRQ0 driving the guest's tick through the vCPU's IRR.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, NSEC_PER_SEC, type Ns } from '../../src/core/index.ts';
import { clockeventsConfig, type GuestInterrupts, HpetTickDevice, PitTickDevice } from '../../src/guest/index.ts';
import type { KvmPit } from '../../src/hypervisor/index.ts';
import { bootVm, kernelPreset, machineProfile, type BootedVm } from '../../src/vmm/index.ts';

const HPET = 0xfed00000n;
/** refined-jiffies' ns per jiffy at HZ=250 (kernel/time/jiffies.c register_refined_jiffies). */
const JIFFY_NS = 4_000_250n;
const IRQ0_VECTOR = 0x30;

/** A guest's view of the HPET/PIT registers: reads answer what was last written (the counter as told). */
function fakeItf(counterReads: bigint[] = []) {
  const regs = new Map<bigint, bigint>([[0x100n, 0x30n]]); // T0_CFG: PERIODIC_CAP | SIZE_CAP
  const log: string[] = [];
  const itf: GuestInterrupts = {
    outb: (port, v) => void log.push(`outb 0x${port.toString(16)} 0x${v.toString(16)}`),
    mmioRead: (addr) => {
      const off = addr - HPET;
      const v = off === 0xf0n && counterReads.length ? counterReads.shift()! : (regs.get(off) ?? 0n);
      log.push(`readl 0x${off.toString(16)} = 0x${v.toString(16)}`);
      return v;
    },
    mmioWrite: (addr, v) => {
      regs.set(addr - HPET, v);
      log.push(`writel 0x${(addr - HPET).toString(16)} 0x${v.toString(16)}`);
    },
    wrmsrApic: () => {},
    setHandler: () => {},
    eoi: () => {},
    hlt: () => {},
  };
  return { itf, log };
}

test('the legacy HPET clockevent: hpet_enable_legacy_int, then hpet_clkevt_set_state_periodic writes exactly what Linux writes', () => {
  const { itf, log } = fakeItf([1000n]);
  const dev = new HpetTickDevice(itf, 100_000_000, NSEC_PER_SEC / 250n, clockeventsConfig);
  // clockevents_config(100 MHz, HPET_MIN_PROG_DELTA 192, 0x7FFFFFFF): sec = 21, clocks_calc_mult_shift gives
  // mult = (1e8 << 32 + 5e8) / 1e9 = 429496730, shift 32; cev_delta2ns(192) = 1920 ns, of 0x7FFFFFFF 21474836451 ns
  assert.deepEqual(dev.scale, { mult: 429496730n, shift: 32n, minDeltaNs: 1920n, maxDeltaNs: 21474836451n });
  dev.setPeriodic();
  // delta = (NSEC_PER_SEC / HZ) · mult >> shift = 4,000,000 · 429496730 >> 32 = 400,000 ticks
  assert.deepEqual(log, [
    'readl 0x10 = 0x0',
    'writel 0x10 0x2', // HPET_CFG_LEGACY: channel 0 → IRQ0
    'readl 0x10 = 0x2',
    'writel 0x10 0x2', // hpet_stop_counter
    'readl 0xf0 = 0x3e8',
    'readl 0x100 = 0x30',
    'writel 0x100 0x17c', // ENABLE | PERIODIC | SETVAL | 32BIT
    `writel 0x108 0x${(1000 + 400_000).toString(16)}`, // now + delta
    `writel 0x108 0x${(400_000).toString(16)}`, // the period alone (AMD 81xx workaround)
    'readl 0x10 = 0x2',
    'writel 0x10 0x3', // hpet_start_counter
  ]);
  log.length = 0;
  dev.setOneshot();
  assert.deepEqual(log, ['readl 0x100 = 0x17c', 'writel 0x100 0x174']); // PERIODIC off, ENABLE | 32BIT
});

test('hpet_clkevt_set_next_event: the comparator wraps at 32 bits; -ETIME when the counter read back is under HPET_MIN_CYCLES (128) short of it', () => {
  const at = (reads: bigint[], clc: bigint) => {
    const { itf, log } = fakeItf(reads);
    const dev = new HpetTickDevice(itf, 100_000_000, 4_000_000n, clockeventsConfig);
    log.length = 0;
    return { ok: dev.setNextEvent(clc), log };
  };
  const ok = at([5000n, 5064n], 192n); // (s32)(5192 − 5064) = 128: in time
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.log, ['readl 0xf0 = 0x1388', 'writel 0x108 0x1448', 'readl 0xf0 = 0x13c8']);
  assert.equal(at([5000n, 5065n], 192n).ok, false, '127 cycles left: -ETIME');
  assert.equal(at([5000n, 5300n], 192n).ok, false, 'counter already past: -ETIME');
  const wrap = at([0xffff_ff00n, 0xffff_ff00n], 0x200n);
  assert.equal(wrap.ok, true);
  assert.equal(wrap.log[1], 'writel 0x108 0x100');
});

test('the PIT clockevent: pit_set_oneshot writes 0x38 (channel 0, lobyte/hibyte, mode 4), pit_next_event the count LSB then MSB', () => {
  const { itf, log } = fakeItf();
  const dev = new PitTickDevice(itf, 1_193_182, 4773n, clockeventsConfig);
  // clockevents_config(1193182 Hz, 0xF, 0x7FFF): sec 0 → 1, mult = (1193182 << 32 + 5e8) / 1e9 = 5124678, shift 32
  assert.deepEqual(dev.scale, { mult: 5124678n, shift: 32n, minDeltaNs: 12572n, maxDeltaNs: 27461861n });
  dev.setPeriodic();
  dev.setOneshot();
  assert.equal(dev.setNextEvent((4_000_000n * 5124678n) >> 32n), true); // 4 ms → 4772 PIT ticks
  assert.deepEqual(log, ['outb 0x43 0x34', 'outb 0x40 0xa5', 'outb 0x40 0x12', 'outb 0x43 0x38', 'outb 0x40 0xa4', 'outb 0x40 0x12']);
});

interface Run {
  b: BootedVm;
  e: Engine;
  /** IRQ0 taken by the guest, by time. */
  irq0: Ns[];
  /** Channel 0 count loads (the MSB write) by time, with the control word in force. */
  loads: { t: Ns; count: number; mode: number }[];
  /** The vCPUs that took an IRQ0. */
  irq0Cpus: Set<number>;
  /** Control words written to port 0x43. */
  modes: number[];
}

function boot(profile: string, kernel: string, cmdline: string, directOneshotTick = false, vcpus?: number): Run {
  const e = new Engine();
  const b = bootVm({
    profile: machineProfile(profile),
    kernel: kernelPreset(kernel),
    cmdline,
    scheduler: e,
    ...(directOneshotTick ? { directOneshotTick } : {}),
    ...(vcpus !== undefined ? { vcpus } : {}),
  });
  const r: Run = { b, e, irq0: [], irq0Cpus: new Set(), loads: [], modes: [] };
  const itf = b.vm.platform.interrupts!;
  const setHandler = itf.setHandler;
  itf.setHandler = (h) =>
    setHandler((cpu, v) => {
      if (v === IRQ0_VECTOR) {
        r.irq0.push(e.now);
        r.irq0Cpus.add(cpu);
      }
      h(cpu, v);
    });
  const ports = b.vm.devices.ports;
  const write = ports.write.bind(ports);
  let lsb: number | null = null;
  ports.write = (port, size, v) => {
    if (port === 0x43) {
      r.modes.push(v);
      lsb = null;
    } else if (port === 0x40) {
      if (lsb === null) lsb = v;
      else {
        r.loads.push({ t: e.now, count: lsb | (v << 8) || 0x10000, mode: r.modes.at(-1)! });
        lsb = null;
      }
    }
    write(port, size, v);
  };
  return r;
}

test('a nolapic guest ticks on the HPET: periodic comparator every 400,000 ticks, IRQ0 from timer 0, the PIT silenced, one jiffy per interrupt', () => {
  const r = boot('qemu-kvm', 'yocto-qemux86', 'nolapic clocksource=refined-jiffies');
  r.e.run(r.b.kernelEntryAt + 2n * NSEC_PER_SEC);
  const g = r.b.guest;
  assert.equal(g.clockeventDevice(), 'hpet\n');
  assert.equal(g.oneshot, false);
  assert.ok(g.periodicTick.interruptDriven);
  const hpet = r.b.vm.devices.hpet!;
  const st = hpet.saveState();
  assert.equal(BigInt(st.config) & 3n, 3n, 'ENABLE | LEGACY');
  assert.equal(BigInt(st.timers[0]!.config) & 0x10cn, 0x10cn, 'timer 0 ENABLE | PERIODIC | 32BIT');
  assert.equal(st.timers[0]!.period, '400000');
  // KVM_PIT_FLAGS_HPET_LEGACY: the in-kernel PIT's hrtimer is gone
  const pit = r.b.vm.devices.pit as KvmPit;
  assert.equal(pit.saveState().kvm!.expires, null);
  const fired0 = hpet.stats.fired;
  const pit0 = pit.stats.expiries;
  const irqs0 = r.b.vm.devices.timerIrqStats().timerIrqs;
  const n0 = r.irq0.length;
  const m0 = g.clockGettime('monotonic');
  const j0 = g.periodicTick.jiffies();
  r.e.run(r.e.now + 10n * NSEC_PER_SEC);
  // every 4,000,000 ns of QEMU_CLOCK_VIRTUAL exactly: 2,500 expiries in 10 s, each one interrupt and one jiffy
  // (QEMU's exact-clock quirk — hpet_timer re-firing one tick after a comparator it hit exactly — would double them)
  const fired = hpet.stats.fired - fired0;
  assert.equal(fired, 2500);
  assert.equal(r.b.vm.devices.timerIrqStats().timerIrqs - irqs0, 2500);
  assert.equal(pit.stats.expiries, pit0);
  const gaps = new Set(r.irq0.slice(n0).map((t, i, a) => (i ? t - a[i - 1]! : 4_000_000n)));
  assert.deepEqual([...gaps], [4_000_000n]);
  assert.equal(g.periodicTick.jiffies() - j0, 2500n);
  assert.equal(g.clockGettime('monotonic') - m0, 2500n * JIFFY_NS);
});

test('a nolapic tickless guest runs hrtimer_interrupt from the HPET in one-shot mode: one comparator write and one IRQ0 per tick_sched_timer', () => {
  const r = boot('qemu-kvm-noinvtsc', 'distro', 'nolapic');
  r.e.run(r.b.kernelEntryAt + 3n * NSEC_PER_SEC);
  const g = r.b.guest;
  assert.equal(g.clockeventDevice(), 'hpet\n');
  assert.equal(g.currentClocksource(), 'kvm-clock\n');
  assert.equal(g.oneshot, true);
  const hpet = r.b.vm.devices.hpet!;
  const t0 = BigInt(hpet.saveState().timers[0]!.config);
  assert.equal(t0 & 0x8n, 0n, 'PERIODIC off');
  assert.equal(t0 & 0x104n, 0x104n, 'ENABLE | 32BIT');
  const fired0 = hpet.stats.fired;
  const n0 = r.irq0.length;
  const u0 = g.timekeeper.advances;
  r.e.run(r.e.now + NSEC_PER_SEC);
  // kvm-clock and the HPET both count true time here: every 4 ms expiry converts to exactly 400,000 HPET ticks
  // (4e6 · 429496730 >> 32), so each interrupt finds tick_sched_timer due
  assert.equal(hpet.stats.fired - fired0, 250);
  assert.equal(r.irq0.length - n0, 250);
  assert.equal(g.timekeeper.advances - u0, 250);
  const gaps = new Set(r.irq0.slice(n0).map((t, i, a) => (i ? t - a[i - 1]! : 4_000_000n)));
  assert.deepEqual([...gaps], [4_000_000n]);
});

test("a global tick device on a 2-vCPU guest is CPU 0's alone: one TickCpu, every IRQ0 on vCPU 0, one comparator write per tick_sched_timer", () => {
  // the HPET (and PIT) clockevent is not per-CPU (clockevents.ts perCpu false): Linux registers it once, as CPU 0's
  // tick device, and IRQ0 goes to vCPU 0 (nolapic: the guest runs UP); the per-CPU LAPIC ticks do not apply
  const r = boot('qemu-kvm-noinvtsc', 'distro', 'nolapic', false, 2);
  r.e.run(r.b.kernelEntryAt + 3n * NSEC_PER_SEC);
  const g = r.b.guest;
  assert.equal(g.clockeventDevice(), 'hpet\n');
  assert.equal(g.oneshot, true);
  const hpet = r.b.vm.devices.hpet!;
  const by0 = g.periodicTick.timerIrqsByCpu;
  assert.equal(by0.length, 1, 'one TickCpu');
  const mmio = r.b.vm.devices.mmio;
  let cmpWrites = 0;
  const write = mmio.write.bind(mmio);
  mmio.write = (addr, size, v) => {
    if (addr === HPET + 0x108n) cmpWrites++;
    write(addr, size, v);
  };
  const fired0 = hpet.stats.fired;
  const u0 = g.timekeeper.advances;
  r.e.run(r.e.now + NSEC_PER_SEC);
  // as with one vCPU (the test above): 250 expiries of 4 ms in the second, each one IRQ0, one update, one write
  assert.equal(hpet.stats.fired - fired0, 250);
  assert.equal(cmpWrites, 250);
  assert.deepEqual(g.periodicTick.timerIrqsByCpu, [by0[0]! + 250]);
  assert.equal(g.timekeeper.advances - u0, 250);
  assert.deepEqual([...r.irq0Cpus], [0]);
});

/** After the one-shot switch: each count load and the IRQ0 that followed it. */
function oneshotLoads(r: Run): { t: Ns; count: number; irq: Ns }[] {
  const out: { t: Ns; count: number; irq: Ns }[] = [];
  for (const l of r.loads.filter((x) => x.mode === 0x38)) {
    const irq = r.irq0.find((t) => t > l.t); // the handler that loads a count runs at the instant of the IRQ0 before it
    if (irq !== undefined) out.push({ t: l.t, count: l.count, irq });
  }
  return out;
}

test("KVM's in-kernel PIT as a one-shot tick (nolapic, no HPET): mode 4, each count a one-shot hrtimer of count·1e9/1193182 ns", () => {
  const r = boot('firecracker', 'distro', 'nolapic');
  r.e.run(r.b.kernelEntryAt + 4n * NSEC_PER_SEC);
  const g = r.b.guest;
  assert.equal(g.clockeventDevice(), 'pit\n');
  assert.equal(g.oneshot, true);
  assert.deepEqual(r.modes.slice(-2), [0x34, 0x38], 'pit_set_periodic, then pit_set_oneshot');
  assert.equal(r.b.vm.devices.pit!.saveState().channels[0]!.mode, 4);
  const loads = oneshotLoads(r);
  assert.ok(loads.length > 400, `loads ${loads.length}`);
  // create_pit_timer: interval = count · NSEC_PER_SEC / KVM_PIT_FREQ, truncated; pit_timer_fn → kvm_set_irq at its end
  for (const l of loads) assert.equal(l.irq - l.t, (BigInt(l.count) * NSEC_PER_SEC) / 1_193_182n, `count ${l.count} at ${l.t}`);
  // a 4 ms tick is 4772 PIT ticks (3,999,436 ns): IRQ0 comes early, hrtimer_interrupt reprograms the rest
  assert.ok(loads.some((l) => l.count === 4772 || l.count === 4773));
});

test("QEMU's userspace PIT as a one-shot tick (qemu-tcg, nolapic hpet=disable): OUT rises 1 ns after count·1e9/1193182 (pit_get_next_transition_time's rounding fix)", () => {
  const r = boot('qemu-tcg', 'distro', 'nolapic hpet=disable');
  r.e.run(r.b.kernelEntryAt + 4n * NSEC_PER_SEC);
  const g = r.b.guest;
  assert.equal(g.clockeventDevice(), 'pit\n');
  assert.equal(g.oneshot, true);
  const loads = oneshotLoads(r);
  assert.ok(loads.length > 400, `loads ${loads.length}`);
  // mode 4's OUT is high only at d == count; at load + ⌊count·1e9/f⌋ the counter reads count − 1 (muldiv64 floors
  // both ways), so next_time <= current_time moves it 1 ns on, where d == count
  for (const l of loads) assert.equal(l.irq - l.t, (BigInt(l.count) * NSEC_PER_SEC) / 1_193_182n + 1n, `count ${l.count} at ${l.t}`);
});

test('with the direct one-shot tick (timer_interrupts: direct) the global device is shut down at the switch and a side timer runs the updates', () => {
  const r = boot('firecracker', 'distro', 'nolapic', true);
  r.e.run(r.b.kernelEntryAt + 4n * NSEC_PER_SEC);
  const g = r.b.guest;
  assert.equal(g.oneshot, true);
  assert.equal(g.periodicTick.interruptDriven, false);
  // pit_shutdown: 0x30, then a zero count — KVM runs that as one last 65536-tick one-shot and stops
  assert.deepEqual(r.modes.slice(-2), [0x34, 0x30]);
  assert.equal(r.loads.at(-1)!.count, 0x10000);
  const pit = r.b.vm.devices.pit as KvmPit;
  assert.equal(pit.saveState().kvm!.expires, null);
  const n0 = r.irq0.length;
  const u0 = g.timekeeper.advances;
  r.e.run(r.e.now + NSEC_PER_SEC);
  assert.equal(r.irq0.length, n0);
  assert.equal(g.timekeeper.advances - u0, 250);
  const h = boot('qemu-kvm-noinvtsc', 'distro', 'nolapic', true);
  h.e.run(h.b.kernelEntryAt + 4n * NSEC_PER_SEC);
  assert.equal(BigInt(h.b.vm.devices.hpet!.saveState().timers[0]!.config) & 0x4n, 0n, 'hpet_clkevt_set_state_shutdown: ENABLE off');
  assert.equal(h.b.vm.devices.hpet!.saveState().timers[0]!.expires, null);
});
