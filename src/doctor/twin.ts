// The twin: a scenario that makes timevisor's guest model boot "this machine", and the comparison of what
// the model then shows against what the machine shows. Choices are explained; what the scenario cannot
// carry, and whatever the replay does not reproduce, is listed as a difference — never hidden.
//
// Pure: planTwin() returns the scenario as data and YAML text; writing the file is the CLI's job (so
// src/doctor keeps no write path), and replaying it is the guest model's (`timevisor guest --scenario`).
import { stringify } from 'yaml';
import type { DoctorReport } from './doctor.ts';
import { gapFor } from './gaps.ts';
import { lineSafe } from './safe-text.ts';
import { type ChronyRefclockConf, isClockLine, type Cmdline } from './parse.ts';
import { machineProfile } from '../vmm/index.ts';

export interface TwinChoice {
  key: string;
  value: string;
  why: string;
}

export interface TwinPlan {
  /** Scenario object in the form src/world/scenario.ts validates (hosts[], vms[]). */
  scenario: Record<string, unknown>;
  yaml: string;
  choices: TwinChoice[];
  /** What the scenario cannot express about this machine (known before any replay). */
  gaps: string[];
}

/**
 * chrony.conf's `refclock PHC /dev/ptp0 …` as the twin's sync.refclock: only the ptp_kvm clock of a KVM
 * profile is modelled; anything else is a gap.
 */
function twinRefclock(rc: ChronyRefclockConf, profile: string, gaps: string[]): Record<string, unknown> | null {
  if (rc.parameter !== '/dev/ptp0') {
    gaps.push(`chrony's refclock PHC ${rc.parameter}: the twin's guests have only the ptp_kvm clock, /dev/ptp0`);
    return null;
  }
  if (machineProfile(profile).accel !== 'kvm') {
    gaps.push(`chrony's refclock PHC /dev/ptp0: profile ${profile} has no KVM, so no ptp_kvm clock`);
    return null;
  }
  const { driver: _d, parameter, nocrossts, ...opts } = rc;
  return { phc: parameter, ...opts, ...(nocrossts ? { nocrossts: true } : {}) };
}

/** Which VMM profile this machine looks like, from the firmware and hypervisor it shows. */
export function guessProfile(r: DoctorReport): { profile: string; why: string; gap?: string } {
  const log = r.kernelLog.ok ? r.kernelLog.value : undefined;
  const hv = r.hypervisor.ok ? r.hypervisor.value.name : undefined;
  const evidence = r.hypervisor.ok ? r.hypervisor.value.evidence.join(' ') : '';
  const oem = log?.facts.acpiOem;
  const invariant = r.cpu.ok ? r.cpu.value.invariantTsc : true;
  const avail = r.clocksource.available.ok ? r.clocksource.available.value.names : [];
  // "Hypervisor detected: PVM": the kernel's pvm_detect found itself at hardware CPL3 under kvm-pvm. The
  // PVM guest learns its TSC rate from the PVM MSR, not from kvm-clock, so a KVM profile would print a
  // different MHz (pvclock_tsc_khz's round trip) and "Hypervisor detected: KVM".
  if (hv === 'PVM')
    return oem === 'FIRECK'
      ? { profile: 'firecracker-pvm', why: 'a PVM guest ("Hypervisor detected: PVM") with ACPI tables from OEM "FIRECK" (Firecracker)' }
      : {
          profile: 'firecracker-pvm',
          why: 'a PVM guest ("Hypervisor detected: PVM"); firecracker-pvm is the one PVM profile',
          gap: `the VMM could not be identified${oem ? ` (ACPI OEM "${oem}")` : ''}; devices of the twin are Firecracker's`,
        };
  if (oem === 'FIRECK') return { profile: 'firecracker', why: 'ACPI tables from OEM "FIRECK" (Firecracker)' };
  if (oem === 'CLOUDH') return { profile: 'cloud-hypervisor', why: 'ACPI tables from OEM "CLOUDH" (Cloud Hypervisor)' };
  const qemu = oem === 'BOCHS' || /QEMU/.test(evidence) || /QEMU|Bochs/.test(log?.facts.dmi ?? '');
  if (hv === 'KVM') {
    if (avail.length > 0 && avail.every((n) => n === 'refined-jiffies' || n === 'jiffies'))
      return {
        profile: 'kvmtool',
        why: 'a KVM guest that offers only refined-jiffies and jiffies (no kvm-clock, TSC, HPET or PM timer), as under kvmtool',
      };
    const p = invariant ? 'qemu-kvm' : 'qemu-kvm-noinvtsc';
    return qemu
      ? { profile: p, why: `QEMU firmware on KVM${invariant ? '' : ', TSC not invariant'}` }
      : {
          profile: p,
          why: `KVM guest of an unrecognised VMM; ${p} is the closest profile`,
          gap: 'the VMM could not be identified; devices and CPUID of the twin are those of QEMU',
        };
  }
  if (qemu || /unknown hypervisor/.test(hv ?? ''))
    return { profile: 'qemu-tcg', why: 'QEMU without a paravirtual interface (TCG emulation)' };
  if (hv === 'none')
    return {
      profile: 'qemu-kvm',
      why: 'bare metal has no VMM profile; qemu-kvm is the nearest',
      gap: 'this is bare metal: the guest model only boots virtual machines, so firmware, devices and TSC calibration differ',
    };
  return {
    profile: 'qemu-kvm',
    why: `${hv ?? 'unknown platform'} has no VMM profile; qemu-kvm is the nearest`,
    gap: `${hv ?? 'this platform'} is not modelled: its paravirtual clock and timer devices have no twin`,
  };
}

/** The kernel's own parameters back as one line (init arguments after "--" are not the kernel's business). */
export function kernelCmdline(c: Cmdline): string {
  return c.params.map((p) => (p.value === undefined ? p.key : `${p.key}=${/\s/.test(p.value) ? `"${p.value}"` : p.value}`)).join(' ');
}

/** A PVM guest whose sysfs (or, failing that, boot log) shows that kvm-clock never registered. */
function pvmWithoutKvmclock(r: DoctorReport, avail: string[]): boolean {
  if (r.clocksource.available.ok) return !avail.includes('kvm-clock');
  const log = r.kernelLog.ok ? r.kernelLog.value : undefined;
  return !!log?.fromBoot && !log.clockLines.some((l) => /kvm-clock: Using msrs/.test(l));
}

/** TSC kHz from what the kernel printed ("2596.134" MHz → 2596134). */
export function mhzTextToKhz(mhz: string): number {
  const [whole, frac = ''] = mhz.split('.');
  return Number(whole) * 1000 + Number((frac + '000').slice(0, 3));
}

export function planTwin(r: DoctorReport, name = 'doctor-twin'): TwinPlan {
  const choices: TwinChoice[] = [];
  const gaps: string[] = [];
  const facts = r.kernelLog.ok ? r.kernelLog.value.facts : undefined;

  const cpu = r.cpu.ok ? r.cpu.value : undefined;
  const prof = guessProfile(r);
  choices.push({ key: 'vms[0].profile', value: prof.profile, why: prof.why });
  if (prof.gap) gaps.push(prof.gap);

  const version = facts?.kernelVersion ?? (r.kernel.ok ? /Linux version (\S+)/.exec(r.kernel.value)?.[1] : undefined);
  const avail = r.clocksource.available.ok ? r.clocksource.available.value.names : [];
  const jiffiesOnly = avail.length > 0 && avail.every((n) => n === 'refined-jiffies' || n === 'jiffies');
  let preset = version && /yocto|i[3-6]86/.test(version) ? 'yocto-qemux86' : 'distro';
  if (jiffiesOnly && prof.profile !== 'kvmtool') {
    // The one modelled machine that ends with nothing but jiffies (docs/fidelity.md, guest section).
    choices[0] = {
      key: 'vms[0].profile',
      value: 'kvmtool',
      why: `only ${avail.join(' and ')} are available; kvmtool with the yocto-qemux86 kernel is the modelled machine that ends there (TSC calibration against the PIT fails, no HPET, no PM timer) — this machine looked like ${prof.profile}`,
    };
    prof.profile = 'kvmtool';
    preset = 'yocto-qemux86';
    gaps.push(
      `this machine reached a jiffies-only clock its own way (${cpu && !cpu.timeFlags.tsc ? 'its CPU has no TSC' : 'no usable TSC'}); the scenario cannot express VMM options such as QEMU's -cpu or -machine, so the twin takes the modelled route to the same sysfs text and its boot lines say why it got there (TSC calibration failing) differently`,
    );
  }
  choices.push({
    key: 'vms[0].kernel',
    value: preset,
    why: `this kernel is ${version ?? 'unknown'}; ${preset === 'distro' ? 'a 64-bit distribution-style configuration (kvm-clock, HPET, ACPI PM timer, NO_HZ, high-res timers) is the nearest preset' : 'the 32-bit Yocto qemux86 preset'}`,
  });
  if (version)
    gaps.push(
      `kernel build: the twin boots the "${preset}" preset, not ${version}; boot lines that depend on this build's configuration may differ`,
    );

  let cmdline = r.cmdline.ok ? kernelCmdline(r.cmdline.value) : '';
  let cmdlineWhy = r.cmdline.ok ? "this machine's /proc/cmdline, kernel parameters only" : `/proc/cmdline unreadable (${r.cmdline.reason})`;
  if (prof.profile === 'firecracker-pvm' && !/(^| )no-kvmclock( |$)/.test(cmdline) && pvmWithoutKvmclock(r, avail)) {
    // The model's PVM guest registers kvm-clock from Firecracker's KVM leaves (an assumption: the PVM
    // platform init is boot-only code); this machine shows it did not, so the twin is told so.
    cmdline = [cmdline, 'no-kvmclock'].filter(Boolean).join(' ');
    cmdlineWhy += '; plus no-kvmclock, because this PVM guest registered no kvm-clock';
    gaps.push(
      'this PVM guest did not register kvm-clock; the scenario cannot say that of a platform, so the twin boots with no-kvmclock, which the machine was not given',
    );
  }
  choices.push({ key: 'vms[0].cmdline', value: cmdline, why: cmdlineWhy });

  const mhz = facts?.tscRefinedMhz ?? facts?.tscDetectedMhz;
  let freqKhz: number;
  if (mhz) {
    freqKhz = mhzTextToKhz(mhz);
    choices.push({
      key: 'hosts[0].tsc.freq_khz',
      value: String(freqKhz),
      why: `the kernel printed "tsc: ${facts?.tscRefinedMhz ? 'Refined TSC clocksource calibration' : 'Detected'} ${mhz} MHz"; ${
        prof.profile === 'firecracker-pvm'
          ? "a PVM guest reads the host kernel's tsc_khz from MSR 0x4b564d13, so this is the host's number exactly"
          : "the host's true TSC rate is not visible from inside the guest (only what KVM/CPUID reported), so the printed value is used"
      }`,
    });
  } else {
    freqKhz = 2_596_136;
    choices.push({
      key: 'hosts[0].tsc.freq_khz',
      value: String(freqKhz),
      why: "no TSC frequency in the kernel log; the value recorded from this project's KVM host is a placeholder",
    });
    gaps.push('the TSC frequency is unknown (no "tsc: Detected" line), so the twin\'s is a placeholder');
  }
  const constant = cpu?.timeFlags.constant_tsc ?? true;
  const nonstop = cpu?.timeFlags.nonstop_tsc ?? true;
  choices.push({
    key: 'hosts[0].tsc',
    value: `constant ${constant}, nonstop ${nonstop}`,
    why: cpu ? 'from the constant_tsc / nonstop_tsc CPU flags' : '/proc/cpuinfo unreadable: assumed invariant',
  });
  if (cpu && !cpu.timeFlags.tsc)
    gaps.push("this CPU shows no TSC at all (CPUID.1:EDX bit 4 clear); the twin's profile decides whether its guest sees one");

  const tx = r.ntp.adjtimex.ok ? r.ntp.adjtimex.value : undefined;
  let ppm = 0;
  if (tx?.synchronized) {
    ppm = Math.round(-tx.freqPpm * 1000) / 1000;
    choices.push({
      key: 'hosts[0].oscillator.ppm',
      value: String(ppm),
      why: `the kernel's NTP frequency correction is ${tx.freqPpm.toFixed(3)} ppm, so the clocksource runs ${(-tx.freqPpm).toFixed(3)} ppm off true time`,
    });
  } else {
    choices.push({
      key: 'hosts[0].oscillator.ppm',
      value: '0',
      why: tx ? 'the clock is not NTP-disciplined, so its frequency error cannot be read: assumed 0' : 'adjtimex not read: assumed 0',
    });
  }
  const clients = r.ntp.clients.ok ? r.ntp.clients.value : undefined;
  const vmSync: { sync?: Record<string, unknown> } = {};
  const ntpServers: Record<string, unknown>[] = [];
  const chrony = r.ntp.chrony.ok ? r.ntp.chrony.value : undefined;
  const phc = chrony?.conf.refclocks?.find((x) => x.driver.toUpperCase() === 'PHC');
  if (chrony && (chrony.conf.sources.length > 0 || phc)) {
    const conf = chrony.conf;
    const tracking = chrony.tracking.ok ? chrony.tracking.value : undefined;
    // one-way path: half of chronyd's root delay when tracking says it, else a LAN-like 1 ms
    const oneWayS = tracking && tracking.rootDelayS > 0 ? tracking.rootDelayS / 2 : 0.001;
    for (const src of conf.sources) ntpServers.push({ name: src.name, path: { delay: `${Math.round(oneWayS * 1e6)}us`, jitter: '100us' } });
    const first = conf.sources[0];
    const refclock = phc ? twinRefclock(phc, prof.profile, gaps) : null;
    vmSync.sync = {
      method: 'chrony',
      ...(first || !refclock ? { servers: conf.sources.map((x) => x.name) } : {}),
      iburst: conf.sources.some((x) => x.iburst),
      ...(first?.minpoll !== undefined ? { minpoll: first.minpoll } : {}),
      ...(first?.maxpoll !== undefined ? { maxpoll: first.maxpoll } : {}),
      ...(conf.makestep ? { makestep: conf.makestep } : {}),
      ...(conf.maxslewrate !== undefined ? { maxslewrate_ppm: conf.maxslewrate } : {}),
      ...(conf.rtcsync ? { rtcsync: true } : {}),
      ...(refclock ? { refclock } : {}),
    };
    if (refclock)
      choices.push({
        key: 'vms[0].sync.refclock',
        value: `PHC ${phc!.parameter}`,
        why: `${chrony.confPath} has refclock PHC ${phc!.parameter}: the twin reads the ptp_kvm clock (KVM_HC_CLOCK_PAIRING)`,
      });
    choices.push({
      key: 'vms[0].sync',
      value: `chrony, servers ${conf.sources.map((x) => x.name).join(', ')}`,
      why: `chronyd runs; ${chrony.confPath}${conf.makestep ? ` has makestep ${conf.makestep.join(' ')}` : ' has no makestep'}${conf.sources.some((x) => x.iburst) ? ', iburst' : ''}`,
    });
    choices.push({
      key: 'ntp_servers[].path.delay',
      value: `${Math.round(oneWayS * 1e6)} µs each way`,
      why: tracking
        ? `half of chronyc tracking's root delay (${tracking.rootDelayS} s)`
        : 'chronyc tracking not readable: a 1 ms path assumed',
    });
    if (conf.sources.some((x) => x.directive === 'pool'))
      gaps.push('a chrony `pool` takes up to 4 servers from DNS; the twin has one server per pool line');
    if (conf.elsewhere.length > 0) gaps.push(`chrony configuration the twin did not read: ${conf.elsewhere.join('; ')}`);
    gaps.push("the NTP servers' own clocks are taken as true UTC (stratum 1), their paths as symmetric");
  } else if (clients && clients.length > 0) {
    vmSync.sync = { method: 'ntp' };
    choices.push({ key: 'vms[0].sync.method', value: 'ntp', why: `the machine runs ${clients.join(', ')}` });
    gaps.push(
      `the twin's NTP client is timevisor's ntpd-style kernel-discipline client against an ideal server, not ${clients.join('/')} with this machine's servers and settings${clients.includes('chronyd') ? ` (chrony.conf: ${r.ntp.chrony.ok ? 'no server lines' : r.ntp.chrony.reason})` : ''}`,
    );
  }

  // kvm_sched_clock_init() printed kvm-clock's reading at kvmclock_init: how long this VM existed
  // before its kernel set up kvm-clock (boot-specific, so carried over rather than taken from the profile)
  const offset = facts?.kvmClockSchedOffsetCycles;
  const vmExtra: Record<string, string> = {};
  if (offset !== undefined) {
    vmExtra.kvmclock_at_init = `${offset}ns`;
    choices.push({
      key: 'vms[0].kvmclock_at_init',
      value: vmExtra.kvmclock_at_init,
      why: `the kernel printed "kvm-clock: using sched offset of ${offset} cycles": kvm-clock read ${offset} ns at kvmclock_init (arch/x86/kernel/kvmclock.c kvm_sched_clock_init)`,
    });
  }

  const scenario = {
    name,
    description: `Twin of ${r.origin === 'live' ? 'the machine timevisor doctor ran on' : r.origin}${version ? ` (Linux ${version})` : ''}, written by timevisor doctor.`,
    seed: 1,
    duration: '10s',
    sample_interval: '1s',
    hosts: [
      { name: 'host', oscillator: { ppm }, tsc: { freq_khz: freqKhz, constant, nonstop, invariant: constant && nonstop }, ntp: true },
    ],
    ...(ntpServers.length > 0 ? { ntp_servers: ntpServers } : {}),
    vms: [{ name: 'twin', host: 'host', profile: prof.profile, kernel: preset, cmdline, ...vmExtra, ...vmSync }],
  };
  const header = [
    '# Written by `timevisor doctor --scenario`: a twin of this machine for the guest model.',
    ...choices.map((c) => `# ${c.key} = ${c.value}: ${c.why}`),
    ...gaps.map((g) => `# gap: ${g}`),
  ].map(lineSafe);
  return { scenario, yaml: header.join('\n') + '\n' + stringify(scenario), choices, gaps };
}

/** What the guest model reports (keys of `timevisor guest --json`; the optional ones where it has them). */
export interface GuestView {
  boot_log: string[];
  available_clocksource: string;
  current_clocksource: string;
  clockevent_device: string;
  broadcast_device?: string;
  tick_mode?: string;
  vdso?: { clock: string; path: string }[];
}

export interface MachineView {
  available_clocksource?: string;
  current_clocksource?: string;
  clockevent_device?: string;
  /** Broadcast clockevent device as its sysfs file reads ("" + newline when there is none). */
  broadcast_device?: string;
  tick_mode?: 'oneshot' | 'periodic';
  /** Measured read path per clock: "vdso" when clearly cheaper than the system call. */
  vdso?: { clock: string; path: 'vdso' | 'syscall' }[];
  /** Clock lines of the boot log, without timestamps; undefined when the kernel log is unreadable. */
  boot_clock_lines?: string[];
  /** What the machine hides, and why (each comparison it prevents is skipped, not passed). */
  hidden: string[];
}

export function machineView(r: DoctorReport): MachineView {
  const hidden: string[] = [];
  const v: MachineView = { hidden };
  if (r.clocksource.available.ok) v.available_clocksource = r.clocksource.available.value.text;
  else hidden.push(`available_clocksource: ${r.clocksource.available.reason}`);
  if (r.clocksource.current.ok) v.current_clocksource = r.clocksource.current.value.text;
  else hidden.push(`current_clocksource: ${r.clocksource.current.reason}`);
  if (r.clockevents.ok && r.clockevents.value.perCpu.length > 0) v.clockevent_device = r.clockevents.value.perCpu[0]!;
  else hidden.push(`clockevent device: ${r.clockevents.ok ? 'no per-CPU device listed' : r.clockevents.reason}`);
  if (r.clockevents.ok) v.broadcast_device = `${r.clockevents.value.broadcast ?? ''}\n`;
  if (r.tick.ok) {
    const cpus = r.tick.value.tickDevices.filter((d) => d.cpu !== 'broadcast');
    if (cpus.length > 0) v.tick_mode = cpus.every((d) => d.mode === 'oneshot') ? 'oneshot' : 'periodic';
  } else hidden.push(`tick mode: ${r.tick.reason}`);
  if (r.vdso.cost.ok) v.vdso = r.vdso.cost.value.clocks.map((c) => ({ clock: c.clock, path: c.servedInUserspace ? 'vdso' : 'syscall' }));
  if (!r.kernelLog.ok) hidden.push(`boot log: ${r.kernelLog.reason}`);
  else if (!r.kernelLog.value.fromBoot)
    hidden.push(
      'boot log: the kernel log no longer starts at boot (the ring buffer dropped the first lines, or only an excerpt was recorded)',
    );
  else v.boot_clock_lines = r.kernelLog.value.clockLines.map(stripTimestamp);
  return v;
}

function stripTimestamp(line: string): string {
  return line.replace(/^\[\s*\d+\.\d+\]\s?/, '');
}

export interface TwinDifference {
  what: string;
  machine: string;
  twin: string;
  /** The documented reason, when this is a known gap of the guest model or the scenario format. */
  gap?: { id: string; explanation: string };
}

export interface TwinComparison {
  /** Keys compared and equal. */
  matched: string[];
  differences: TwinDifference[];
  /** Comparisons not made because the machine hides the input. */
  skipped: string[];
  /** Boot clock lines of the machine that the twin printed exactly. */
  matchedLines: number;
}

/** Numbers (signed, as %lld prints them) replaced, so "(432011435, 1456806)->(463841125, -30372884)" and "(1, 2)->(3, 4)" are the same kind of line. */
export function lineShape(line: string): string {
  return line.replace(/0x[0-9a-f]+|-?\d+(\.\d+)?/gi, '#');
}

export function compareTwin(machine: MachineView, twin: GuestView): TwinComparison {
  const res: TwinComparison = { matched: [], differences: [], skipped: [...machine.hidden], matchedLines: 0 };
  const sysfs: [string, string | undefined, string][] = [
    ['available_clocksource', machine.available_clocksource, twin.available_clocksource],
    ['current_clocksource', machine.current_clocksource, twin.current_clocksource],
    ['clockevent_device', machine.clockevent_device, twin.clockevent_device],
  ];
  if (twin.broadcast_device !== undefined) sysfs.push(['broadcast_device', machine.broadcast_device, twin.broadcast_device]);
  if (twin.tick_mode !== undefined) sysfs.push(['tick_mode', machine.tick_mode, twin.tick_mode]);
  for (const [what, m, t] of sysfs) {
    if (m === undefined) continue;
    // Compare the sysfs text itself; the twin may or may not end it with the file's newline.
    if (m.replace(/\n$/, '') === t.replace(/\n$/, '')) res.matched.push(what);
    else res.differences.push({ what, machine: JSON.stringify(m), twin: JSON.stringify(t) });
  }
  if (machine.vdso && twin.vdso) {
    const diffs = machine.vdso.flatMap((mc) => {
      const tc = twin.vdso!.find((x) => x.clock === mc.clock);
      return tc && tc.path !== mc.path ? [`${mc.clock}: ${mc.path} vs ${tc.path}`] : [];
    });
    if (diffs.length === 0) res.matched.push('vDSO read paths');
    else res.differences.push({ what: 'vDSO read paths', machine: diffs.join('; '), twin: '' });
  }
  if (machine.boot_clock_lines) {
    const twinLines = twin.boot_log.map(stripTimestamp).filter(isClockLine);
    const pool = [...twinLines];
    for (const line of machine.boot_clock_lines) {
      const exact = pool.indexOf(line);
      if (exact >= 0) {
        pool.splice(exact, 1);
        res.matchedLines++;
        continue;
      }
      const shaped = pool.findIndex((l) => lineShape(l) === lineShape(line));
      if (shaped >= 0) {
        res.differences.push({ what: 'boot line (numbers differ)', machine: line, twin: pool[shaped]! });
        pool.splice(shaped, 1);
      } else res.differences.push({ what: 'boot line missing in the twin', machine: line, twin: '' });
    }
    for (const extra of pool) res.differences.push({ what: 'boot line only in the twin', machine: '', twin: extra });
    // Same lines, other order: the clocksource switch sequence is what matters.
    const sw = (ls: string[]) =>
      ls.filter((l) => /Switched to clocksource/.test(l)).map((l) => l.replace(/^.*Switched to clocksource /, ''));
    const ms = sw(machine.boot_clock_lines);
    const ts = sw(twinLines);
    if (ms.join(' → ') === ts.join(' → ')) res.matched.push('clocksource switch sequence');
    else res.differences.push({ what: 'clocksource switch sequence', machine: ms.join(' → '), twin: ts.join(' → ') });
    if (res.matchedLines === machine.boot_clock_lines.length && pool.length === 0) res.matched.push('boot clock lines');
  }
  for (const d of res.differences) {
    const g = gapFor(d, machine.boot_clock_lines);
    if (g) d.gap = { id: g.id, explanation: g.explanation };
  }
  return res;
}

export function renderComparison(c: TwinComparison): string[] {
  const out: string[] = [];
  out.push(
    `twin: ${c.matched.length ? `matches ${c.matched.join(', ')}` : 'matches nothing'}${c.matchedLines ? ` (${c.matchedLines} boot clock lines identical)` : ''}.`,
  );
  if (c.differences.length) {
    out.push('twin differences (machine | twin):');
    for (const d of c.differences) {
      out.push(`  - ${d.what}: ${d.machine || '—'} | ${d.twin || '—'}`);
      if (d.gap) out.push(`      known gap (${d.gap.id}): ${d.gap.explanation}`);
    }
  }
  for (const s of c.skipped) out.push(`  (not compared: ${s})`);
  return out;
}
