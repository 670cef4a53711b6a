// Gather every reading into one report. Nothing here changes the system: readers only read, adjtimex is
// called with modes = 0, and the steal interval is two reads of /proc/stat with a wait between them.
import { setTimeout as sleep } from 'node:timers/promises';
import { readAdjtimex, type Timex } from './adjtimex.ts';
import { stealBetween, type CpuInfo, type Cmdline, type StealSample, type TimerList, type VdsoMappings } from './parse.ts';
import {
  detectHypervisor,
  readAvailableClocksource,
  readClockevents,
  readCmdline,
  readCpuinfo,
  readCurrentClocksource,
  readKernelLog,
  readKernelVersion,
  readKvm,
  readChrony,
  readNtpClients,
  readProcStat,
  readTimerList,
  readVdsoMappings,
  type ChronyInfo,
  type ClockeventDevices,
  type HypervisorInfo,
  type KernelLogSummary,
  type KvmInfo,
  type SysfsText,
} from './readers.ts';
import { got, liveSource, missing, type Reading, type SystemSource } from './source.ts';
import { measureClockCost, type VdsoCost } from './vdso.ts';

export const DOCTOR_SCHEMA = 'timevisor.doctor/1';

export interface StealReport {
  /** Share of CPU time stolen since boot (one read of /proc/stat). */
  sinceBoot: Reading<StealSample>;
  /** Share stolen over a short interval measured now (live only). */
  interval: Reading<StealSample & { intervalMs: number }>;
}

export interface DoctorReport {
  schema: string;
  origin: string;
  platform: string;
  kernel: Reading<string>;
  clocksource: { available: Reading<SysfsText>; current: Reading<SysfsText> };
  clockevents: Reading<ClockeventDevices>;
  /** Tick mode and high-resolution state from /proc/timer_list (root only). */
  tick: Reading<TimerList>;
  cmdline: Reading<Cmdline>;
  cpu: Reading<CpuInfo>;
  hypervisor: Reading<HypervisorInfo>;
  kernelLog: Reading<KernelLogSummary>;
  /** chrony: read only where chronyd runs. */
  ntp: { adjtimex: Reading<Timex>; clients: Reading<string[]>; chrony: Reading<ChronyInfo> };
  vdso: { mappings: Reading<VdsoMappings>; cost: Reading<VdsoCost> };
  steal: StealReport;
  kvm: Reading<KvmInfo>;
}

export interface DoctorOptions {
  source?: SystemSource;
  /** Measure clock_gettime costs (live only). Default true. */
  measure?: boolean;
  /** Steal sampling interval in ms (live only; 0 skips it). Default 250. */
  stealIntervalMs?: number;
  /** Iterations per round for the clock cost measurement. */
  costIterations?: number;
}

function notLinux<T>(src: SystemSource): Reading<T> | undefined {
  return src.platform === 'linux'
    ? undefined
    : missing(`not a Linux system (${src.platform}): the kernel interfaces doctor reads do not exist here`);
}

export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const src = opts.source ?? liveSource();
  const nl = <T>(r: () => Reading<T>): Reading<T> => notLinux<T>(src) ?? r();
  const cpu = nl(() => readCpuinfo(src));
  const clients = nl(() => readNtpClients(src));
  const kernelLog = nl(() => readKernelLog(src));
  const available = nl(() => readAvailableClocksource(src));
  const hypervisor = nl(() =>
    detectHypervisor({
      cpu,
      log: kernelLog,
      available,
      sysHypervisorType: src.readText('/sys/hypervisor/type'),
      dmiVendor: src.readText('/sys/class/dmi/id/sys_vendor'),
      dmiProduct: src.readText('/sys/class/dmi/id/product_name'),
    }),
  );
  const stat0 = nl(() => readProcStat(src));
  const liveOnly = (what: string) =>
    missing(src.live ? `${what}: skipped` : `${what} is measured on the running system, not in a recording`);

  let interval: StealReport['interval'];
  const ms = opts.stealIntervalMs ?? 250;
  if (!src.live) interval = liveOnly('steal over an interval');
  else if (!stat0.ok) interval = stat0;
  else if (ms <= 0) interval = missing('steal interval: not requested (--steal-ms 0)');
  else {
    await sleep(ms);
    const stat1 = readProcStat(src);
    interval = stat1.ok ? got({ ...stealBetween(stat0.value, stat1.value), intervalMs: ms }) : stat1;
  }
  const zero = { user: 0n, nice: 0n, system: 0n, idle: 0n, iowait: 0n, irq: 0n, softirq: 0n, steal: 0n, total: 0n };
  const sinceBoot: Reading<StealSample> = stat0.ok ? got(stealBetween(zero, stat0.value)) : stat0;

  return {
    schema: DOCTOR_SCHEMA,
    origin: src.origin,
    platform: src.platform,
    kernel: nl(() => readKernelVersion(src)),
    clocksource: { available, current: nl(() => readCurrentClocksource(src)) },
    clockevents: nl(() => readClockevents(src)),
    tick: nl(() => readTimerList(src)),
    cmdline: nl(() => readCmdline(src)),
    cpu,
    hypervisor,
    kernelLog,
    ntp: {
      adjtimex: nl(() => (src.live ? readAdjtimex() : liveOnly('adjtimex(2)'))),
      clients,
      chrony: clients.ok && clients.value.includes('chronyd') ? nl(() => readChrony(src)) : missing('chronyd is not running'),
    },
    vdso: {
      mappings: nl(() => readVdsoMappings(src)),
      cost: nl(() =>
        !src.live
          ? liveOnly('clock_gettime cost')
          : opts.measure === false
            ? missing('clock_gettime cost: not requested (--no-measure)')
            : measureClockCost(opts.costIterations),
      ),
    },
    steal: { sinceBoot, interval },
    kvm: readKvm(src),
  };
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function snakeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snakeKeys);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [snake(k), snakeKeys(x)]));
  return v;
}

/** JSON-ready copy in the project's JSON style: snake_case keys, 64-bit values as decimal strings. */
export function reportToJson(report: unknown): unknown {
  return snakeKeys(JSON.parse(JSON.stringify(report, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))));
}
