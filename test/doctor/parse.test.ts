// Parsers on recorded real inputs (test/fixtures/doctor/README.md says where each came from). Expected
// values are read off the recorded files by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  clockFacts,
  clockLines,
  isClockLine,
  ntpClientsFromComms,
  parseClocksourceList,
  parseCmdline,
  parseCpuinfo,
  parseKernelLog,
  parseMaps,
  parseProcStat,
  parseTimerList,
  splitCmdline,
  stealBetween,
} from '../../src/doctor/parse.ts';
import { kmsgRecordToDmesg } from '../../src/doctor/source.ts';

const FIX = join(import.meta.dirname, '../fixtures/doctor');
const read = (machine: string, path: string) => readFileSync(join(FIX, machine, path), 'utf8');
const CS = 'sys/devices/system/clocksource/clocksource0';

test('clocksource lists keep the kernel order, including the jiffies-only guest', () => {
  assert.deepEqual(parseClocksourceList(read('firecracker-pvm', `${CS}/available_clocksource`)), ['tsc', 'kvm-clock']);
  assert.deepEqual(parseClocksourceList(read('qemu-tcg-pc', `${CS}/available_clocksource`)), ['tsc', 'hpet', 'acpi_pm']);
  assert.equal(read('qemu-tcg-jiffies-only', `${CS}/available_clocksource`), 'refined-jiffies jiffies \n');
  assert.deepEqual(parseClocksourceList(read('qemu-tcg-jiffies-only', `${CS}/available_clocksource`)), ['refined-jiffies', 'jiffies']);
  assert.deepEqual(parseClocksourceList(read('coreos-bare-metal-refined-jiffies', `${CS}/current_clocksource`)), ['refined-jiffies']);
});

test('the command line splits at "--": kernel parameters before, init arguments after', () => {
  const c = parseCmdline(read('firecracker-pvm', 'proc/cmdline'));
  assert.equal(c.params[0]!.key, 'mitigations');
  assert.equal(c.params[0]!.value, 'auto,no_guest_host,no_guest_guest');
  assert.equal(c.params.at(-1)!.key, 'rdinit');
  assert.equal(c.initArgs[0], '--firecracker-init');
  assert.ok(!c.params.some((p) => p.key === '--addr'), "!c.params.some((p) => p.key === '--addr')");
  assert.deepEqual(c.time, { tsc: [], notsc: false, noKvmclock: false, noKvmclockVsyscall: false, noTimerCheck: false });
});

test('time parameters: clocksource=, tsc= lists, no-kvmclock, quoted values', () => {
  const c = parseCmdline(
    'root=/dev/vda clocksource=kvm-clock tsc=reliable,nowatchdog no-kvmclock nohz=off acpi_osi="Windows 2009" clocksource=tsc\n',
  );
  assert.equal(c.time.clocksource, 'tsc'); // the later occurrence wins
  assert.deepEqual(c.time.tsc, ['reliable', 'nowatchdog']);
  assert.equal(c.time.noKvmclock, true);
  assert.equal(c.time.nohz, 'off');
  assert.deepEqual(splitCmdline('a="b c" d'), ['a=b c', 'd']);
});

test('cpuinfo flags: this EPYC guest has an invariant TSC with a known frequency', () => {
  const c = parseCpuinfo(read('firecracker-pvm', 'proc/cpuinfo'));
  assert.equal(c.cpus, 2);
  assert.equal(c.vendor, 'AuthenticAMD');
  assert.equal(c.modelName, 'AMD EPYC');
  assert.equal(c.invariantTsc, true);
  assert.equal(c.timeFlags.tsc_known_freq, true);
  assert.equal(c.timeFlags.tsc_deadline_timer, true);
  assert.equal(c.timeFlags.hypervisor, true);
  assert.deepEqual(c.inconsistentFlags, []);
});

test('cpuinfo flags: QEMU TCG guests have no invariant TSC; the -tsc one has no tsc flag at all', () => {
  const pc = parseCpuinfo(read('qemu-tcg-pc', 'proc/cpuinfo'));
  assert.equal(pc.cpus, 1);
  assert.equal(pc.timeFlags.tsc, true);
  assert.equal(pc.invariantTsc, false);
  assert.equal(pc.timeFlags.hypervisor, true);
  const j = parseCpuinfo(read('qemu-tcg-jiffies-only', 'proc/cpuinfo'));
  assert.equal(j.timeFlags.tsc, false);
});

test('kernel log lines: dmesg, syslog copies and lines without timestamps', () => {
  const fc = parseKernelLog(read('firecracker-pvm', 'dmesg.txt'));
  assert.deepEqual(fc[0], {
    ts: '0.000000',
    text: 'Linux version 6.18.44-fc-v595 (builder@sandboxing) (gcc (GCC) 15.3.0, GNU ld (GNU Binutils) 2.46) #1 SMP PREEMPT_DYNAMIC @0',
  });
  const px = parseKernelLog(read('bare-metal-proxmox-syslog', 'dmesg.txt'));
  assert.deepEqual(px[1], { ts: '0.000000', text: 'tsc: Detected 3193.905 MHz processor' });
  const nq = parseKernelLog(read('nested-qemu-hpet', 'dmesg.txt'));
  assert.deepEqual(nq.at(-1), { text: 'clocksource: Switched to clocksource hpet' });
});

test('clock lines of this machine, in boot order', () => {
  const lines = clockLines(parseKernelLog(read('firecracker-pvm', 'dmesg.txt'))).map((l) => l.text);
  assert.deepEqual(lines, [
    'Hypervisor detected: KVM',
    'kvm-clock: Using msrs 4b564d01 and 4b564d00',
    'kvm-clock: using sched offset of 52991526 cycles',
    'clocksource: kvm-clock: mask: 0xffffffffffffffff max_cycles: 0x1cd42e4dffb, max_idle_ns: 881590591483 ns',
    'tsc: Detected 2596.134 MHz processor',
    'TSC deadline timer available',
    'clocksource: refined-jiffies: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 7645519600211568 ns',
    'clocksource: jiffies: mask: 0xffffffff max_cycles: 0xffffffff, max_idle_ns: 7645041785100000 ns',
    'clocksource: tsc-early: mask: 0xffffffffffffffff max_cycles: 0x256bf8268dd, max_idle_ns: 440795235267 ns',
    'clocksource: Switched to clocksource kvm-clock',
    'clocksource: tsc: mask: 0xffffffffffffffff max_cycles: 0x256bf8268dd, max_idle_ns: 440795235267 ns',
    'clocksource: Switched to clocksource tsc',
    'sched_clock: Marking stable (432011435, 1456806)->(463841125, -30372884)',
  ]);
  assert.equal(isClockLine('io scheduler mq-deadline registered'), false);
  assert.equal(isClockLine('Timer migration: 1 hierarchy levels; 8 children per group; 1 crossnode level'), false);
});

test('clock facts: this Firecracker guest', () => {
  const f = clockFacts(parseKernelLog(read('firecracker-pvm', 'dmesg.txt')));
  assert.equal(f.kernelVersion, '6.18.44-fc-v595');
  assert.equal(f.hypervisor, 'KVM');
  assert.equal(f.tscDetectedMhz, '2596.134');
  assert.deepEqual(f.switches, ['kvm-clock', 'tsc']);
  assert.deepEqual(
    f.registered.map((r) => r.name),
    ['kvm-clock', 'refined-jiffies', 'jiffies', 'tsc-early', 'tsc'],
  );
  assert.deepEqual(f.registered[0], {
    name: 'kvm-clock',
    mask: '0xffffffffffffffff',
    maxCycles: '0x1cd42e4dffb',
    maxIdleNs: '881590591483',
  });
  assert.equal(f.kvmClockMsrs, '4b564d01 and 4b564d00');
  assert.equal(f.kvmClockSchedOffsetCycles, '52991526');
  assert.equal(f.tscDeadline, true);
  assert.equal(f.vmFork, true);
  assert.deepEqual(f.tscUnstable, []);
});

test('clock facts: TCG guest calibrates the TSC against the PIT and refines it', () => {
  const f = clockFacts(parseKernelLog(read('qemu-tcg-pc', 'dmesg.txt')));
  assert.equal(f.hypervisor, undefined);
  assert.equal(f.tscRefinedMhz, '2596.115');
  assert.deepEqual(f.switches, ['tsc-early', 'tsc']);
  assert.ok(
    f.registered.some((r) => r.name === 'hpet'),
    "f.registered.some((r) => r.name === 'hpet')",
  );
  assert.ok(
    f.registered.some((r) => r.name === 'acpi_pm'),
    "f.registered.some((r) => r.name === 'acpi_pm')",
  );
});

test('clock facts: jiffies-only guest registers nothing but the jiffies clocksources', () => {
  const f = clockFacts(parseKernelLog(read('qemu-tcg-jiffies-only', 'dmesg.txt')));
  assert.deepEqual(
    f.registered.map((r) => r.name),
    ['refined-jiffies', 'jiffies'],
  );
  assert.deepEqual(f.switches, ['refined-jiffies']);
  assert.equal(f.tscDetectedMhz, undefined);
});

test('clock facts: watchdog and hypervisor verdicts from published logs', () => {
  const bhyve = clockFacts(parseKernelLog(read('bhyve-propolis-guest', 'dmesg.txt')));
  assert.deepEqual(bhyve.watchdogMarked, ['tsc']);
  assert.deepEqual(bhyve.tscUnstable, ['clocksource watchdog']);
  assert.deepEqual(bhyve.switches, ['acpi_pm']);
  const hv = clockFacts(parseKernelLog(read('hyperv-azure-tsc-unstable', 'dmesg.txt')));
  assert.equal(hv.hypervisor, 'Microsoft Hyper-V');
  assert.deepEqual(hv.tscUnstable, ['running on Hyper-V']);
  const hvi = clockFacts(parseKernelLog(read('hyperv-azure-invariant-tsc', 'dmesg.txt')));
  assert.deepEqual(hvi.switches, ['hyperv_clocksource_tsc_page', 'tsc']);
  assert.equal(hvi.tscRefinedMhz, '2700.280');
  const ch = clockFacts(parseKernelLog(read('cloud-hypervisor-kvm', 'dmesg.txt')));
  assert.equal(ch.hypervisor, 'KVM');
  assert.equal(ch.kvmClockSchedOffsetCycles, '4891131401');
  assert.equal(ch.tscDetectedMhz, '2904.000');
  const old = clockFacts(parseKernelLog(read('kvm-guest-no-tsc', 'dmesg.txt')));
  assert.deepEqual(old.switches, ['kvm-clock']);
  const xen = clockFacts(parseKernelLog(read('xen-guest', 'dmesg.txt')));
  assert.equal(xen.tscDetectedTscMhz, '2394.476');
  assert.equal(xen.tscCalibration, 'Fast TSC calibration using PIT');
  const bm = clockFacts(parseKernelLog(read('bare-metal-watchdog-hpet', 'dmesg.txt')));
  assert.deepEqual(bm.switches, ['hpet']);
});

test('/proc/stat: steal is field 8 of the cpu line; guest time is not counted twice', () => {
  const a = parseProcStat(read('firecracker-pvm', 'proc/stat'))!;
  // recorded line: "cpu  4452 0 2805 240002 570 0 44 8 0 0", summed by hand
  assert.equal(a.steal, 8n);
  assert.equal(a.total, 4452n + 2805n + 240002n + 570n + 44n + 8n);
  const b = parseProcStat('cpu  100 0 100 700 0 0 0 100 50 0\n')!;
  const s = stealBetween(parseProcStat('cpu  0 0 0 0 0 0 0 0 0 0\n')!, b);
  assert.equal(s.share, 0.1);
  assert.equal(parseProcStat('intr 1 2 3\n'), undefined);
});

test('vDSO mappings: [vvar_vclock] on this 6.18 guest, none on the 6.1 TCG guest', () => {
  assert.deepEqual(parseMaps(read('firecracker-pvm', 'proc/self/maps')), { vdso: true, vvar: true, vvarVclock: true, vvarPages: 4 });
  assert.deepEqual(parseMaps(read('qemu-tcg-pc', 'proc/self/maps')), { vdso: true, vvar: true, vvarVclock: false, vvarPages: 4 });
});

test('NTP clients are recognised by comm, including the 15-character cut of systemd-timesyncd', () => {
  assert.deepEqual(ntpClientsFromComms(['bash', 'chronyd', 'systemd-timesyn', 'sshd']), ['chrony', 'systemd-timesyncd']);
  assert.deepEqual(ntpClientsFromComms(['node', 'sh']), []);
});

test('/dev/kmsg records render like dmesg', () => {
  assert.deepEqual(kmsgRecordToDmesg('6,339,5140900,-;clocksource: Switched to clocksource tsc\n SUBSYSTEM=x\n'), [
    '[    5.140900] clocksource: Switched to clocksource tsc',
  ]);
  assert.deepEqual(kmsgRecordToDmesg('6,1,51,-;kvm-clock: using sched offset of 52991526 cycles\n'), [
    '[    0.000051] kvm-clock: using sched offset of 52991526 cycles',
  ]);
});

test('/proc/timer_list: one-shot high-res ticks from lapic-deadline on both CPUs, no broadcast device', () => {
  const t = parseTimerList(read('firecracker-pvm', 'proc/timer_list'));
  assert.deepEqual(t.hresActive, [true, true]);
  assert.deepEqual(t.tickDevices, [
    { cpu: 'broadcast', mode: 'oneshot', device: null },
    { cpu: 0, mode: 'oneshot', device: 'lapic-deadline', eventHandler: 'hrtimer_interrupt' },
    { cpu: 1, mode: 'oneshot', device: 'lapic-deadline', eventHandler: 'hrtimer_interrupt' },
  ]);
});
