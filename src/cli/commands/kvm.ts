// `timevisor kvm clock|steal|pause`: the live /dev/kvm backend beside the hypervisor model.
import type { Command } from 'commander';
import { InputError } from '../../core/errors.ts';
import { clockSampleJson, sampleKvmClock } from '../../live/clock.ts';
import { measureSteal } from '../../live/steal.ts';
import { livePause } from '../../live/pause.ts';

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

export function registerKvm(program: Command): void {
  const kvm = program.command('kvm').description('live KVM (/dev/kvm): kvmclock, steal time and pause on a real VM, beside the model');

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
