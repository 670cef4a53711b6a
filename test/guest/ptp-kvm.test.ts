// The guest's ptp_kvm PHC (drivers/ptp/ptp_kvm_x86.c, ptp_kvm_common.c) on a scenario VM: what each of
// the PHC reading ioctls returns, against the world host's (NTP-synced) CLOCK_REALTIME.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HYPERCALL_EXIT_NS, HYPERCALL_RETURN_NS, PtpKvm } from '../../src/guest/index.ts';
import { parseScenario } from '../../src/world/scenario.ts';
import { resolveScenario } from '../../src/world/resolve.ts';
import { World } from '../../src/world/world.ts';

const S = 1_000_000_000n;

/** One VM on a host whose crystal is 50 ppm fast (KVM's free-running REALTIME model then drifts from the host's NTP-true one). */
function boot(profile: string, cmdline = '') {
  const r = resolveScenario(
    parseScenario({
      name: 'ptp',
      duration: '20min',
      hosts: [{ name: 'h0', tsc: { freq_khz: 2596136 }, oscillator: { ppm: 50 } }],
      vms: [{ name: 'vm0', host: 'h0', profile, cmdline }],
    }),
  );
  const world = new World(r);
  const b = world.bootVm(r.vms[0]!);
  world.engine.run(10n * 60n * S);
  return { world, b, host: world.host('h0') };
}

test('on kvm-clock PTP_SYS_OFFSET_PRECISE pairs the host REALTIME with the guest REALTIME at the same instant, exactly', () => {
  const { world, b, host } = boot('qemu-kvm-noinvtsc');
  const g = b.guest;
  assert.equal(g.currentClocksource().trim(), 'kvm-clock');
  const ptp = PtpKvm.probe(g);
  assert.ok(ptp instanceof PtpKvm);
  const r = ptp.sysOffsetPrecise();
  assert.ok(Array.isArray(r));
  const now = world.engine.now;
  // device: the world host's REALTIME (NTP-synced: true UTC), which is what KVM's host clock reads too
  assert.equal(r[1], host.realtime(now));
  assert.equal(r[1], world.truth(now));
  assert.equal(b.vm.kvm!.host.realtimeNsAt(b.vm.hostTsc()), host.realtime(now));
  // sys_realtime: the guest's CLOCK_REALTIME at the pairing's kvm-clock cycles, which is now
  assert.equal(r[0], g.clockGettime('realtime'));
  assert.equal(r[2], r[0]);
  // gettime64 alone: the host REALTIME
  assert.equal(ptp.gettime(), host.realtime(now));
});

test('on tsc the cross timestamp is -ENODEV (cs_id kvm-clock is not the clocksource), _EXTENDED -EOPNOTSUPP; PTP_SYS_OFFSET brackets each hypercall', () => {
  const { world, b, host } = boot('qemu-kvm');
  const g = b.guest;
  assert.equal(g.currentClocksource().trim(), 'tsc');
  const ptp = PtpKvm.probe(g) as PtpKvm;
  assert.equal(ptp.sysOffsetPrecise(), 'ENODEV');
  assert.equal(ptp.sysOffsetExtended(), 'EOPNOTSUPP');
  const before = ptp.hypercalls;
  const rs = ptp.sysOffset(25);
  assert.ok(Array.isArray(rs));
  assert.equal(rs.length, 25);
  assert.equal(ptp.hypercalls - before, 25);
  const sys = g.clockGettime('realtime');
  const h = host.realtime(world.engine.now);
  for (const r of rs) assert.deepEqual(r, [sys - HYPERCALL_EXIT_NS - HYPERCALL_RETURN_NS, h - HYPERCALL_RETURN_NS, sys]);
  // the reading's middle stands for the PHC read: 1 µs delay, and the host read 100 ns after the middle
  const [s0, phc, s1] = rs[0]!;
  assert.equal(s1 - s0, 1000n);
  assert.equal(phc - (s0 + (s1 - s0) / 2n) - (h - sys), 100n);
});

test('no /dev/ptp0 without KVM (qemu-tcg) or without kvm-clock (no-kvmclock): ptp_kvm_init is -ENODEV', () => {
  assert.equal(PtpKvm.probe(boot('qemu-tcg').b.guest), 'ENODEV');
  assert.equal(PtpKvm.probe(boot('qemu-kvm', 'no-kvmclock').b.guest), 'ENODEV');
});
