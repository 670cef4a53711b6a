// The live lab (issue 14): micro-guests on /dev/kvm through the small VMM, each beside its twin, and
// the host's bpftrace counts beside the twin's trace. The twins, the guest builds and the skip paths
// run everywhere; the live tests skip only where /dev/kvm is missing or unusable or we are not root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { test } from 'node:test';
import { liveKvmTests, sigintLiveChild } from './lock.ts';
import { fileURLToPath } from 'node:url';
import { bpftraceMissing, formatCounts } from '../../src/live/bpftrace.ts';
import { applyCpuidPolicy, cpuidValue, encodeCpuid } from '../../src/live/cpuid.ts';
import { kvmclockExperiment, simulateKvmclock } from '../../src/live/exp-kvmclock.ts';
import { lapicExperiment, simulateLapic } from '../../src/live/exp-lapic.ts';
import { pitExperiment, simulatePit } from '../../src/live/exp-pit.ts';
import { rtcExperiment, simulateRtc } from '../../src/live/exp-rtc.ts';
import { assemblerMissing, buildGuest } from '../../src/live/guest-build.ts';
import { KvmUnusableError, kvmUnavailableReason, LiveKvm } from '../../src/live/kvm.ts';

const cli = fileURLToPath(new URL('../../bin/timevisor.js', import.meta.url));
const { needKvm } = liveKvmTests(assemblerMissing);

/** bpftrace is a named prerequisite of the trace comparisons (Debian package bpftrace, root). */
function traceAvailable(): boolean {
  const m = bpftraceMissing();
  if (m) console.log(`not tracing the host: ${m}`);
  return m === null;
}

// --- everywhere ---

test('skip reasons: a missing device is named with its errno; any other error opening KVM is thrown, not a skip', (t) => {
  const saved = process.env.TIMEVISOR_KVM_DEVICE;
  process.env.TIMEVISOR_KVM_DEVICE = '/nonexistent/kvm';
  try {
    assert.match(kvmUnavailableReason() ?? '', /\/nonexistent\/kvm does not exist \(ENOENT/);
  } finally {
    if (saved === undefined) delete process.env.TIMEVISOR_KVM_DEVICE;
    else process.env.TIMEVISOR_KVM_DEVICE = saved;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64' || process.getuid?.() !== 0) return;
  const dev = process.env.TIMEVISOR_KVM_DEVICE;
  process.env.TIMEVISOR_KVM_DEVICE = '/dev/null'; // exists, so the open path is reached
  try {
    t.mock.method(LiveKvm, 'open', () => {
      throw new TypeError('a bug in the backend');
    });
    assert.throws(() => kvmUnavailableReason(), TypeError);
    t.mock.restoreAll();
    t.mock.method(LiveKvm, 'open', () => {
      throw new KvmUnusableError('cannot open /dev/null', 'ENXIO');
    });
    assert.equal(kvmUnavailableReason(), 'cannot open /dev/null: ENXIO');
  } finally {
    t.mock.restoreAll();
    if (dev === undefined) delete process.env.TIMEVISOR_KVM_DEVICE;
    else process.env.TIMEVISOR_KVM_DEVICE = dev;
  }
});

test('micro-guests assemble from src/live/guests with GNU as into flat real-mode binaries at 0x1000', (t) => {
  const asm = assemblerMissing();
  if (asm) {
    console.log(`skipping guest build: ${asm}`);
    t.skip(asm);
    return;
  }
  for (const g of ['pit', 'rtc', 'lapic', 'kvmclock'] as const) {
    const bin = buildGuest(g);
    assert.equal(bin[0], 0xfa, `${g} starts with cli`);
    assert.ok(bin.length > 64 && bin.length < 1024, `${g}: ${bin.length} bytes`);
  }
  // the PIT guest takes IRQ0 at vector 0x20: its IVT write is `movw $irq0, 0x80`
  const pit = buildGuest('pit');
  assert.ok(pit.some((b, i) => b === 0xc7 && pit[i + 1] === 0x06 && pit[i + 2] === 0x80 && pit[i + 3] === 0x00));
});

test('twin: PIT at 100 Hz for 2 s with reinject delivers one IRQ0 per ended period: 199 (the 200th ends at 2.00003 s)', () => {
  const r = simulatePit({ hz: 100, seconds: 2, reinject: true });
  assert.equal(r.expected, 199);
  assert.equal(r.delivered, 199);
  const names = r.events.recorded.map((e) => e.name);
  assert.equal(names.filter((n) => n === 'pit_timer_fn').length, 199);
  assert.equal(names.filter((n) => n === 'kvm_set_irq').length, 199);
});

test('twin: after the vCPU stops, pit_timer_fn keeps counting and reinject holds kvm_set_irq at the one unacknowledged tick', () => {
  const period = 10_000_150n; // 11932 * 1e9 / 1193182
  const r = simulatePit({ hz: 100, seconds: 1, reinject: true, stopNs: 1_000_000_000n, runNs: 1_500_000_000n });
  const count = (n: string) => r.events.recorded.filter((e) => e.name === n).length;
  assert.equal(count('pit_timer_fn'), Number(1_500_000_000n / period)); // 149
  assert.equal(count('kvm_set_irq'), 100); // 99 handled before the stop + 1 raised and never acknowledged
  const off = simulatePit({ hz: 100, seconds: 1, reinject: false, stopNs: 1_000_000_000n, runNs: 1_500_000_000n });
  assert.equal(off.events.recorded.filter((e) => e.name === 'kvm_set_irq').length, 149, 'reinject off injects at every expiry');
});

test('twin: LAPIC periodic fires once per period; one-shot and TSC-deadline re-armed by the handler run slower by its time', () => {
  const tscKhz = 2_596_136;
  const per = simulateLapic({ mode: 'periodic', periodNs: 1_000_000n, seconds: 1, tscKhz });
  assert.equal(per.side.interrupts, 1000);
  assert.equal(per.side.meanExcessNs, 0n);
  const one = simulateLapic({ mode: 'oneshot', periodNs: 1_000_000n, seconds: 1, tscKhz });
  assert.equal(one.side.interrupts, 990); // every 1.01 ms: period + TWIN_HANDLER_NS
  assert.equal(one.side.meanExcessNs, 10_000n);
  const dl = simulateLapic({ mode: 'tsc-deadline', periodNs: 1_000_000n, seconds: 1, tscKhz });
  // the deadline is TSC + period·kHz, truncated to whole cycles: within 1 ns of the one-shot schedule
  assert.ok(dl.side.interrupts === 990, `${dl.side.interrupts}`);
  const msr = dl.events.recorded.filter((e) => e.name === 'kvm_msr').length;
  assert.equal(
    msr,
    dl.events.recorded.filter((e) => e.name === 'apic_timer_fn').length + 1,
    'one MSR 0x6e0 write per expiry, plus the one pending',
  );
  const noDl = simulateLapic({ mode: 'tsc-deadline', periodNs: 1_000_000n, seconds: 1, tscKhz, tscDeadlineCpuid: false });
  assert.equal(noDl.side.interrupts, 0, 'without CPUID.1:ECX[24] the LVT timer mode bit 18 is reserved: no deadline timer');
});

test('twin: kvmclock scale at 2,596,136 kHz is the recorded KVM one (mul 3308738291, shift -1, TSC_STABLE)', () => {
  const r = simulateKvmclock(2_596_136);
  assert.deepEqual(r.record, { tscToSystemMul: 3308738291, tscShift: -1, flags: 1 });
});

test('twin: the RTC reads like QEMU -rtc base=utc: whole seconds from creation, BCD, century byte', () => {
  const base = 1_795_795_725n; // 2026-11-27 16:08:45 UTC
  const r = simulateRtc(base, [608_317_233n, 1_000_317_101n, 2_000_069_559n, 2_999_999_999n]);
  assert.deepEqual(
    r.map((x) => x.line),
    ['rtc 2026-11-27 16:08:45', 'rtc 2026-11-27 16:08:46', 'rtc 2026-11-27 16:08:47', 'rtc 2026-11-27 16:08:47'],
  );
});

test("host and twin counts print in bpftrace's own layout, keys in order", () => {
  assert.equal(
    formatCounts(
      new Map([
        ['pit_timer_fn', 207],
        ['kvm_set_irq', 205],
      ]),
    ),
    '@[kvm_set_irq]: 205\n@[pit_timer_fn]: 207',
  );
});

test("CPUID from a profile: TSC-deadline, hypervisor and invariant-TSC bits follow the policy, KVM leaves get the profile's features and 0x40000010", () => {
  const supported = encodeCpuid([
    { function: 1, index: 0, flags: 0, eax: 0, ebx: 0, ecx: (1 << 24) | (1 << 21), edx: 0 },
    { function: 0x40000000, index: 0, flags: 0, eax: 0x40000001, ebx: 0, ecx: 0, edx: 0 },
    { function: 0x40000001, index: 0, flags: 0, eax: 0x01fffbff, ebx: 0, ecx: 0, edx: 0 },
    { function: 0x80000007, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 1 << 8 },
  ]);
  const p = applyCpuidPolicy(supported, {
    tscDeadlineTimer: false,
    hypervisor: true,
    invariantTsc: true,
    kvm: { features: 0x010000fb, tscKhz: 2_596_136, apicBusKhz: 1_000_000 },
  });
  assert.equal(cpuidValue(p, 1, 'ecx'), ((1 << 21) | (1 << 31)) >>> 0);
  assert.equal(cpuidValue(p, 0x80000007, 'edx'), 1 << 8);
  assert.equal(cpuidValue(p, 0x40000001, 'eax'), 0x010000fb);
  assert.equal(cpuidValue(p, 0x40000000, 'eax'), 0x40000010);
  assert.equal(cpuidValue(p, 0x40000010, 'eax'), 2_596_136);
  const none = applyCpuidPolicy(supported, { tscDeadlineTimer: true, hypervisor: false, invariantTsc: false });
  assert.equal(cpuidValue(none, 0x40000001, 'eax'), null, 'no KVM leaves when the profile exposes none');
  assert.equal(cpuidValue(none, 0x80000007, 'edx'), 0);
});

// --- live ---

test('live pit: 100 Hz for 2 s with reinject on delivers every period (199 ± 2); host pit_timer_fn once per period as in the twin', async (t) => {
  if (!needKvm(t)) return;
  const trace = traceAvailable();
  const r = await pitExperiment({ hz: 100, seconds: 2, reinject: true, busy: 0, trace });
  console.log(
    `pit: delivered ${r.live.delivered}/${r.live.expected}, lateness p50 ${r.live.latenessNs.p50} ns max ${r.live.latenessNs.max} ns`,
  );
  // Reinject hands the guest one IRQ0 per expiry, in order, however late: 199 in every run, ±2 as the
  // issue sets it (the window's ends against the guest's mark). Inside the window itself the guest had
  // handled fewer when the host was loaded (193 at load 11, IRQ0 up to 92 ms late): printed, not asserted.
  assert.equal(r.live.expected, 199);
  assert.ok(Math.abs(r.live.delivered - 199) <= 2, `delivered ${r.live.delivered}`);
  console.log(`pit: ${r.live.inWindow} handled inside the 2 s`);
  assert.equal(r.twin.delivered, 199);
  assert.deepEqual(r.live.channel0, { mode: 2, count: 11932 }, 'KVM_GET_PIT2 shows what the guest programmed');
  assert.match(r.live.kvmPitThread ?? '', new RegExp(`^kvm-pit/${process.pid} \\(pid \\d+\\)$`));
  if (!trace) return;
  const host = r.live.traceCounts!;
  const span = r.live.timerSpanPeriods!;
  console.log(`pit trace: host ${JSON.stringify(host)} span ${span} periods; twin ${JSON.stringify(r.twin.traceCounts)}`);
  assert.deepEqual(r.live.otherTimers, [], 'no other VM on this host runs pit_timer_fn');
  // One expiry per period: the twin, run to the host's last callback, counts the periods since the
  // load; so does the host's first-to-last span (±1: a first or last callback more than half a period
  // late). pit_timer_fn adds the period to the expiry (hrtimer_add_expires_ns): a late one is caught up.
  const twinN = r.twin.traceCounts!.pit_timer_fn!;
  assert.ok(Math.abs(span - twinN) <= 1, `span ${span} vs twin ${twinN}`);
  // bpftrace's own count of those callbacks falls short under heavy host load (up to 5 of 216 at load
  // 14, with no BPF recursion misses; once 104 against 105 kvm_set_irq raises, which reinjection cannot
  // produce, so the loss is in the counting). 0 when the host is quieter; 3 % bounds what was seen.
  const n = host.pit_timer_fn! + r.live.bpfMisses!;
  assert.ok(n <= twinN + 1 && n * 100 >= twinN * 97, `host ${host.pit_timer_fn} (+${r.live.bpfMisses} missed) vs twin ${twinN}`);
  // one raise per delivered tick, plus the one pending at the stop; never more than the expiries
  assert.ok(host.kvm_set_irq! + 1 >= r.live.delivered && host.kvm_set_irq! <= twinN + 1, `kvm_set_irq ${host.kvm_set_irq}`);
});

test('live pit: with reinject off a tick is never delivered twice (delivered ≤ periods) and the guest still gets most', async (t) => {
  if (!needKvm(t)) return;
  const r = await pitExperiment({ hz: 100, seconds: 1, reinject: false, busy: 0 });
  console.log(`pit reinject off: delivered ${r.live.delivered}/${r.live.expected}`);
  assert.ok(r.live.delivered <= r.live.expected + 1, `${r.live.delivered} > ${r.live.expected}`);
  // without reinjection a tick is lost when kvm-pit/<pid> runs late or IRQ0 is still pending: seen
  // 169/199 at load 8 on this 2-core host; half is far below anything measured
  assert.ok(r.live.delivered * 2 >= r.live.expected, `${r.live.delivered} of ${r.live.expected}`);
});

test('live lapic: periodic 1 ms for 1 s fires once per period on the host as in the twin; TSC-deadline arms and fires one for one', async (t) => {
  if (!needKvm(t)) return;
  const trace = traceAvailable();
  const r = await lapicExperiment({ mode: 'periodic', periodUs: 1000, seconds: 1, trace });
  console.log(`lapic periodic: ${r.live.interrupts} interrupts, lateness p50 ${r.live.latenessNs.p50} ns, p99 ${r.live.latenessNs.p99} ns`);
  // A periodic LAPIC timer coalesces the ticks a vCPU does not take in time (one pending bit): seen
  // 971-985 of 1000 at load 8 on this shared 2-core host, and 705 in a load spike; the host's expiry
  // count below is the fidelity check, this one only bounds the guest's share.
  assert.ok(r.live.interrupts <= 1001 && r.live.interrupts >= 500, `${r.live.interrupts} (load ${loadavg()[0]})`);
  assert.equal(r.twin.interrupts, 1000);
  if (trace) {
    const twinN = r.twin.traceCounts!.apic_timer_fn!;
    console.log(
      `lapic trace: host ${JSON.stringify(r.live.traceCounts)} span ${r.live.timerSpanPeriods}; twin ${JSON.stringify(r.twin.traceCounts)}`,
    );
    // KVM's periodic LAPIC hrtimer re-bases its target on `now` when the next target is already past
    // (lapic.c advance_periodic_target_expiration, then hrtimer_set_expires), so callbacks more than a
    // period late shift the schedule and the host has fewer expiries than periods elapsed; the twin adds
    // the period and catches up (as the PIT does). With the counting loss above: host ≤ twin, and seen
    // up to 51 short of 1035 at load 14-17 on this shared 2-core machine; 10 % bounds that.
    const n = r.live.traceCounts!.apic_timer_fn! + r.live.bpfMisses!;
    assert.ok(n <= twinN + 1 && n * 10 >= twinN * 9, `host ${n} vs twin ${twinN} (load ${loadavg()[0]})`);
    assert.equal(r.live.traceCounts!.kvm_hv_timer_state, 1, 'started once (start_sw_timer); kvm-pvm has no hv timer');
  }
  const d = await lapicExperiment({ mode: 'tsc-deadline', periodUs: 1000, seconds: 1, trace });
  console.log(`lapic tsc-deadline: ${d.live.interrupts} interrupts, mean excess ${d.live.meanExcessNs} ns`);
  assert.ok(d.live.interrupts > 0 && d.live.interrupts <= 1000, `${d.live.interrupts}`);
  assert.ok(d.live.meanExcessNs >= 0n, 'a deadline re-armed from the handler never fires early');
  if (trace) {
    const h = d.live.traceCounts!;
    // each MSR 0x6e0 write arms one hrtimer expiry, except a deadline already past when written (the
    // vCPU was preempted between RDTSC and WRMSR): start_sw_tscdeadline then expires it at once without
    // the hrtimer. So callbacks ≤ writes (+1 in flight, + skipped BPF runs), and, with the counting loss
    // under load (above), seen 3 short of 715 at load 14; 10 % bounds it.
    const fn = h.apic_timer_fn! + d.live.bpfMisses!;
    assert.ok(fn <= h.kvm_msr! + 1 && fn * 10 >= h.kvm_msr! * 9, `${JSON.stringify(h)}, ${d.live.bpfMisses} missed`);
  }
});

test('live kvmclock: the guest reads its own record; the model predicts KVM_GET_CLOCK from it to the ns; scale equals the twin', async (t) => {
  if (!needKvm(t)) return;
  const trace = traceAvailable();
  const r = await kvmclockExperiment({ samples: 20, trace });
  assert.equal(r.samples.length, 20);
  const twin = simulateKvmclock(r.tscKhz);
  for (const s of r.samples) {
    assert.equal(s.model, s.getClock, `record v${s.record.version} at host_tsc ${s.hostTsc}`);
    assert.equal(s.record.tscToSystemMul, twin.record.tscToSystemMul);
    assert.equal(s.record.tscShift, twin.record.tscShift);
    assert.equal(s.record.flags & 1, 1, 'TSC_STABLE');
    // the guest read before its exit; KVM_GET_CLOCK came after: later, by the exit's µs (seen ≤ 0.5 ms)
    assert.ok(s.getClock > s.guestNs && s.getClock - s.guestNs < 50_000_000n, `${s.getClock} − ${s.guestNs}`);
  }
  if (!trace) return;
  console.log(`kvmclock trace: host ${JSON.stringify(r.live.traceCounts)} twin ${JSON.stringify(r.twin.traceCounts)}`);
  assert.equal(r.live.traceCounts!.kvm_msr, 1, "the guest's one WRMSR 0x4b564d01");
  assert.equal(r.live.traceCounts!.kvm_msr, r.twin.traceCounts!.kvm_msr);
  assert.equal(r.live.traceCounts!.kvm_write_tsc_offset, r.twin.traceCounts!.kvm_write_tsc_offset);
  assert.ok(r.live.traceCounts!.kvm_pvclock_update! >= 1);
});

test('live rtc: the guest reads through the UIP handshake what the twin reads at the same moments, each new second within ms', async (t) => {
  if (!needKvm(t)) return;
  const r = await rtcExperiment({ reads: 3 });
  assert.equal(r.live.length, 3);
  assert.deepEqual(
    r.live.map((x) => x.line),
    r.twin.map((x) => x.line),
  );
  const secs = r.live.map((x) => Number(x.line.slice(-2)));
  assert.deepEqual(
    [secs[1]! - secs[0]!, secs[2]! - secs[1]!].map((d) => (d + 60) % 60),
    [1, 1],
  );
  console.log(`rtc: new seconds seen ${r.edgeLatencyNs.join(', ')} ns after they began`);
  // each UIP poll is two port exits to the VMM's main thread (~0.1 ms); seen 0.07-4 ms, and 69 ms at
  // load 11 when the vCPU or main thread waited for a CPU: 250 ms bounds a loaded host
  for (const l of r.edgeLatencyNs) assert.ok(l < 250_000_000n, `${l}`);
});

test('CLI: kvm pit --json prints one object; kvm compare rtc prints live, twin and difference', (t) => {
  if (!needKvm(t)) return;
  const r = spawnSync(process.execPath, [cli, 'kvm', 'pit', '--seconds', '0.5', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  assert.equal(o.divisor, 11932);
  assert.match(o.periodNs, /^\d+$/);
  assert.equal(o.twin.expected, 49);
  const c = spawnSync(process.execPath, [cli, 'kvm', 'compare', 'rtc'], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /^quantity +live \(\/dev\/kvm\) +twin \(model\) +difference$/m);
  assert.equal((c.stdout.match(/ same$/gm) ?? []).length, 3, c.stdout);
});

test('CLI: bad experiment options are one line naming the option, exit 2', () => {
  for (const [args, re] of [
    [['kvm', 'pit', '--hz', '5'], /--hz.*19\.\.10000/],
    [['kvm', 'pit', '--reinject', 'maybe'], /--reinject.*on or off/],
    [['kvm', 'lapic', '--mode', 'fast'], /--mode.*oneshot, periodic or tsc-deadline/],
    [['kvm', 'compare', 'hpet'], /EXPERIMENT.*pit, rtc, lapic, kvmclock/],
  ] as const) {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('live: SIGINT while the vCPU thread runs stops it and releases every fd and mapping', async (t) => {
  if (!needKvm(t)) return;
  const script = `
    import { LiveKvm } from ${JSON.stringify(new URL('../../src/live/kvm.ts', import.meta.url).href)};
    import { LiveMachine } from ${JSON.stringify(new URL('../../src/live/vmm.ts', import.meta.url).href)};
    import { buildGuest } from ${JSON.stringify(new URL('../../src/live/guest-build.ts', import.meta.url).href)};
    import { writeSync } from 'node:fs';
    const k = LiveKvm.open({ onClose: (n) => writeSync(2, 'released ' + n + '\\n') });
    const m = new LiveMachine(k, { guest: buildGuest('pit'), params: [11932], pit: { reinject: true } });
    m.start();
    await m.waitForLine(/pit started/, 20000);
    writeSync(1, 'ready ' + k.openResources + '\\n');
    setInterval(() => {}, 1000);
  `;
  const { held, released, code, signal, stderr } = await sigintLiveChild(script);
  assert.equal(signal, 'SIGINT', `exit ${code}: ${stderr}`);
  assert.ok(released !== null, stderr);
  // /dev/kvm, VM fd, guest memory, vCPU fd, kvm_run mapping, the vCPU-thread stop and the device timers
  assert.equal(held, 7);
  assert.equal(released, held, 'every resource released, the vCPU thread stopped first');
});

test('live: stop() ends the vCPU thread and close() leaves no fd behind', async (t) => {
  if (!needKvm(t)) return;
  const { LiveMachine } = await import('../../src/live/vmm.ts');
  const fds = () => readdirSync('/proc/self/fd').length;
  const before = fds();
  const k = LiveKvm.open();
  try {
    const m = new LiveMachine(k, { guest: buildGuest('lapic'), params: [1, 1_000_000] });
    m.start();
    await m.waitForLine(/lapic started/, 20_000);
    await m.stop();
    const n = m.tickTimes.length;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(m.tickTimes.length, n, 'no guest progress after stop()');
  } finally {
    k.close();
  }
  assert.equal(fds(), before);
});

test('live: pausing the running VMM QEMU-style hides the pause from kvmclock and sets GUEST_STOPPED; without it the guest sees the pause', async (t) => {
  if (!needKvm(t)) return;
  const { LiveMachine } = await import('../../src/live/vmm.ts');
  const { MSR_KVM_SYSTEM_TIME_NEW, MSR_IA32_TSC, pvclockReadCycles, PVCLOCK_GUEST_STOPPED } = await import('../../src/core/pvclock-abi.ts');
  for (const semantics of ['qemu', 'none'] as const) {
    const k = LiveKvm.open();
    try {
      const m = new LiveMachine(k, { guest: buildGuest('pit'), params: [11932], pit: { reinject: true } });
      m.vcpu.setMsrs([[MSR_KVM_SYSTEM_TIME_NEW, 0x2000n | 1n]]); // kvmclock on, as a restored guest has it
      m.start();
      await m.waitForLine(/pit started/, 20_000);
      // the guest's kvmclock: its record read at its TSC, taken while the vCPU is paused
      const kvmclock = () => {
        const rec = m.vm.readPvclock(0x2000);
        return { ns: pvclockReadCycles(rec, m.vcpu.getMsr(MSR_IA32_TSC)), flags: rec.flags, at: process.hrtime.bigint() };
      };
      await m.pause(semantics);
      const a = kvmclock();
      await new Promise((r) => setTimeout(r, 300));
      m.resume();
      const ran = process.hrtime.bigint();
      const ticks = m.tickTimes.length;
      while (m.tickTimes.length < ticks + 5) await new Promise((r) => setTimeout(r, 10)); // the guest runs again
      await m.pause(semantics);
      const b = kvmclock();
      m.resume();
      await m.stop();
      const advanced = b.ns - a.ns;
      const wall = b.at - a.at;
      console.log(`pause ${semantics}: kvmclock advanced ${advanced} ns over ${wall} ns`);
      if (semantics === 'qemu') {
        // KVM_SET_CLOCK to the kvmclock saved at the pause: only the running time after it counts
        assert.ok(advanced <= b.at - ran + 1_000_000n, `advanced ${advanced}, ran ${b.at - ran}`);
        assert.equal(b.flags & PVCLOCK_GUEST_STOPPED, PVCLOCK_GUEST_STOPPED, 'KVM_KVMCLOCK_CTRL');
      } else {
        // both reads are the same TSC-based clock the host reads: equal to the µs
        assert.ok(advanced - wall < 1_000_000n && wall - advanced < 1_000_000n, `advanced ${advanced} vs ${wall}`);
        assert.equal(b.flags & PVCLOCK_GUEST_STOPPED, 0);
      }
    } finally {
      k.close();
    }
  }
});

test('twin: HPET and PM timer models read at the same instants advance by the same time (to their resolution)', async () => {
  const { simulateDevices, timerIntervals } = await import('../../src/live/exp-devices.ts');
  const iv = timerIntervals(simulateDevices([0, 50_000_000, 100_123_457, 150_200_000]));
  for (const i of iv) assert.ok(Math.abs(i.hpetNs - i.pmNs) <= 300, JSON.stringify(i)); // PM tick 279 ns, HPET 10 ns
});

test('live devices: a 32-bit guest reaches the HPET by MMIO and the PM timer by port; both advance by the same host time', async (t) => {
  if (!needKvm(t)) return;
  const { devicesExperiment } = await import('../../src/live/exp-devices.ts');
  const r = await devicesExperiment({ pairs: 5, waitMs: 50 });
  console.log(`devices: HPET − PM per interval ${r.intervals.map((i) => i.hpetNs - i.pmNs).join(', ')} ns`);
  for (const [i, iv] of r.intervals.entries()) {
    // the guest waited ≥ 50 ms on the PM timer; each pair's two reads are one exit apart (≈ 0.1 ms),
    // so two pairs' spans differ by that exit's jitter: seen ≤ 92 µs at load 13; 5 ms bounds it
    assert.ok(iv.pmNs >= 49_999_000 && iv.pmNs < 1_000_000_000, `interval ${i}: ${iv.pmNs}`);
    assert.ok(Math.abs(iv.hpetNs - iv.pmNs) < 5_000_000, `interval ${i}: HPET ${iv.hpetNs} vs PM ${iv.pmNs}`);
    assert.ok(Math.abs(r.twin[i]!.hpetNs - r.twin[i]!.pmNs) <= 300);
  }
});

test('live: the profile CPUID reaches KVM — without CPUID.1:ECX[24] the TSC-deadline guest gets no timer, as in the twin', async (t) => {
  if (!needKvm(t)) return;
  const noDeadline = () => ({ tscDeadlineTimer: false, hypervisor: true, invariantTsc: true });
  const r = await lapicExperiment({ mode: 'tsc-deadline', periodUs: 1000, seconds: 0.5, cpuid: noDeadline });
  // KVM's timer_mode_mask follows the guest CPUID: LVTT mode bits 18:17 = 10b are then reserved and
  // the MSR 0x6e0 write is ignored (kvm_set_lapic_tscdeadline_msr needs TSC-deadline mode)
  assert.equal(r.live.interrupts, 0);
  assert.equal(r.twin.interrupts, 0);
});

test('busy host processes end when the experiment stops them, and by themselves after their deadline', async () => {
  const { startBusy, stopBusy } = await import('../../src/live/load.ts');
  const kids = await startBusy(2, 60_000);
  assert.equal(kids.filter((k) => k.exitCode === null).length, 2);
  const exited = Promise.all(kids.map((k) => new Promise((r) => k.once('exit', r))));
  stopBusy(kids);
  await exited;
  const self = await startBusy(1, 100);
  await new Promise((r) => self[0]!.once('exit', r));
  assert.equal(self[0]!.exitCode, 0, 'a busy process stops at its own deadline');
});

test('live pit: ticks missed while the vCPU is paused are delivered afterwards with reinject, lost without', async (t) => {
  if (!needKvm(t)) return;
  const { LiveMachine } = await import('../../src/live/vmm.ts');
  const missed: Record<string, number> = {};
  for (const reinject of [true, false]) {
    const k = LiveKvm.open();
    try {
      const m = new LiveMachine(k, { guest: buildGuest('pit'), params: [11932], pit: { reinject } });
      m.start();
      await m.waitForLine(/pit started/, 20_000);
      const load = m.markTimes[0]!;
      await new Promise((r) => setTimeout(r, 100));
      await m.pause('none');
      await new Promise((r) => setTimeout(r, 300)); // ~30 periods with nobody to take IRQ0
      m.resume();
      await new Promise((r) => setTimeout(r, 400));
      const periods = Number((process.hrtime.bigint() - load) / 10_000_150n);
      await m.pause('none');
      missed[String(reinject)] = periods - m.tickTimes.length;
      await m.stop();
    } finally {
      k.close();
    }
  }
  console.log(`pit after a 300 ms pause: ${missed.true} periods without IRQ0 with reinject, ${missed.false} without`);
  // reinject: pending counts the expiries and pit_do_work injects one per EOI until none is left; the
  // guest catches up within the 400 ms after the resume (a few may still be pending at the end).
  // Off: at most one IRQ0 was pending in the PIC over the pause, the other ~29 are gone.
  assert.ok(missed.true! <= 2, `reinject on: ${missed.true} periods without IRQ0`);
  assert.ok(missed.false! >= 20, `reinject off: ${missed.false} periods without IRQ0`);
});
