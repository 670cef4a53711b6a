// The kernel command line as Linux splits it (lib/cmdline.c next_arg: spaces separate, double
// quotes group, "--" hands the rest to init) and the timekeeping parameters read from it
// (arch/x86/kernel/tsc.c tsc_setup/notsc_setup, kvmclock.c no-kvmclock, kvm.c no-kvmclock-vsyscall,
// hpet.c hpet_setup, kernel/time/clocksource.c boot_override_clocksource, tick-sched.c
// setup_tick_nohz, hrtimer.c setup_hrtimer_hres). Everything else is kept and passed over, as Linux
// does (unknown parameters become init's arguments/environment).
import { InputError } from '../core/index.ts';

export interface TimeParams {
  /** clocksource= (boot_override_clocksource); the kernel copies at most 31 characters. */
  clocksource: string | null;
  tscReliable: boolean;
  tscUnstable: boolean;
  tscNoWatchdog: boolean;
  tscRecalibrate: boolean;
  /** tsc_early_khz= */
  tscEarlyKhz: number;
  notsc: boolean;
  noKvmclock: boolean;
  noKvmclockVsyscall: boolean;
  noSteal: boolean;
  hpetDisable: boolean;
  hpetForce: boolean;
  nohz: boolean;
  highres: boolean;
  noacpi: boolean;
  nolapic: boolean;
  /** noapictimer (apic.c parse_disable_apic_timer): disable_apic_timer. Optional for older callers. */
  noapictimer?: boolean;
  /** noapic (io_apic.c): skip_ioapic_setup — no IO-APIC, no check_timer(). Optional for older callers. */
  noapic?: boolean;
  /** kvm-guest: no-kvmapf etc. are accepted and ignored here. */
}

export interface ParsedCmdline {
  /** Parameters in order: [name, value | null]. */
  params: [string, string | null][];
  /** Arguments after "--" (for init). */
  initArgs: string[];
  time: TimeParams;
  /** Lines the kernel prints while parsing these options. */
  messages: string[];
}

/**
 * lib/cmdline.c next_arg semantics. Strict (a command line someone wrote for the model): an unbalanced
 * quote, a control character or an empty name is an InputError. Lenient (one a kernel already booted
 * with, e.g. /proc/cmdline): as the kernel takes it — an open quote runs to the end, empty names are dropped.
 */
export function splitCmdline(
  cmdline: string,
  option = '--cmdline',
  strict = true,
): { params: [string, string | null][]; initArgs: string[] } {
  for (let i = 0; strict && i < cmdline.length; i++) {
    const c = cmdline.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a) || c === 0x7f) {
      throw new InputError(`malformed kernel command line: control character 0x${c.toString(16).padStart(2, '0')} at offset ${i}`, option);
    }
  }
  if (strict && (cmdline.match(/"/g)?.length ?? 0) % 2 !== 0) {
    throw new InputError(`malformed kernel command line: unbalanced double quote in ${JSON.stringify(cmdline)}`, option);
  }
  const params: [string, string | null][] = [];
  const initArgs: string[] = [];
  let i = 0;
  let afterDashes = false;
  const n = cmdline.length;
  while (i < n) {
    while (i < n && /\s/.test(cmdline[i]!)) i++;
    if (i >= n) break;
    let inQuote = false;
    let raw = '';
    while (i < n && (inQuote || !/\s/.test(cmdline[i]!))) {
      if (cmdline[i] === '"') inQuote = !inQuote;
      raw += cmdline[i];
      i++;
    }
    if (afterDashes) {
      initArgs.push(raw.replace(/"/g, ''));
      continue;
    }
    if (raw === '--') {
      afterDashes = true;
      continue;
    }
    const eq = raw.indexOf('=');
    let name = eq < 0 ? raw : raw.slice(0, eq);
    let value = eq < 0 ? null : raw.slice(eq + 1);
    name = name.replace(/"/g, '');
    if (value?.startsWith('"')) value = value.replace(/^"|"$/g, '');
    if (name === '') {
      if (strict) throw new InputError(`malformed kernel command line: parameter with an empty name (${JSON.stringify(raw)})`, option);
      continue;
    }
    params.push([name, value]);
  }
  return { params, initArgs };
}

/** kstrtobool as __setup handlers use it: y/Y/1/on → true, n/N/0/off → false. */
function kstrtobool(v: string | null): boolean | null {
  if (v === null) return null;
  const s = v.toLowerCase();
  if (['y', '1', 'on', 'yes'].includes(s) || s.startsWith('y')) return true;
  if (['n', '0', 'off', 'no'].includes(s) || s.startsWith('n')) return false;
  if (s === 'of') return null;
  return null;
}

export function parseCmdline(cmdline: string, option = '--cmdline'): ParsedCmdline {
  const { params, initArgs } = splitCmdline(cmdline, option);
  const time: TimeParams = {
    clocksource: null,
    tscReliable: false,
    tscUnstable: false,
    tscNoWatchdog: false,
    tscRecalibrate: false,
    tscEarlyKhz: 0,
    notsc: false,
    noKvmclock: false,
    noKvmclockVsyscall: false,
    noSteal: false,
    hpetDisable: false,
    hpetForce: false,
    nohz: true,
    highres: true,
    noacpi: false,
    nolapic: false,
    noapictimer: false,
    noapic: false,
  };
  const messages: string[] = [];
  for (const [name, value] of params) {
    switch (name) {
      case 'clocksource':
        // boot_override_clocksource: strscpy into char[CS_NAME_LEN] (32 bytes)
        if (value) time.clocksource = value.slice(0, 31);
        break;
      case 'tsc':
        // tsc_setup(): each recognised word; others are silently ignored
        for (const w of (value ?? '').split(',')) {
          if (w === 'reliable') time.tscReliable = true;
          else if (w === 'unstable') time.tscUnstable = true;
          else if (w === 'nowatchdog') time.tscNoWatchdog = true;
          else if (w === 'recalibrate') time.tscRecalibrate = true;
        }
        break;
      case 'tsc_early_khz':
        time.tscEarlyKhz = Number.parseInt(value ?? '0', 10) || 0;
        break;
      case 'notsc':
        // notsc_setup() on a kernel with X86_TSC: "notsc" only marks the TSC unstable
        time.notsc = true;
        break;
      case 'no-kvmclock':
        time.noKvmclock = true;
        break;
      case 'no-kvmclock-vsyscall':
        time.noKvmclockVsyscall = true;
        break;
      case 'no-steal-acc':
        time.noSteal = true;
        break;
      case 'hpet':
        if (value === 'disable') time.hpetDisable = true;
        else if (value === 'force') time.hpetForce = true;
        break;
      case 'nohpet':
        time.hpetDisable = true;
        break;
      case 'nohz': {
        const b = kstrtobool(value);
        if (b !== null) time.nohz = b;
        break;
      }
      case 'highres': {
        const b = kstrtobool(value);
        if (b !== null) time.highres = b;
        break;
      }
      case 'noacpi':
        time.noacpi = true;
        break;
      case 'acpi':
        if (value === 'off') time.noacpi = true;
        break;
      case 'nolapic':
      case 'disableapic':
        time.nolapic = true;
        break;
      case 'noapictimer':
        time.noapictimer = true;
        break;
      case 'noapic':
        time.noapic = true;
        break;
      default:
        break;
    }
  }
  if (time.tscUnstable) messages.push('tsc: Marking TSC unstable due to boot parameter');
  if (time.notsc) messages.push('tsc: Marking TSC unstable due to boot parameter notsc');
  return { params, initArgs, time, messages };
}
