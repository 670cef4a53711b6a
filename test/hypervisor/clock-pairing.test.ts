// KVM_HC_CLOCK_PAIRING (arch/x86/kvm/x86.c kvm_pv_clock_pairing): host REALTIME and guest TSC from one
// host TSC read, struct kvm_clock_pairing as include/uapi/linux/kvm_para.h lays it out, and its errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  decodeClockPairing,
  FlatGuestMemory,
  KVM_CLOCK_PAIRING_SIZE,
  KVM_CLOCK_PAIRING_WALLCLOCK,
  KVM_EFAULT,
  KVM_ENOSYS,
  KVM_EOPNOTSUPP,
  KVM_HC_CLOCK_PAIRING,
  KvmVm,
  kvmEmulateHypercall,
  LinuxHostTimekeeper,
} from '../../src/hypervisor/index.ts';

const GPA = 0x3000n;

function setup(o: { clocksourceIsTsc?: boolean; owner?: (tsc: bigint) => bigint } = {}) {
  let tsc = 5_000_000_000_000n;
  const host = new LinuxHostTimekeeper({
    tscKhz: 2_596_136,
    rdtsc: () => tsc,
    tscAtBoot: 0n,
    realtimeAtBootNs: 1_767_225_600_000_000_000n,
    clocksourceIsTsc: o.clocksourceIsTsc ?? true,
    ...(o.owner ? { realtimeAt: o.owner } : {}),
  });
  const memory = new FlatGuestMemory(0x10000);
  const vm = new KvmVm({ host, memory });
  const vcpu = vm.createVcpu();
  return { host, memory, vm, vcpu, advance: (c: bigint) => (tsc += c), tsc: () => tsc };
}

test('the pairing is the host REALTIME and the guest TSC (kvm_read_l1_tsc) of one host TSC read, in struct kvm_clock_pairing', () => {
  // an owner whose REALTIME is not the free-running model's: 1.5 s ahead of it
  const { memory, vcpu, host, advance, tsc } = setup({ owner: (t) => 1_767_225_601_500_000_000n + t });
  advance(2_596_136_000n); // 1 s
  const ret = kvmEmulateHypercall(vcpu, memory, KVM_HC_CLOCK_PAIRING, GPA, BigInt(KVM_CLOCK_PAIRING_WALLCLOCK));
  assert.equal(ret, 0);
  const p = decodeClockPairing(memory.read(GPA, KVM_CLOCK_PAIRING_SIZE));
  const real = 1_767_225_601_500_000_000n + tsc();
  assert.equal(p.sec, real / 1_000_000_000n);
  assert.equal(p.nsec, real % 1_000_000_000n);
  assert.equal(p.tsc, vcpu.readL1Tsc(tsc()));
  assert.equal(p.flags, 0);
  // the owner's clock is what KVM reads, for the pairing and for KVM_GET/SET_CLOCK alike
  assert.equal(host.realtimeNsAt(tsc()), real);
  // pad[9] is zeroed
  assert.deepEqual([...memory.read(GPA + 28n, 36)], new Array(36).fill(0));
});

test('without an owner the pairing uses the host timekeeper model (realtimeNsAt)', () => {
  const { memory, vcpu, host, tsc } = setup();
  assert.equal(kvmEmulateHypercall(vcpu, memory, KVM_HC_CLOCK_PAIRING, GPA, 0n), 0);
  const p = decodeClockPairing(memory.read(GPA, KVM_CLOCK_PAIRING_SIZE));
  assert.equal(p.sec * 1_000_000_000n + p.nsec, host.realtimeNsAt(tsc()));
});

test('-KVM_EOPNOTSUPP: another clock type, a host clocksource that is not the TSC, a vCPU in permanent TSC catch-up; -KVM_ENOSYS: another hypercall', () => {
  const a = setup();
  assert.equal(kvmEmulateHypercall(a.vcpu, a.memory, KVM_HC_CLOCK_PAIRING, GPA, 1n), -KVM_EOPNOTSUPP);
  assert.equal(kvmEmulateHypercall(a.vcpu, a.memory, 12, GPA, 0n), -KVM_ENOSYS);
  const b = setup({ clocksourceIsTsc: false });
  assert.equal(kvmEmulateHypercall(b.vcpu, b.memory, KVM_HC_CLOCK_PAIRING, GPA, 0n), -KVM_EOPNOTSUPP);
  const c = setup();
  c.vcpu.setTscKhz(3_000_000); // above the host's rate, no TSC scaling: tsc_always_catchup
  assert.equal(c.vcpu.tscAlwaysCatchup, true);
  assert.equal(kvmEmulateHypercall(c.vcpu, c.memory, KVM_HC_CLOCK_PAIRING, GPA, 0n), -KVM_EOPNOTSUPP);
  const d = setup();
  assert.equal(kvmEmulateHypercall(d.vcpu, d.memory, KVM_HC_CLOCK_PAIRING, 0xfff0n, 0n), -KVM_EFAULT); // past guest RAM
  assert.deepEqual([KVM_HC_CLOCK_PAIRING, KVM_EOPNOTSUPP, KVM_ENOSYS], [9, 95, 1000]);
});

test('struct kvm_clock_pairing layout and constants match the UAPI header, compiled', (t) => {
  const header = '/usr/include/x86_64-linux-gnu/asm/kvm_para.h';
  if (!existsSync(header)) return t.skip(`${header} missing (Debian package linux-libc-dev)`);
  if (spawnSync('cc', ['--version']).status !== 0) return t.skip('no C compiler (cc)');
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-pairing-'));
  writeFileSync(
    join(dir, 'p.c'),
    `#include <stdio.h>
#include <stddef.h>
#include <linux/kvm_para.h>
int main(void){printf("%zu %zu %zu %zu %zu %d %d %d %d\\n",sizeof(struct kvm_clock_pairing),offsetof(struct kvm_clock_pairing,sec),
offsetof(struct kvm_clock_pairing,nsec),offsetof(struct kvm_clock_pairing,tsc),offsetof(struct kvm_clock_pairing,flags),
KVM_HC_CLOCK_PAIRING,KVM_CLOCK_PAIRING_WALLCLOCK,KVM_EOPNOTSUPP,KVM_ENOSYS);return 0;}`,
  );
  const cc = spawnSync('cc', ['-o', join(dir, 'p'), join(dir, 'p.c')], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const out = spawnSync(join(dir, 'p'), { encoding: 'utf8' }).stdout.trim();
  assert.equal(
    out,
    `${KVM_CLOCK_PAIRING_SIZE} 0 8 16 24 ${KVM_HC_CLOCK_PAIRING} ${KVM_CLOCK_PAIRING_WALLCLOCK} ${KVM_EOPNOTSUPP} ${KVM_ENOSYS}`,
  );
});
