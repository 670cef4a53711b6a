// `timevisor guest`: boot a simulated guest kernel on a machine profile and print what it shows:
// its timekeeping boot log, available_clocksource, current_clocksource and clockevent device.
import type { Command } from 'commander';
import { InputError } from '../../core/index.ts';
import { type GuestReport, KERNEL_PRESETS, PROFILES } from '../../vmm/index.ts';
import {
  bootScenarioGuest,
  GUEST_SETTLE_NS,
  type GuestRun,
  loadScenario,
  type ResolvedScenario,
  resolveScenario,
  scenarioForGuest,
} from '../../world/index.ts';

export type { GuestRun } from '../../world/index.ts';

interface GuestCliOptions {
  profile?: string;
  kernel?: string;
  cmdline?: string;
  hostTscKhz?: string;
  vcpus?: string;
  scenario?: string;
  vm?: string;
  json?: boolean;
}

function parseWhole(v: string, option: string): number {
  if (!/^\s*\d+\s*$/.test(v)) throw new InputError(`expected a whole number, got "${v}"`, option);
  return Number(v);
}

/** Which option of `timevisor guest` each scenario path stands for, so errors name what the user typed. */
const OPTION_OF_PATH: Record<string, string> = {
  'hosts[0].tsc.freq_khz': '--host-tsc-khz',
  'vms[0].profile': '--profile',
  'vms[0].kernel': '--kernel',
  'vms[0].cmdline': '--cmdline',
  'vms[0].vcpus': '--vcpus',
  start: 'the host clock',
};

/** The options of `timevisor guest --profile …` as a one-VM scenario (src/world/boot.ts), with errors naming the options. */
export function guestScenario(run: GuestRun, start?: string): ResolvedScenario {
  try {
    return scenarioForGuest(run, start);
  } catch (e) {
    const option = e instanceof InputError && e.path !== undefined ? OPTION_OF_PATH[e.path] : undefined;
    if (option) throw new InputError((e as InputError).message, option);
    throw e;
  }
}

export function runGuest(run: GuestRun, settleNs = GUEST_SETTLE_NS): GuestReport {
  return bootScenarioGuest(guestScenario(run), undefined, settleNs);
}

function human(r: GuestReport): string {
  const out: string[] = [];
  out.push(`guest: ${r.kernel} kernel on ${r.profile}, host TSC ${r.host_tsc_khz} kHz`);
  out.push(`cmdline: ${r.cmdline || '(empty)'}`);
  out.push('');
  out.push(...r.dmesg);
  out.push('');
  out.push(`/sys/devices/system/clocksource/clocksource0/available_clocksource: ${JSON.stringify(r.available_clocksource)}`);
  out.push(`/sys/devices/system/clocksource/clocksource0/current_clocksource:   ${JSON.stringify(r.current_clocksource)}`);
  out.push(`/sys/devices/system/clockevents/clockevent0/current_device:         ${JSON.stringify(r.clockevent_device)}`);
  out.push(`tick: ${r.tick_mode}; clocksource watchdog: ${r.watchdog ?? 'none'}; boot wall clock from ${r.wall_clock_source}`);
  const vd = r.vdso.filter((v) => v.clock === 'CLOCK_MONOTONIC')[0];
  if (vd)
    out.push(`clock_gettime(CLOCK_MONOTONIC): ${vd.path === 'vdso' ? 'vDSO in userspace' : 'system call'}, ~${vd.ns} ns per read (model)`);
  return out.join('\n') + '\n';
}

export function registerGuest(program: Command): void {
  program
    .command('guest')
    .description('boot a simulated guest kernel on a VMM machine profile and show its clocksources, clock events and timekeeping boot log')
    .option('--profile <name>', `machine profile: ${Object.keys(PROFILES).join(', ')}`)
    .option('--kernel <preset>', `guest kernel preset: ${Object.keys(KERNEL_PRESETS).join(', ')}`, 'distro')
    .option('--cmdline <args>', "guest kernel command line (after the VMM's own arguments)", '')
    .option('--host-tsc-khz <n>', 'host TSC frequency in kHz (default 2596136)')
    .option('--vcpus <n>', "number of vCPUs (default: the profile's)")
    .option('--scenario <file>', 'boot a VM of this scenario file on its host (the first, or --vm)')
    .option('--vm <name>', 'with --scenario: which VM to boot')
    .option('--json', 'print one JSON object (boot_log, available_clocksource, current_clocksource, clockevent_device, …)')
    .action((opts: GuestCliOptions) => {
      let r: GuestReport;
      if (opts.scenario) {
        for (const [given, option] of [
          [opts.profile, '--profile'],
          [opts.hostTscKhz, '--host-tsc-khz'],
          [opts.vcpus, '--vcpus'],
        ] as const)
          if (given !== undefined) throw new InputError('give either --scenario or the machine options, not both', option);
        r = bootScenarioGuest(resolveScenario(loadScenario(opts.scenario)), opts.vm);
      } else {
        if (!opts.profile) throw new InputError(`which machine? (${Object.keys(PROFILES).join(', ')})`, '--profile');
        if (opts.vm !== undefined) throw new InputError('--vm picks a VM of --scenario', '--vm');
        const run: GuestRun = { profile: opts.profile, kernel: opts.kernel ?? 'distro', cmdline: opts.cmdline ?? '', host: {} };
        if (opts.hostTscKhz !== undefined) run.host.tscKhz = parseWhole(opts.hostTscKhz, '--host-tsc-khz');
        if (opts.vcpus !== undefined) run.vcpus = parseWhole(opts.vcpus, '--vcpus');
        r = runGuest(run);
      }
      process.stdout.write(opts.json ? JSON.stringify(r, null, 2) + '\n' : human(r));
    });
}
