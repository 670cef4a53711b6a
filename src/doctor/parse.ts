// Pure parsers over the text the kernel exposes. No I/O here: every function takes text and returns
// data, so each one is tested on recorded inputs from several machines (test/fixtures/doctor).
import { splitCmdline as splitKernelCmdline } from '../guest/index.ts';

/** available_clocksource / current_clocksource: names separated by spaces (kernel/time/clocksource.c). */
export function parseClocksourceList(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

export interface CmdlineParam {
  key: string;
  value?: string;
}

/** The timekeeping-relevant boot parameters, named as in Documentation/admin-guide/kernel-parameters.txt. */
export interface CmdlineTime {
  clocksource?: string;
  /** tsc=reliable / unstable / noirqtime / nowatchdog / recalibrate (comma-separated list). */
  tsc: string[];
  notsc: boolean;
  noKvmclock: boolean;
  noKvmclockVsyscall: boolean;
  nohz?: string;
  nohzFull?: string;
  highres?: string;
  hpet?: string;
  noTimerCheck: boolean;
  lpj?: string;
  tscEarlyKhz?: string;
  clocksourceWatchdog?: string;
}

export interface Cmdline {
  raw: string;
  /** Parameters the kernel parses (everything before a bare "--"). */
  params: CmdlineParam[];
  /** What follows "--": handed to init, not parsed by the kernel. */
  initArgs: string[];
  time: CmdlineTime;
}

/** The words of a command line as the kernel's next_arg() takes them (src/guest/cmdline.ts, lenient). */
export function splitCmdline(raw: string): string[] {
  const { params, initArgs } = splitKernelCmdline(raw, '/proc/cmdline', false);
  const words = params.map(([k, v]) => (v === null ? k : `${k}=${v}`));
  return initArgs.length > 0 || /(^|\s)--(\s|$)/.test(raw) ? [...words, '--', ...initArgs] : words;
}

export function parseCmdline(text: string): Cmdline {
  const raw = text.replace(/\n$/, '');
  const split = splitKernelCmdline(raw, '/proc/cmdline', false);
  const params = split.params.map(([key, value]): CmdlineParam => (value === null ? { key } : { key, value }));
  // The kernel lets a later occurrence win for most early_param()s; so do we.
  const last = (k: string) => [...params].reverse().find((p) => p.key === k);
  const flag = (k: string) => params.some((p) => p.key === k);
  const tscWords = params.filter((p) => p.key === 'tsc' && p.value !== undefined).flatMap((p) => p.value!.split(','));
  const time: CmdlineTime = {
    clocksource: last('clocksource')?.value,
    tsc: tscWords,
    notsc: flag('notsc'),
    noKvmclock: flag('no-kvmclock'),
    noKvmclockVsyscall: flag('no-kvmclock-vsyscall'),
    nohz: last('nohz')?.value,
    nohzFull: last('nohz_full')?.value,
    highres: last('highres')?.value,
    hpet: last('hpet')?.value,
    noTimerCheck: flag('no_timer_check'),
    lpj: last('lpj')?.value,
    tscEarlyKhz: last('tsc_early_khz')?.value,
    clocksourceWatchdog: last('clocksource.watchdog')?.value,
  };
  for (const k of Object.keys(time) as (keyof CmdlineTime)[]) if (time[k] === undefined) delete time[k];
  return { raw, params, initArgs: split.initArgs, time };
}

/** CPU flags that matter for timekeeping (arch/x86/include/asm/cpufeatures.h names as /proc/cpuinfo prints them). */
export const TIME_FLAGS = [
  'tsc',
  'rdtscp',
  'constant_tsc',
  'nonstop_tsc',
  'tsc_known_freq',
  'tsc_reliable',
  'tsc_deadline_timer',
  'tsc_adjust',
  'arat',
  'hypervisor',
  'x2apic',
] as const;

export interface CpuInfo {
  cpus: number;
  vendor?: string;
  modelName?: string;
  /** "cpu MHz" of the first CPU, as printed. */
  cpuMhz?: string;
  /** Flags of the first CPU. */
  flags: string[];
  /** Flags present on some CPUs but not all (a mixed system; empty normally). */
  inconsistentFlags: string[];
  /** Which of TIME_FLAGS are set. */
  timeFlags: Record<(typeof TIME_FLAGS)[number], boolean>;
  /** constant_tsc and nonstop_tsc together: the kernel sets both from CPUID 0x80000007 EDX bit 8. */
  invariantTsc: boolean;
}

export function parseCpuinfo(text: string): CpuInfo {
  const blocks = text.split(/\n\s*\n/).filter((b) => /\S/.test(b));
  const parsed = blocks.map((b) => {
    const m = new Map<string, string>();
    for (const line of b.split('\n')) {
      const i = line.indexOf(':');
      if (i < 0) continue;
      m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    return m;
  });
  const cpuBlocks = parsed.filter((m) => m.has('processor') || m.has('flags'));
  const first = cpuBlocks[0] ?? new Map<string, string>();
  const flagSets = cpuBlocks.map((m) => new Set((m.get('flags') ?? '').split(/\s+/).filter(Boolean)));
  const flags = [...(flagSets[0] ?? new Set<string>())];
  const all = new Set(flagSets.flatMap((s) => [...s]));
  const inconsistentFlags = [...all].filter((f) => !flagSets.every((s) => s.has(f))).sort();
  const has = (f: string) => flagSets.length > 0 && flagSets.every((s) => s.has(f));
  const timeFlags = Object.fromEntries(TIME_FLAGS.map((f) => [f, has(f)])) as CpuInfo['timeFlags'];
  const info: CpuInfo = {
    cpus: cpuBlocks.length,
    vendor: first.get('vendor_id'),
    modelName: first.get('model name'),
    cpuMhz: first.get('cpu MHz'),
    flags,
    inconsistentFlags,
    timeFlags,
    invariantTsc: timeFlags.constant_tsc && timeFlags.nonstop_tsc,
  };
  if (info.vendor === undefined) delete info.vendor;
  if (info.modelName === undefined) delete info.modelName;
  if (info.cpuMhz === undefined) delete info.cpuMhz;
  return info;
}

export interface LogLine {
  /** Seconds since boot as printed ("0.000051"), when the line has a timestamp. */
  ts?: string;
  text: string;
}

/**
 * Kernel log text in dmesg format. Also accepts syslog/journal copies ("Feb  2 17:33:32 host kernel: [ ... ] text")
 * and lines without timestamps (a serial console with printk.time=0).
 */
export function parseKernelLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (let line of text.split('\n')) {
    line = line.replace(/\r$/, '');
    if (!line.trim()) continue;
    const k = / kernel: /.exec(line);
    if (k && /^\S/.test(line) && !line.startsWith('[')) line = line.slice(k.index + ' kernel: '.length);
    const m = /^\[\s*(\d+\.\d+)\]\s?(.*)$/.exec(line);
    if (m) out.push({ ts: m[1]!, text: m[2]! });
    else out.push({ text: line });
  }
  return out;
}

/**
 * Boot lines about clocks: what the kernel's clocksource, TSC, kvm-clock, HPET, PIT, sched_clock and Hyper-V
 * timer code print (kernel/time/clocksource.c, arch/x86/kernel/{tsc.c,kvmclock.c,hpet.c,apic/apic.c},
 * drivers/clocksource/hyperv_timer.c, kernel/sched/clock.c).
 */
const CLOCK_LINE = [
  /^clocksource: /,
  /^tsc: /,
  /^kvm-clock: /,
  /^Hypervisor detected: /,
  /^TSC deadline timer (available|enabled)/,
  /^TSC synchronization/,
  /^TSC found unstable/,
  /^Marking TSC unstable/,
  /^sched_clock: /,
  /^hpet\d*: /,
  /^hpet: /,
  /^clockevents: /,
  /^Switched to clocksource /, // kernels before 4.2 printed without the "clocksource: " prefix
  /^Clocksource /,
  /^Hyper-V: .*(TSC|clock|timer)/i,
  /^hv_clocksource|^hyperv_clocksource/,
  /^APIC timer disabled/,
  /^\.\.TIMER: /,
  /^Using TSC|^Refined TSC/,
  /^pvclock/,
];

export function isClockLine(text: string): boolean {
  return CLOCK_LINE.some((re) => re.test(text));
}

export function clockLines(lines: LogLine[]): LogLine[] {
  return lines.filter((l) => isClockLine(l.text));
}

export interface RegisteredClocksource {
  name: string;
  mask: string;
  maxCycles: string;
  maxIdleNs: string;
}

export interface ClockFacts {
  kernelVersion?: string;
  hypervisor?: string;
  /** The log line the hypervisor name came from. */
  hypervisorLine?: string;
  /** Clocksources in the order they registered, with what __clocksource_update_freq_scale printed. */
  registered: RegisteredClocksource[];
  /** Every "Switched to clocksource X", in order. */
  switches: string[];
  /** "tsc: Detected 2596.134 MHz processor": the MHz text. */
  tscDetectedMhz?: string;
  /** "tsc: Detected 2596.134 MHz TSC" (separate TSC frequency), if printed. */
  tscDetectedTscMhz?: string;
  /** "tsc: Refined TSC clocksource calibration: 2700.280 MHz". */
  tscRefinedMhz?: string;
  tscCalibration?: string;
  tscDeadline: boolean;
  /** Why the TSC was marked unstable ("tsc: Marking TSC unstable due to ..."). */
  tscUnstable: string[];
  /** "clocksource: timekeeping watchdog on CPUn: Marking clocksource 'x' as unstable ..." */
  watchdogMarked: string[];
  kvmClockMsrs?: string;
  kvmClockSchedOffsetCycles?: string;
  /** "random: crng reseeded due to virtual machine fork": this VM was restored from a snapshot. */
  vmFork: boolean;
  /** The command line the kernel printed at boot. */
  bootCommandLine?: string;
  /** OEM id of the ACPI RSDP ("FIRECK" Firecracker, "CLOUDH" Cloud Hypervisor, "BOCHS" QEMU). */
  acpiOem?: string;
  /** "DMI: ..." line (firmware vendor and product). */
  dmi?: string;
}

export function clockFacts(lines: LogLine[]): ClockFacts {
  const f: ClockFacts = { registered: [], switches: [], tscDeadline: false, tscUnstable: [], watchdogMarked: [], vmFork: false };
  for (const { text } of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^Linux version (\S+)/.exec(text))) f.kernelVersion ??= m[1]!;
    else if ((m = /^Hypervisor detected: (.+)$/.exec(text))) {
      f.hypervisor = m[1]!.trim();
      f.hypervisorLine = text;
    } else if (/^Hyper-V Host Build:/.test(text) && f.hypervisor === undefined) {
      f.hypervisor = 'Microsoft Hyper-V';
      f.hypervisorLine = text;
    } else if (/^Booting paravirtualized kernel on Xen/.test(text) && f.hypervisor === undefined) {
      f.hypervisor = 'Xen';
      f.hypervisorLine = text;
    } else if ((m = /^clocksource: ([^:]+): mask: (0x[0-9a-f]+) max_cycles: (0x[0-9a-f]+), max_idle_ns: (\d+) ns/.exec(text)))
      f.registered.push({ name: m[1]!, mask: m[2]!, maxCycles: m[3]!, maxIdleNs: m[4]! });
    else if ((m = /^(?:clocksource: )?Switched to clocksource (\S+)/.exec(text))) f.switches.push(m[1]!);
    else if ((m = /^tsc: Detected ([\d.]+) MHz processor/.exec(text))) f.tscDetectedMhz = m[1]!;
    else if ((m = /^tsc: Detected ([\d.]+) MHz TSC/.exec(text))) f.tscDetectedTscMhz = m[1]!;
    else if ((m = /^tsc: Refined TSC clocksource calibration: ([\d.]+) MHz/.exec(text))) f.tscRefinedMhz = m[1]!;
    else if ((m = /^tsc: (Fast TSC calibration.*|PIT calibration matches.*|Detected .* TSC freq.*|Using PIT calibration.*)$/.exec(text)))
      f.tscCalibration = m[1]!;
    else if (/^TSC deadline timer (available|enabled)/.test(text)) f.tscDeadline = true;
    else if ((m = /^tsc: Marking TSC unstable due to (.+)$/.exec(text))) f.tscUnstable.push(m[1]!);
    else if ((m = /^clocksource: timekeeping watchdog on CPU\d+: Marking clocksource '([^']+)' as unstable/.exec(text)))
      f.watchdogMarked.push(m[1]!);
    else if ((m = /^kvm-clock: Using msrs (\S+ and \S+)/.exec(text))) {
      f.kvmClockMsrs = m[1]!;
      if (f.hypervisor === undefined) {
        f.hypervisor = 'KVM';
        f.hypervisorLine = text;
      }
    } else if ((m = /^kvm-clock: using sched offset of (\d+) cycles/.exec(text))) f.kvmClockSchedOffsetCycles = m[1]!;
    else if (/crng reseeded due to virtual machine fork/.test(text)) f.vmFork = true;
    else if ((m = /^Command line: (.*)$/.exec(text))) f.bootCommandLine ??= m[1]!;
    else if ((m = /^ACPI: RSDP 0x[0-9A-Fa-f]+ [0-9A-Fa-f]+ \(v\d+ (\S+)\s*\)/.exec(text))) f.acpiOem ??= m[1]!;
    else if ((m = /^DMI: (.+)$/.exec(text))) f.dmi ??= m[1]!;
  }
  return f;
}

export interface CpuTimes {
  user: bigint;
  nice: bigint;
  system: bigint;
  idle: bigint;
  iowait: bigint;
  irq: bigint;
  softirq: bigint;
  steal: bigint;
  total: bigint;
}

/** The aggregate "cpu" line of /proc/stat (fs/proc/stat.c), in USER_HZ ticks. */
export function parseProcStat(text: string): CpuTimes | undefined {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) return undefined;
  const v = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map((x) => BigInt(x));
  const at = (i: number) => v[i] ?? 0n;
  // guest and guest_nice (fields 9, 10) are already included in user and nice: not added to total.
  const total = [0, 1, 2, 3, 4, 5, 6, 7].reduce((s, i) => s + at(i), 0n);
  return { user: at(0), nice: at(1), system: at(2), idle: at(3), iowait: at(4), irq: at(5), softirq: at(6), steal: at(7), total };
}

export interface StealSample {
  stealTicks: string;
  totalTicks: string;
  /** Steal as a share of all CPU time in the interval, 0..1. */
  share: number;
}

export function stealBetween(a: CpuTimes, b: CpuTimes): StealSample {
  const steal = b.steal - a.steal;
  const total = b.total - a.total;
  return { stealTicks: steal.toString(), totalTicks: total.toString(), share: total > 0n ? Number(steal) / Number(total) : 0 };
}

export interface VdsoMappings {
  vdso: boolean;
  vvar: boolean;
  /** [vvar_vclock]: the pvclock / Hyper-V TSC page mapped for the vDSO (Linux ≥ 6.13 names it separately). */
  vvarVclock: boolean;
  /** Size of [vvar] in 4 KiB pages; before 6.13 the pvclock/hvclock pages sat inside it. */
  vvarPages: number;
}

/** [vdso]/[vvar]/[vvar_vclock] lines of /proc/<pid>/maps (arch/x86/entry/vdso/vma.c). */
export function parseMaps(text: string): VdsoMappings {
  const res: VdsoMappings = { vdso: false, vvar: false, vvarVclock: false, vvarPages: 0 };
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s.*\[(vdso|vvar|vvar_vclock)\]\s*$/.exec(line);
    if (!m) continue;
    if (m[3] === 'vdso') res.vdso = true;
    else if (m[3] === 'vvar_vclock') res.vvarVclock = true;
    else {
      res.vvar = true;
      res.vvarPages = Number((BigInt('0x' + m[2]) - BigInt('0x' + m[1])) / 4096n);
    }
  }
  return res;
}

export const NTP_CLIENTS: Record<string, string> = {
  chronyd: 'chrony',
  ntpd: 'ntpd',
  'systemd-timesyn': 'systemd-timesyncd', // comm is cut to 15 characters (TASK_COMM_LEN)
  'systemd-timesyncd': 'systemd-timesyncd',
  openntpd: 'OpenNTPD',
  ntpsec: 'NTPsec',
  ptp4l: 'linuxptp ptp4l',
  phc2sys: 'linuxptp phc2sys',
  'vmware-toolsd': 'VMware Tools (may sync time)',
  'qemu-ga': 'QEMU guest agent (sets time only on request)',
  hv_kvp_daemon: 'Hyper-V KVP daemon',
};

/** Which time-sync programs appear among process names (from /proc/<pid>/comm). */
export function ntpClientsFromComms(comms: string[]): string[] {
  const found = new Set<string>();
  for (const c of comms) {
    const name = NTP_CLIENTS[c.trim()];
    if (name) found.add(name);
  }
  return [...found].sort();
}

/** KVM backends by module name in /sys/module. */
export const KVM_BACKENDS = ['kvm_intel', 'kvm_amd', 'kvm_pvm'] as const;

export interface TickDevice {
  /** "broadcast" or the CPU number. */
  cpu: 'broadcast' | number;
  /** Tick device mode: 0 periodic, 1 one-shot (kernel/time/tick-sched.h TICKDEV_MODE_*). */
  mode: 'periodic' | 'oneshot';
  device: string | null;
  /** hrtimer_interrupt (high-res), tick_nohz_handler (low-res NO_HZ), tick_handle_periodic, ... */
  eventHandler?: string;
}

export interface TimerList {
  /** .hres_active per CPU, in CPU order. */
  hresActive: boolean[];
  tickDevices: TickDevice[];
}

/** /proc/timer_list (kernel/time/timer_list.c): high-resolution mode and the tick devices. */
export function parseTimerList(text: string): TimerList {
  const hresActive = [...text.matchAll(/^\s*\.hres_active\s*:\s*(\d+)/gm)].map((m) => m[1] === '1');
  const tickDevices: TickDevice[] = [];
  for (const block of text.split(/^Tick Device: /m).slice(1)) {
    const mode = /^mode:\s*(\d+)/.exec(block)?.[1] === '1' ? 'oneshot' : 'periodic';
    const cpuM = /^Per CPU device: (\d+)/m.exec(block);
    const dev = /^Clock Event Device: (.+)$/m.exec(block)?.[1]?.trim();
    const handler = /^ event_handler:\s*(\S+)/m.exec(block)?.[1];
    const t: TickDevice = { cpu: cpuM ? Number(cpuM[1]) : 'broadcast', mode, device: !dev || dev === '<NULL>' ? null : dev };
    if (handler) t.eventHandler = handler;
    tickDevices.push(t);
  }
  return { hresActive, tickDevices };
}

/** A time source line of chrony.conf (chrony's conf.c: `server`, `pool`, `peer` with their options). */
export interface ChronySourceConf {
  directive: 'server' | 'pool' | 'peer';
  name: string;
  iburst: boolean;
  minpoll?: number;
  maxpoll?: number;
}

/** A `refclock DRIVER PARAMETER [options]` line of chrony.conf (conf.c parse_refclock), with the options the twin uses. */
export interface ChronyRefclockConf {
  driver: string;
  parameter: string;
  poll?: number;
  dpoll?: number;
  offset?: number;
  delay?: number;
  precision?: number;
  filter?: number;
  nocrossts: boolean;
}

export interface ChronyConf {
  sources: ChronySourceConf[];
  /** refclock lines (absent when there are none). */
  refclocks?: ChronyRefclockConf[];
  /** makestep threshold (s) and limit (updates; -1 = always). */
  makestep?: [number, number];
  maxslewrate?: number;
  rtcsync: boolean;
  /** confdir / sourcedir / include lines: more configuration the twin did not read. */
  elsewhere: string[];
}

/** chrony.conf as chronyd reads it: one directive per line, `!`, `;`, `#` and `%` start comments. */
export function parseChronyConf(text: string): ChronyConf {
  const conf: ChronyConf = { sources: [], rtcsync: false, elsewhere: [] };
  for (const raw of text.split('\n')) {
    const words = raw
      .replace(/[!;#%].*$/, '')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    const [directive, ...args] = words;
    if (!directive) continue;
    const d = directive.toLowerCase();
    if (d === 'server' || d === 'pool' || d === 'peer') {
      if (!args[0]) continue;
      const opt = (k: string) => {
        const i = args.indexOf(k);
        const v = i > 0 ? Number(args[i + 1]) : Number.NaN;
        return Number.isInteger(v) ? v : undefined;
      };
      const minpoll = opt('minpoll');
      const maxpoll = opt('maxpoll');
      conf.sources.push({
        directive: d,
        name: args[0],
        iburst: args.includes('iburst'),
        ...(minpoll !== undefined ? { minpoll } : {}),
        ...(maxpoll !== undefined ? { maxpoll } : {}),
      });
    } else if (d === 'refclock' && args.length >= 2) {
      const num = (k: string, int: boolean) => {
        const i = args.indexOf(k);
        const v = i > 1 ? Number(args[i + 1]) : Number.NaN;
        return (int ? Number.isInteger(v) : Number.isFinite(v)) ? v : undefined;
      };
      const rc: ChronyRefclockConf = { driver: args[0]!, parameter: args[1]!, nocrossts: args.slice(2).includes('nocrossts') };
      for (const [k, int] of [
        ['poll', true],
        ['dpoll', true],
        ['offset', false],
        ['delay', false],
        ['precision', false],
        ['filter', true],
      ] as const) {
        const v = num(k, int);
        if (v !== undefined) rc[k] = v;
      }
      (conf.refclocks ??= []).push(rc);
    } else if (d === 'makestep' && args.length >= 2) {
      const t = Number(args[0]);
      const l = Number(args[1]);
      if (Number.isFinite(t) && Number.isInteger(l)) conf.makestep = [t, l];
    } else if (d === 'maxslewrate' && args[0] !== undefined && Number.isFinite(Number(args[0]))) {
      conf.maxslewrate = Number(args[0]);
    } else if (d === 'rtcsync') {
      conf.rtcsync = true;
    } else if (d === 'confdir' || d === 'sourcedir' || d === 'include') {
      conf.elsewhere.push(words.join(' '));
    }
  }
  return conf;
}

/** `chronyc -n tracking` (chrony's client.c process_cmd_tracking): the figures the twin uses. */
export interface ChronyTracking {
  referenceId: string;
  stratum: number;
  /** + when the system clock is fast of NTP time, seconds. */
  systemTimeS: number;
  rmsOffsetS: number;
  /** + when the clock runs fast (chronyc prints "ppm fast" / "ppm slow"). */
  frequencyPpm: number;
  rootDelayS: number;
  updateIntervalS: number;
  leapStatus: string;
}

export function parseChronycTracking(text: string): ChronyTracking | null {
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const num = (v: string | undefined) => (v === undefined ? Number.NaN : Number.parseFloat(v));
  const ref = field('Reference ID');
  const st = field('System time');
  const freq = field('Frequency');
  if (ref === undefined || st === undefined || freq === undefined) return null;
  const sign = (v: string, neg: RegExp) => (neg.test(v) ? -1 : 1);
  return {
    referenceId: ref,
    stratum: num(field('Stratum')),
    systemTimeS: num(st) * sign(st, /slow/),
    rmsOffsetS: num(field('RMS offset')),
    frequencyPpm: num(freq) * sign(freq, /slow/),
    rootDelayS: num(field('Root delay')),
    updateIntervalS: num(field('Update interval')),
    leapStatus: field('Leap status') ?? '',
  };
}

/** One line of `chronyc -n sources`: mode (^ server, = peer, # refclock), state (* selected, + combined, …). */
export interface ChronySourceLine {
  mode: string;
  state: string;
  name: string;
  stratum: number;
  poll: number;
  reach: number;
}

export function parseChronycSources(text: string): ChronySourceLine[] {
  const out: ChronySourceLine[] = [];
  for (const line of text.split('\n')) {
    const m = /^([\^=#])([*+\-?x~ ])\s+(\S+)\s+(\d+)\s+(-?\d+)\s+([0-7]+)\s/.exec(line);
    if (m)
      out.push({ mode: m[1]!, state: m[2]!, name: m[3]!, stratum: Number(m[4]), poll: Number(m[5]), reach: Number.parseInt(m[6]!, 8) });
  }
  return out;
}
