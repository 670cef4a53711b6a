// `timevisor guest`: boot a simulated guest kernel on a machine profile and print what it shows:
// its timekeeping boot log, available_clocksource, current_clocksource and clockevent device.
import type { Command } from 'commander';
import { Engine } from '../../core/engine.ts';
import { InputError } from '../../core/errors.ts';
import { NSEC_PER_SEC, type Ns } from '../../core/time.ts';
import { parseDuration } from '../../core/units.ts';
import {
  bootVm,
  guestReport,
  kernelPreset,
  machineProfile,
  PROFILES,
  KERNEL_PRESETS,
  type GuestReport,
  type HostCpu,
} from '../../vmm/index.ts';
import { loadScenario } from '../../world/scenario.ts';

interface GuestCliOptions {
  profile?: string;
  kernel?: string;
  cmdline?: string;
  hostTscKhz?: string;
  vcpus?: string;
  scenario?: string;
  settle?: string;
  json?: boolean;
}

function parseKhz(v: string): number {
  if (!/^\s*\d+\s*$/.test(v)) throw new InputError(`expected a whole number of kHz, got "${v}"`, '--host-tsc-khz');
  return Number(v);
}

export interface GuestRun {
  profile: string;
  kernel: string;
  cmdline: string;
  host: Partial<HostCpu>;
  vcpus?: number;
  /** kvm-clock's reading at kvmclock_init (scenario vms[].kvmclock_at_init); default: the profile's. */
  kvmclockAtInitNs?: Ns;
}

/** What `--scenario FILE` means: the first VM of the scenario on its host. */
export function guestRunFromScenario(file: string): GuestRun {
  const s = loadScenario(file);
  const vm = s.vms[0]!;
  const h = s.hosts.find((x) => x.name === vm.host)!;
  return {
    profile: vm.profile,
    kernel: vm.kernel,
    cmdline: vm.cmdline,
    host: { tscKhz: h.tsc.freq_khz, ppm: h.oscillator.ppm, invariantTsc: h.tsc.invariant && h.tsc.constant && h.tsc.nonstop },
    ...(vm.vcpus !== undefined ? { vcpus: vm.vcpus } : {}),
    ...(vm.kvmclock_at_init !== undefined ? { kvmclockAtInitNs: parseDuration(vm.kvmclock_at_init, 'vms[0].kvmclock_at_init') } : {}),
  };
}

export function runGuest(run: GuestRun, settleNs = 3n * NSEC_PER_SEC): GuestReport {
  const profile = machineProfile(run.profile);
  const kernel = kernelPreset(run.kernel);
  const engine = new Engine();
  const b = bootVm({
    profile,
    kernel,
    cmdline: run.cmdline,
    host: run.host,
    scheduler: engine,
    ...(run.vcpus ? { vcpus: run.vcpus } : {}),
    ...(run.kvmclockAtInitNs !== undefined ? { kvmclockAtInitNs: run.kvmclockAtInitNs } : {}),
  });
  engine.run(b.kernelEntryAt + settleNs);
  const r = guestReport(b);
  b.vm.destroy();
  return r;
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
    .option('--scenario <file>', 'boot the first VM of this scenario file on its host')
    .option('--json', 'print one JSON object (boot_log, available_clocksource, current_clocksource, clockevent_device, …)')
    .action((opts: GuestCliOptions) => {
      let run: GuestRun;
      if (opts.scenario) {
        if (opts.profile) throw new InputError('give either --scenario or --profile, not both', '--profile');
        run = guestRunFromScenario(opts.scenario);
      } else {
        if (!opts.profile) throw new InputError(`which machine? (${Object.keys(PROFILES).join(', ')})`, '--profile');
        run = { profile: opts.profile, kernel: opts.kernel ?? 'distro', cmdline: opts.cmdline ?? '', host: {} };
        if (opts.hostTscKhz !== undefined) run.host.tscKhz = parseKhz(opts.hostTscKhz);
      }
      if (opts.vcpus !== undefined) {
        const n = Number(opts.vcpus);
        if (!Number.isInteger(n)) throw new InputError(`expected a whole number, got "${opts.vcpus}"`, '--vcpus');
        run.vcpus = n;
      }
      const r = runGuest(run);
      process.stdout.write(opts.json ? JSON.stringify(r, null, 2) + '\n' : human(r));
    });
}
