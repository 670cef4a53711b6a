// KVM's LAPIC timer and interrupt acceptance as the guest's timer interrupts see them (arch/x86/kvm/lapic.c,
// i8254.c): the TSC-deadline MSR path, VM entry held back to the deadline, interrupts waiting for a vCPU
// that is off its CPU and coalescing in the IRR, and the PIT's reinjection one tick per EOI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, TraceRecorder, type Ns } from '../../src/core/index.ts';
import { APIC_LVT_TIMER_PERIODIC, MSR_IA32_TSC_DEADLINE, X2APIC_LVTT, X2APIC_TDCR, X2APIC_TMICT } from '../../src/devices/index.ts';
import { IRQ0_VECTOR, KvmLapic, KvmPit, LOCAL_TIMER_VECTOR } from '../../src/hypervisor/index.ts';

const MS = 1_000_000n;
const KHZ = 2_596_136;

/** A vCPU whose thread is off its CPU in [offFrom, offTo), with a LAPIC on a TSC counting from 0 at KHZ. */
function vcpu(opts: { offFrom?: Ns; offTo?: Ns; hvTimer?: boolean; trace?: TraceRecorder; eoi?: boolean } = {}) {
  const e = new Engine();
  const taken: { t: Ns; vector: number }[] = [];
  const off = (t: Ns) => opts.offFrom !== undefined && t >= opts.offFrom && t < opts.offTo!;
  const lapic: KvmLapic = new KvmLapic({
    scheduler: e,
    vcpuId: 0,
    tscKhz: KHZ,
    guestTsc: () => (e.now * BigInt(KHZ)) / 1_000_000n,
    hvTimer: opts.hvTimer ?? false,
    running: () => !off(e.now),
    nextRun: () => opts.offTo!,
    inject: (vector) => {
      taken.push({ t: e.now, vector });
      if (opts.eoi ?? true) lapic.eoi(vector); // the guest's handler acknowledges at once
    },
    ...(opts.trace ? { trace: opts.trace } : {}),
    name: 'vm0/vcpu0',
  });
  return { e, lapic, taken };
}

test('TSC deadline: WRMSR 0x6e0 arms the timer and the guest takes vector 0xec at the first ns its TSC reaches the deadline', () => {
  const v = vcpu();
  v.lapic.wrmsr(X2APIC_LVTT, BigInt(LOCAL_TIMER_VECTOR | (2 << 17)));
  v.lapic.wrmsr(MSR_IA32_TSC_DEADLINE, 2_596_136n); // exactly 1 ms of TSC
  v.e.run(5n * MS);
  v.lapic.wrmsr(MSR_IA32_TSC_DEADLINE, (6n * MS * BigInt(KHZ)) / 1_000_000n + 1n); // one cycle past 6 ms
  v.e.run(10n * MS);
  // 6 ms + 1 cycle = 6,000,000.385 ns: the hrtimer's truncated ns would fire at 6,000,000; the VM entry waits
  // for the TSC (kvm_wait_lapic_expire) and the guest takes it at 6,000,001
  assert.deepEqual(v.taken, [
    { t: 1_000_000n, vector: LOCAL_TIMER_VECTOR },
    { t: 6_000_001n, vector: LOCAL_TIMER_VECTOR },
  ]);
  assert.equal(v.lapic.irr.stats.maxLatenessNs, 0n);
});

test('a periodic LAPIC timer on a vCPU off its CPU: the first expiry waits in the IRR, the rest coalesce with it', () => {
  const v = vcpu({ offFrom: 10n * MS, offTo: 30n * MS });
  v.lapic.wrmsr(X2APIC_LVTT, BigInt(LOCAL_TIMER_VECTOR | APIC_LVT_TIMER_PERIODIC));
  v.lapic.wrmsr(X2APIC_TDCR, 3n); // divide by 16
  v.lapic.wrmsr(X2APIC_TMICT, 250_000n); // × 16 ns on KVM's 1 GHz APIC bus: 4 ms
  v.e.run(41n * MS);
  // expiries at 4, 8 (taken), 12 (waits until 30), 16, 20, 24, 28 (coalesced), 32, 36, 40 (taken)
  assert.deepEqual(
    v.taken.map((x) => x.t / MS),
    [4n, 8n, 30n, 32n, 36n, 40n],
  );
  assert.equal(v.lapic.irr.stats.coalesced, 4);
  assert.equal(v.lapic.irr.stats.maxLatenessNs, 18n * MS);
});

test("KVM's PIT through the irqchip: reinject delivers every missed tick one per EOI when the vCPU runs again; discard coalesces them", () => {
  const run = (reinject: boolean) => {
    const v = vcpu({ offFrom: 25n * MS, offTo: 75n * MS });
    const pit = new KvmPit({
      scheduler: v.e,
      irq: { raise: () => v.lapic.setIrq(IRQ0_VECTOR), lower: () => {} },
      reinject,
      reset: 'kvm',
    });
    v.lapic.onAck(IRQ0_VECTOR, () => pit.ackIrq());
    pit.portWrite(0x43, 1, 0x34); // channel 0, lo/hi, mode 2
    pit.portWrite(0x40, 1, 0x9c);
    pit.portWrite(0x40, 1, 0x2e); // 11932: 11932 · 1e9 / 1193182 = 10,000,150.8 ns, truncated
    v.e.run(101n * MS);
    return { times: v.taken.map((x) => x.t), stats: pit.stats };
  };
  const r = run(true);
  // expiries at 10.00015·k ms: k = 1, 2 taken; 3…7 (30 … 70 ms) fall in the off time: the first waits, the other
  // four are counted and released one per EOI at 75 ms; 8, 9, 10 taken on time
  const at = (k: bigint) => k * 10_000_150n;
  assert.deepEqual(r.times, [at(1n), at(2n), 75n * MS, 75n * MS, 75n * MS, 75n * MS, 75n * MS, at(8n), at(9n), at(10n)]);
  assert.equal(r.stats.reinjected, 4);
  assert.equal(r.stats.coalesced, 0);
  const d = run(false);
  assert.deepEqual(d.times, [at(1n), at(2n), 75n * MS, at(8n), at(9n), at(10n)]);
  assert.equal(d.stats.coalesced, 4);
  assert.equal(d.stats.reinjected, 0);
});

test('with the VMX preemption timer, a halting vCPU moves its deadline to the software hrtimer: the kernel path in the trace', () => {
  const trace = new TraceRecorder({ enabled: true });
  const v = vcpu({ hvTimer: true, trace });
  v.lapic.wrmsr(X2APIC_LVTT, BigInt(LOCAL_TIMER_VECTOR | (2 << 17)));
  v.lapic.wrmsr(MSR_IA32_TSC_DEADLINE, 2_596_136n);
  v.lapic.hlt(); // idle: vcpu_block
  v.e.run(2n * MS);
  const names = trace.recorded.map((ev) => [ev.name, ...ev.path].join('<'));
  assert.deepEqual(names, [
    'kvm_msr<vcpu_enter_guest<kvm_emulate_wrmsr', // LVTT: TSC-deadline mode
    'kvm_msr<vcpu_enter_guest<kvm_emulate_wrmsr', // IA32_TSC_DEADLINE
    'start_hv_timer', // the vCPU is in guest mode: the preemption timer carries it
    'kvm_lapic_switch_to_sw_timer', // HLT → vcpu_block
    'apic_timer_fn', // the hrtimer fires
    'apic_timer_expired<hrtimer_expire_entry<apic_timer_fn',
    'kvm_apic_accept_irq<apic_timer_expired<kvm_apic_local_deliver<__apic_accept_irq', // the LVT vector into the IRR
    'kvm_inj_virq<vcpu_enter_guest<kvm_check_and_inject_events', // the woken vCPU enters and takes it
  ]);
  assert.deepEqual(v.taken, [{ t: 1_000_000n, vector: LOCAL_TIMER_VECTOR }]);
});
