// `timevisor kvm clock|steal|pause`: the live /dev/kvm backend beside the hypervisor model.
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import { clockSampleJson, sampleKvmClock } from '../../live/index.ts';
import { measureSteal } from '../../live/index.ts';
import { livePause } from '../../live/index.ts';
import { type CompareRow, formatRows, kvmclockRows, lapicRows, pitRows, rtcRows } from '../../live/index.ts';
import { pitExperiment } from '../../live/index.ts';
import { lapicExperiment, parseLapicMode } from '../../live/index.ts';
import { kvmclockExperiment } from '../../live/index.ts';
import { rtcExperiment } from '../../live/index.ts';
import { DEFAULT_HOST, machineProfile } from '../../vmm/index.ts';
import type { CpuidPolicy } from '../../live/index.ts';

function seconds(v: string, max: number): number {
  const s = Number(v);
  if (!Number.isFinite(s) || s <= 0 || s > max) throw new InputError(`expected seconds in (0, ${max}], got "${v}"`, '--seconds');
  return s;
}

const ms = (ns: bigint) => {
  const v = Number(ns) / 1e6;
  return (Math.abs(v) < 0.0005 ? 0 : v).toFixed(3);
};

function stringify(x: unknown): string {
  return JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

function int(v: string, min: number, max: number, option: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new InputError(`expected an integer in ${min}..${max}, got "${v}"`, option);
  return n;
}

function onOff(v: string, option: string): boolean {
  if (v === 'on' || v === 'off') return v === 'on';
  throw new InputError(`expected on or off, got "${v}"`, option);
}

type Experiment = 'pit' | 'rtc' | 'lapic' | 'kvmclock';
const EXPERIMENTS: Experiment[] = ['pit', 'rtc', 'lapic', 'kvmclock'];

interface ExpOpts {
  hz?: string;
  seconds?: string;
  reinject?: string;
  busy?: string;
  mode?: string;
  periodUs?: string;
  samples?: string;
  reads?: string;
  trace?: boolean;
  profile?: string;
}

/** CPUID from a machine profile, for the host TSC rate the vCPU reports. */
function profileCpuid(name: string): (tscKhz: number) => CpuidPolicy {
  const p = machineProfile(name);
  return (tscKhz) => p.cpuid({ ...DEFAULT_HOST, tscKhz });
}

/** Run one experiment; returns its JSON-able report, its comparison rows and extra lines of text. */
async function runExperiment(name: Experiment, o: ExpOpts): Promise<{ report: unknown; rows: CompareRow[]; lines: string[] }> {
  const trace = o.trace ?? false;
  const cpuid = profileCpuid(o.profile ?? 'qemu-kvm');
  const traceLines = (t?: { note: string | null; host: string; twin: string }) =>
    t ? [...(t.note ? [`(${t.note})`] : []), 'bpftrace on the host:', t.host, 'twin trace:', t.twin] : [];
  switch (name) {
    case 'pit': {
      const r = await pitExperiment({
        hz: Number(o.hz ?? '100'),
        seconds: seconds(o.seconds ?? '2', 60),
        reinject: onOff(o.reinject ?? 'on', '--reinject'),
        busy: int(o.busy ?? '0', 0, 64, '--busy'),
        trace,
        cpuid,
      });
      const head = `PIT channel 0 at ${r.hz} Hz (divisor ${r.divisor}, period ${r.periodNs} ns) for ${r.seconds} s, reinject ${r.reinject ? 'on' : 'off'}, ${r.busy ? `${r.busy} busy host threads` : 'idle host'}`;
      const thread = `in-kernel PIT: channel 0 mode ${r.live.channel0.mode} count ${r.live.channel0.count} (KVM_GET_PIT2); kthread ${r.live.kvmPitThread ?? 'not found in /proc'}`;
      return { report: r, rows: pitRows(r), lines: [head, thread, ...traceLines(r.trace)] };
    }
    case 'lapic': {
      const r = await lapicExperiment({
        mode: parseLapicMode(o.mode ?? 'periodic'),
        periodUs: Number(o.periodUs ?? '1000'),
        seconds: seconds(o.seconds ?? '1', 60),
        trace,
        cpuid,
      });
      const head = `LAPIC timer ${r.mode}, period ${r.periodNs} ns, ${r.seconds} s (guest TSC ${r.tscKhz} kHz); live lateness p50 ${r.live.latenessNs.p50} ns, p99 ${r.live.latenessNs.p99} ns, max ${r.live.latenessNs.max} ns`;
      return { report: r, rows: lapicRows(r), lines: [head, ...traceLines(r.trace)] };
    }
    case 'kvmclock': {
      const r = await kvmclockExperiment({ samples: int(o.samples ?? '20', 1, 10_000, '--samples'), trace, cpuid });
      const s = r.samples.at(-1)!;
      const p = s.record;
      const head = `pvclock record the guest read: version ${p.version}, tsc_timestamp ${p.tscTimestamp}, system_time ${p.systemTime}, tsc_to_system_mul ${p.tscToSystemMul}, tsc_shift ${p.tscShift}, flags 0x${p.flags.toString(16)}; guest TSC ${s.guestTsc} → kvmclock ${s.guestNs} ns`;
      const maxDiff = r.samples.reduce((m, x) => {
        const d = x.getClock - x.model;
        const a = d < 0n ? -d : d;
        return a > m ? a : m;
      }, 0n);
      return {
        report: r,
        rows: kvmclockRows(r),
        lines: [head, `over ${r.samples.length} samples: max |KVM_GET_CLOCK − model| ${maxDiff} ns`, ...traceLines(r.trace)],
      };
    }
    case 'rtc': {
      if (trace)
        throw new InputError(
          'kvm rtc has no host trace: the RTC is a userspace device, none of the KVM timer tracepoints fire for it',
          '--trace',
        );
      const r = await rtcExperiment({ reads: int(o.reads ?? '3', 1, 10, '--reads'), cpuid });
      const head = `CMOS RTC from host UTC ${r.baseSeconds} s (host was ${r.baseFractionMs} ms into that second: the RTC's seconds start when it is created, as QEMU's -rtc base=utc)`;
      const edges = r.edgeLatencyNs.length
        ? [`guest saw each new second ${r.edgeLatencyNs.join(', ')} ns after it began (UIP handshake)`]
        : [];
      return { report: r, rows: rtcRows(r), lines: [head, ...edges] };
    }
  }
}

function addExperimentOptions(c: Command, name: Experiment): Command {
  if (name === 'pit')
    c.option('--hz <H>', 'PIT rate (19..10000)', '100')
      .option('--seconds <s>', 'measurement window', '2')
      .option('--reinject <on|off>', 'KVM_REINJECT_CONTROL', 'on')
      .option('--busy <N>', 'busy host processes competing for the CPUs', '0');
  if (name === 'lapic')
    c.option('--mode <m>', 'oneshot, periodic or tsc-deadline', 'periodic')
      .option('--period-us <us>', 'timer period in µs', '1000')
      .option('--seconds <s>', 'measurement window', '1');
  if (name === 'kvmclock') c.option('--samples <n>', 'guest reads', '20');
  if (name === 'rtc') c.option('--reads <n>', 'guest reads, one per second', '3');
  c.option('--profile <name>', 'machine profile whose CPUID the vCPU gets (qemu-kvm, firecracker, ...)', 'qemu-kvm');
  if (name !== 'rtc') c.option('--trace', "count the host's KVM/timer tracepoints with bpftrace (root) beside the twin's trace");
  return c;
}

export function registerKvm(program: Command): void {
  const kvm = program
    .command('kvm')
    .description('live KVM (/dev/kvm): kvmclock, steal time, pause, PIT, LAPIC timer and RTC on a real VM, beside the model');

  const describe: Record<Experiment, string> = {
    pit: 'a micro-guest programs the in-kernel PIT and counts IRQ0: delivered vs expected ticks, beside the PIT model',
    rtc: 'a micro-guest reads the CMOS RTC (device model on the host clock) through the UIP handshake and prints it over serial',
    lapic: 'a micro-guest arms the in-kernel LAPIC timer (x2APIC; TSC-deadline through MSR 0x6e0): rate and lateness',
    kvmclock: 'a micro-guest enables kvmclock, reads its pvclock record and RDTSC; compared with KVM_GET_CLOCK and the model',
  };
  for (const name of EXPERIMENTS) {
    addExperimentOptions(kvm.command(name).description(describe[name]), name)
      .option('--json', 'print one JSON object')
      .action(async (opts: ExpOpts & { json?: boolean }) => {
        const r = await runExperiment(name, opts);
        if (opts.json) {
          process.stdout.write(stringify(r.report) + '\n');
          return;
        }
        process.stdout.write([r.lines[0]!, formatRows(r.rows), ...r.lines.slice(1)].join('\n') + '\n');
      });
  }

  kvm
    .command('compare')
    .argument('<experiment>', EXPERIMENTS.join(', '))
    .description('run an experiment with its defaults and print live, twin and their difference')
    .option('--json', 'print the rows as JSON')
    .option('--profile <name>', 'machine profile whose CPUID the live vCPU gets', 'qemu-kvm')
    .action(async (name: string, opts: { json?: boolean; profile: string }) => {
      if (!EXPERIMENTS.includes(name as Experiment))
        throw new InputError(`expected one of ${EXPERIMENTS.join(', ')}, got "${name}"`, 'EXPERIMENT');
      const r = await runExperiment(name as Experiment, { profile: opts.profile });
      if (opts.json) {
        process.stdout.write(JSON.stringify({ experiment: name, rows: r.rows }) + '\n');
        return;
      }
      process.stdout.write(`${r.lines[0]}\n${formatRows(r.rows)}\n`);
    });

  kvm
    .command('clock')
    .description("the pvclock record KVM wrote, KVM_GET_CLOCK, and the model's prediction of KVM_GET_CLOCK from the record")
    .option('--json', 'print one JSON object')
    .option('--samples <n>', 'take n samples (JSON: the last one)', '1')
    .action((opts: { json?: boolean; samples: string }) => {
      const n = Number(opts.samples);
      if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InputError(`expected 1..100000, got "${opts.samples}"`, '--samples');
      const r = sampleKvmClock(n);
      const last = r.samples.at(-1)!;
      if (opts.json) {
        process.stdout.write(JSON.stringify(clockSampleJson(last, r)) + '\n');
        return;
      }
      const p = last.pvclock;
      const d = last.getClock;
      process.stdout.write(
        [
          `pvclock record:  version ${p.version}, tsc_timestamp ${p.tscTimestamp}, system_time ${p.systemTime}, tsc_to_system_mul ${p.tscToSystemMul}, tsc_shift ${p.tscShift}, flags 0x${p.flags.toString(16)}`,
          `KVM_GET_CLOCK:   clock ${d.clock}, flags 0x${d.flags.toString(16)}, realtime ${d.realtime}, host_tsc ${d.hostTsc}`,
          `model:           clock ${last.model} (record read at host_tsc + TSC offset ${last.tscOffset}); difference ${last.model - d.clock} ns`,
          `kvm_get_time_scale(${r.tscKhz} kHz) in the model: shift ${r.modelScale.shift}, mul ${r.modelScale.mul}`,
          n > 1
            ? `over ${n} samples: max |difference| ${r.samples.reduce((m, s) => {
                const x = s.model - s.getClock.clock;
                const a = x < 0n ? -x : x;
                return a > m ? a : m;
              }, 0n)} ns`
            : '',
        ]
          .filter(Boolean)
          .join('\n') + '\n',
      );
    });

  kvm
    .command('steal')
    .description(
      'run the guest while a pinned busy process competes for its CPU; steal KVM recorded vs the run delay the scheduler accounted',
    )
    .option('--seconds <s>', 'how long to run', '2')
    .option('--json', 'print one JSON object')
    .action(async (opts: { seconds: string; json?: boolean }) => {
      const s = seconds(opts.seconds, 60);
      const quiet = await measureSteal({ seconds: s, contended: false });
      const busy = await measureSteal({ seconds: s, contended: true, cpu: quiet.cpu });
      if (opts.json) {
        process.stdout.write(stringify({ uncontended: quiet, contended: busy }) + '\n');
        return;
      }
      for (const r of [quiet, busy]) {
        process.stdout.write(
          `${r.contended ? 'with a competing busy process' : 'alone                        '} on CPU ${r.cpu} for ${ms(r.wallNs)} ms: ` +
            `steal recorded by KVM ${ms(r.stealNs)} ms, thread run delay ${ms(r.runDelayNs)} ms (${r.entries} guest entries)\n`,
        );
      }
    });

  kvm
    .command('pause')
    .description(
      'pause a live VM QEMU-style (KVM_GET_CLOCK / KVM_SET_CLOCK / KVMCLOCK_CTRL) beside a free-running VM, and simulate the same',
    )
    .option('--seconds <s>', 'pause length', '1')
    .option('--json', 'print one JSON object')
    .action(async (opts: { seconds: string; json?: boolean }) => {
      const r = await livePause(seconds(opts.seconds, 300));
      if (opts.json) {
        process.stdout.write(stringify(r) + '\n');
        return;
      }
      const line = (name: string, s: { progress: bigint; guestStopped: boolean; wallLag: bigint }) =>
        `  ${name.padEnd(14)} guest kvmclock advanced ${ms(s.progress)} ms${s.guestStopped ? ' (GUEST_STOPPED set)' : ''}; guest wall clock fell ${ms(s.wallLag)} ms behind the host`;
      process.stdout.write(
        [
          `pause of ${ms(r.pauseNs)} ms (wall ${ms(r.live.wallNs)} ms)`,
          'live:',
          line('paused VM', r.live.paused),
          line('free-running', r.live.freeRunning),
          'simulated:',
          line('paused VM', r.simulated.paused),
          line('free-running', r.simulated.freeRunning),
        ].join('\n') + '\n',
      );
    });
}
