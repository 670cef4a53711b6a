// One reader per source of facts. Each takes a SystemSource and returns a Reading: the parsed value, or
// the reason it could not be read (missing file, permission, not Linux, not in a recording).
import { accessSync, constants } from 'node:fs';
import {
  clockFacts,
  clockLines,
  KVM_BACKENDS,
  ntpClientsFromComms,
  type ChronyConf,
  type ChronySourceLine,
  type ChronyTracking,
  parseChronyConf,
  parseChronycSources,
  parseChronycTracking,
  parseClocksourceList,
  parseCmdline,
  parseCpuinfo,
  parseKernelLog,
  parseMaps,
  parseProcStat,
  parseTimerList,
  type ClockFacts,
  type Cmdline,
  type CpuInfo,
  type CpuTimes,
  type TimerList,
  type VdsoMappings,
} from './parse.ts';
import { got, mapReading, missing, type Reading, type SystemSource } from './source.ts';

export const CLOCKSOURCE_DIR = '/sys/devices/system/clocksource/clocksource0';
export const CLOCKEVENTS_DIR = '/sys/devices/system/clockevents';

export interface SysfsText {
  /** Exactly what the file holds (e.g. "tsc kvm-clock \n"). */
  text: string;
  names: string[];
}

export function readAvailableClocksource(src: SystemSource): Reading<SysfsText> {
  return mapReading(src.readText(`${CLOCKSOURCE_DIR}/available_clocksource`), (text) => ({ text, names: parseClocksourceList(text) }));
}

export function readCurrentClocksource(src: SystemSource): Reading<SysfsText> {
  return mapReading(src.readText(`${CLOCKSOURCE_DIR}/current_clocksource`), (text) => ({ text, names: parseClocksourceList(text) }));
}

export interface ClockeventDevices {
  /** current_device of clockevent0..N, in CPU order. */
  perCpu: string[];
  /** The broadcast device, or null when there is none (empty file). */
  broadcast: string | null;
}

export function readClockevents(src: SystemSource): Reading<ClockeventDevices> {
  const dir = src.listDir(CLOCKEVENTS_DIR);
  if (!dir.ok) return dir;
  const cpus = dir.value.filter((n) => /^clockevent\d+$/.test(n)).sort((a, b) => Number(a.slice(10)) - Number(b.slice(10)));
  const perCpu: string[] = [];
  for (const c of cpus) {
    const r = src.readText(`${CLOCKEVENTS_DIR}/${c}/current_device`);
    if (!r.ok) return r;
    perCpu.push(r.value.trim());
  }
  const b = src.readText(`${CLOCKEVENTS_DIR}/broadcast/current_device`);
  const broadcast = b.ok && b.value.trim() ? b.value.trim() : null;
  return got({ perCpu, broadcast });
}

export function readCmdline(src: SystemSource): Reading<Cmdline> {
  return mapReading(src.readText('/proc/cmdline'), parseCmdline);
}

export function readCpuinfo(src: SystemSource): Reading<CpuInfo> {
  return mapReading(src.readText('/proc/cpuinfo'), parseCpuinfo);
}

export function readKernelVersion(src: SystemSource): Reading<string> {
  return mapReading(src.readText('/proc/version'), (t) => t.trim());
}

export interface KernelLogSummary {
  lines: number;
  /** Whether the log still starts at boot ("Linux version ..." first): a long-running kernel's ring buffer may have dropped it. */
  fromBoot: boolean;
  /** Clock lines as printed, with timestamps. */
  clockLines: string[];
  facts: ClockFacts;
}

export function readKernelLog(src: SystemSource): Reading<KernelLogSummary> {
  return mapReading(src.kernelLog(), (text) => {
    const lines = parseKernelLog(text);
    return {
      lines: lines.length,
      fromBoot: lines[0]?.text.startsWith('Linux version ') ?? false,
      clockLines: clockLines(lines).map((l) => (l.ts === undefined ? l.text : `[${l.ts.padStart(12)}] ${l.text}`)),
      facts: clockFacts(lines),
    };
  });
}

export function readProcStat(src: SystemSource): Reading<CpuTimes> {
  const r = src.readText('/proc/stat');
  if (!r.ok) return r;
  const t = parseProcStat(r.value);
  return t ? got(t) : missing('/proc/stat has no aggregate "cpu" line');
}

export function readVdsoMappings(src: SystemSource): Reading<VdsoMappings> {
  return mapReading(src.readText('/proc/self/maps'), parseMaps);
}

/** Time-sync daemons among running processes (/proc/<pid>/comm). */
export interface ChronyInfo {
  confPath: string;
  conf: ChronyConf;
  tracking: Reading<ChronyTracking>;
  sources: Reading<ChronySourceLine[]>;
}

/** chronyd's configuration (Debian's /etc/chrony/chrony.conf, else /etc/chrony.conf) and its monitoring reports. */
export function readChrony(src: SystemSource): Reading<ChronyInfo> {
  const paths = ['/etc/chrony/chrony.conf', '/etc/chrony.conf'];
  const found = paths.map((p) => [p, src.readText(p)] as const).find(([, r]) => r.ok);
  if (!found) return missing(`no chrony.conf (${paths.join(', ')}: not readable)`);
  const [confPath, text] = found;
  const raw = src.chronyc('tracking');
  const parsed = raw.ok ? parseChronycTracking(raw.value) : null;
  const tracking: Reading<ChronyTracking> = !raw.ok ? raw : parsed ? got(parsed) : missing('chronyc tracking: output not understood');
  return got({
    confPath,
    conf: parseChronyConf(text.ok ? text.value : ''),
    tracking,
    sources: mapReading(src.chronyc('sources'), parseChronycSources),
  });
}

export function readNtpClients(src: SystemSource): Reading<string[]> {
  const dir = src.listDir('/proc');
  if (!dir.ok) return dir;
  const pids = dir.value.filter((n) => /^\d+$/.test(n));
  if (pids.length === 0) return missing(src.live ? '/proc lists no processes (hidepid?)' : 'process list: not in the recording');
  const comms: string[] = [];
  for (const pid of pids) {
    const c = src.readText(`/proc/${pid}/comm`);
    if (c.ok) comms.push(c.value.trim());
  }
  return got(ntpClientsFromComms(comms));
}

export interface HypervisorInfo {
  /** Best name for what this runs on: "KVM", "Microsoft Hyper-V", "Xen", ..., or "none" on bare metal. */
  name: string;
  evidence: string[];
}

/** Combine what the kernel says about the hypervisor (arch/x86/kernel/cpu/hypervisor.c prints "Hypervisor detected"). */
export function detectHypervisor(parts: {
  cpu: Reading<CpuInfo>;
  log: Reading<KernelLogSummary>;
  available: Reading<SysfsText>;
  sysHypervisorType: Reading<string>;
  dmiVendor: Reading<string>;
  dmiProduct: Reading<string>;
}): Reading<HypervisorInfo> {
  const evidence: string[] = [];
  let name: string | undefined;
  if (parts.log.ok && parts.log.value.facts.hypervisor) {
    name = parts.log.value.facts.hypervisor;
    evidence.push(`kernel log: "${parts.log.value.facts.hypervisorLine ?? name}"`);
  }
  if (parts.sysHypervisorType.ok && parts.sysHypervisorType.value.trim()) {
    const t = parts.sysHypervisorType.value.trim();
    evidence.push(`/sys/hypervisor/type: ${t}`);
    name ??= t === 'xen' ? 'Xen' : t;
  }
  if (parts.available.ok) {
    if (parts.available.value.names.includes('kvm-clock')) {
      evidence.push('kvm-clock is an available clocksource (KVM paravirtual clock)');
      name ??= 'KVM';
    }
    if (parts.available.value.names.includes('xen')) {
      evidence.push('the xen clocksource is available');
      name ??= 'Xen';
    }
    if (parts.available.value.names.some((n) => n.startsWith('hyperv_clocksource'))) {
      evidence.push('a Hyper-V clocksource is available');
      name ??= 'Microsoft Hyper-V';
    }
  }
  const vendor = parts.dmiVendor.ok ? parts.dmiVendor.value.trim() : '';
  const product = parts.dmiProduct.ok ? parts.dmiProduct.value.trim() : '';
  if (vendor || product) evidence.push(`DMI: ${[vendor, product].filter(Boolean).join(' / ')}`);
  if (parts.cpu.ok) {
    if (parts.cpu.value.timeFlags.hypervisor) {
      evidence.push('CPU flag "hypervisor" is set (CPUID.1:ECX bit 31)');
      name ??= 'unknown hypervisor (no paravirtual interface detected; e.g. QEMU TCG)';
    } else {
      evidence.push('CPU flag "hypervisor" is clear');
      name ??= 'none';
    }
  }
  if (name === undefined) return missing('neither /proc/cpuinfo nor the kernel log could be read');
  return got({ name, evidence });
}

export interface KvmInfo {
  devKvm: boolean;
  /** Loaded KVM backends: kvm_intel, kvm_amd, kvm_pvm. */
  backends: string[];
  /** Whether this process may open /dev/kvm read-write (live only; checked with access(2), not opened). */
  access?: string;
}

export function readKvm(src: SystemSource): Reading<KvmInfo> {
  if (src.platform !== 'linux') return missing(`no /dev/kvm on ${src.platform}`);
  if (!src.live && !src.exists('/dev') && !src.exists('/sys/module')) return missing('/dev and /sys/module: not in the recording');
  const devKvm = src.exists('/dev/kvm');
  const backends = KVM_BACKENDS.filter((m) => src.exists(`/sys/module/${m}`));
  const info: KvmInfo = { devKvm, backends };
  if (src.live && devKvm) {
    try {
      accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
      info.access = 'read-write for this user';
    } catch (e) {
      info.access = `not usable by this user (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
    }
  }
  return got(info);
}

/** /proc/timer_list is root-only (0400): without permission the reason says so. */
export function readTimerList(src: SystemSource): Reading<TimerList> {
  return mapReading(src.readText('/proc/timer_list'), parseTimerList);
}
