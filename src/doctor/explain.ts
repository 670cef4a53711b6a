// Turn a DoctorReport into plain words: what the machine does with time, why, and what can go wrong.
// Each finding cites the kernel rule it rests on; the ratings are the ones the kernel registers.
import type { DoctorReport } from './doctor.ts';
import type { Reading } from './source.ts';

export type Severity = 'info' | 'note' | 'risk';

export interface Finding {
  severity: Severity;
  topic: string;
  text: string;
}

/**
 * Clocksource ratings as registered: kernel/time/jiffies.c (jiffies 1, refined-jiffies 2),
 * drivers/clocksource/acpi_pm.c (200), arch/x86/kernel/hpet.c (250), arch/x86/kernel/tsc.c (tsc-early 299,
 * tsc 300), arch/x86/kernel/kvmclock.c (400, or 299 when the TSC is constant, nonstop and not unstable),
 * drivers/clocksource/hyperv_timer.c (Reference TSC page 500, MSR 500; 250/245 with TSC_INVARIANT).
 */
export const CLOCKSOURCE_RATINGS: Record<string, string> = {
  jiffies: '1',
  'refined-jiffies': '2',
  acpi_pm: '200',
  hpet: '250',
  'tsc-early': '299',
  tsc: '300',
  'kvm-clock': '400, or 299 when the TSC is invariant',
  hyperv_clocksource_tsc_page: '500, or 250 when Hyper-V offers an invariant TSC',
  hyperv_clocksource_msr: '500, or 245 when Hyper-V offers an invariant TSC',
  xen: '400',
};

/** Clocksources the x86 vDSO reads in userspace (arch/x86/include/asm/vdso/gettimeofday.h vdso_clocksource modes). */
export const VDSO_CLOCKSOURCES: Record<string, string> = {
  tsc: 'reads the TSC directly (VDSO_CLOCKMODE_TSC)',
  'kvm-clock': 'reads the kvmclock page mapped as [vvar_vclock] (VDSO_CLOCKMODE_PVCLOCK), only while KVM sets the stable bit',
  hyperv_clocksource_tsc_page: 'reads the Hyper-V reference TSC page (VDSO_CLOCKMODE_HVCLOCK)',
};

const CLOCKEVENT_WORDS: Record<string, string> = {
  'lapic-deadline': 'the local APIC timer in TSC-deadline mode (the kernel writes an absolute TSC value to MSR 0x6e0)',
  lapic: 'the local APIC timer in one-shot/periodic count-down mode',
  hpet: 'the HPET comparator',
  pit: 'the i8254 PIT (legacy, periodic at HZ)',
  'Hyper-V clockevent': 'the Hyper-V synthetic timer (stimer)',
  hyperv_clockevent: 'the Hyper-V synthetic timer (stimer)',
  'kvm-clock': 'kvm-clock',
};

function val<T>(r: Reading<T>): T | undefined {
  return r.ok ? r.value : undefined;
}

export function explain(r: DoctorReport): Finding[] {
  const out: Finding[] = [];
  const add = (severity: Severity, topic: string, text: string) => out.push({ severity, topic, text });

  if (r.platform !== 'linux') {
    add(
      'risk',
      'platform',
      `This is ${r.platform}, not Linux: doctor reads Linux kernel interfaces (sysfs, /proc, adjtimex), so there is nothing to read here. Run it inside the Linux guest you want to examine.`,
    );
    return out;
  }

  const avail = val(r.clocksource.available);
  const cur = val(r.clocksource.current)?.names[0];
  const cpu = val(r.cpu);
  const cmd = val(r.cmdline);
  const log = val(r.kernelLog);
  const facts = log?.facts;
  const hv = val(r.hypervisor);

  // Hypervisor.
  if (hv)
    add(
      'info',
      'hypervisor',
      hv.name === 'none' ? 'No hypervisor: this looks like bare metal.' : `Running on ${hv.name} (${hv.evidence.join('; ')}).`,
    );
  if (hv?.name === 'PVM')
    add(
      'info',
      'hypervisor',
      "A PVM guest (kvm-pvm): its kernel runs at hardware CPL3, reads the host's TSC directly (no offset or scaling) and takes the TSC frequency from MSR 0x4b564d13 — the host kernel's tsc_khz, exactly — marking it known and reliable (TSC_KNOWN_FREQ, TSC_RELIABLE: no refinement, no clocksource watchdog on tsc).",
    );

  // Clocksource choice.
  if (cur) {
    const rating = CLOCKSOURCE_RATINGS[cur];
    const list = avail ? avail.names.map((n) => `${n} (${CLOCKSOURCE_RATINGS[n] ?? '?'})`).join(', ') : 'unknown';
    add(
      'info',
      'clocksource',
      `The kernel keeps time with "${cur}"${rating ? ` (rating ${rating})` : ''}. Available, with ratings: ${list}. The kernel picks the highest-rated one that is valid (kernel/time/clocksource.c clocksource_select).`,
    );
    if (cmd?.time.clocksource) {
      add(
        cmd.time.clocksource === cur ? 'info' : 'note',
        'clocksource',
        cmd.time.clocksource === cur
          ? `It was asked for on the command line (clocksource=${cmd.time.clocksource}).`
          : `The command line asks for clocksource=${cmd.time.clocksource}, but the kernel uses ${cur}: the requested one was unavailable or unstable.`,
      );
    }
    if (cur === 'tsc' && avail?.names.includes('kvm-clock'))
      add(
        'info',
        'clocksource',
        'kvm-clock is present but lowered its rating to 299 because the TSC is constant, nonstop and not marked unstable (arch/x86/kernel/kvmclock.c), so tsc (300) won. The guest now reads the TSC directly with the frequency it was told at boot: across a pause, snapshot restore or live migration its clock stays right only if KVM and the VMM keep the guest TSC continuous and at the same rate (TSC offset and scaling), which kvm-clock would otherwise absorb.',
      );
    if (cur === 'kvm-clock' && cpu?.invariantTsc && avail?.names.includes('tsc'))
      add(
        'note',
        'clocksource',
        'The TSC is invariant yet kvm-clock is in use: either the command line forced it, or the TSC was marked unstable (see below). kvm-clock is safe across pause and migration; it costs a little more to read.',
      );
    if (cur === 'jiffies' || cur === 'refined-jiffies')
      add(
        'risk',
        'clocksource',
        `Time is counted in timer ticks ("${cur}"): resolution is one tick (1-10 ms), there are no high-resolution timers, and every lost or late tick interrupt (a descheduled vCPU, a paused VM) is time the clock never gets back. The machine offers no usable hardware clocksource: no kvm-clock, no TSC, no HPET, no ACPI PM timer.`,
      );
    if (cur === 'hpet' || cur === 'acpi_pm')
      add(
        'risk',
        'clocksource',
        `"${cur}" is an emulated device: every clock read is a trap to the hypervisor (microseconds), and the vDSO cannot read it, so every gettimeofday/clock_gettime is a system call.`,
      );
  } else {
    const last = facts?.switches.at(-1);
    add(
      'note',
      'clocksource',
      `The current clocksource could not be read (${r.clocksource.current.ok ? 'empty' : r.clocksource.current.reason})${last ? `; the kernel log's last switch was to "${last}" (rating ${CLOCKSOURCE_RATINGS[last] ?? '?'})` : ''}.`,
    );
  }

  // TSC.
  if (cpu) {
    const f = cpu.timeFlags;
    const parts = [
      `constant_tsc ${f.constant_tsc ? 'yes' : 'no'}`,
      `nonstop_tsc ${f.nonstop_tsc ? 'yes' : 'no'}`,
      `tsc_known_freq ${f.tsc_known_freq ? 'yes' : 'no'}`,
      `tsc_deadline_timer ${f.tsc_deadline_timer ? 'yes' : 'no'}`,
    ];
    const mhz = facts?.tscRefinedMhz ?? facts?.tscDetectedMhz;
    add(
      'info',
      'tsc',
      `TSC: ${parts.join(', ')}${mhz ? `; the kernel measured or was told ${mhz} MHz` : ''}.${f.tsc_known_freq ? ' The frequency came from CPUID or the hypervisor, not from calibration against another timer.' : ''}`,
    );
    if (!cpu.invariantTsc)
      add(
        'risk',
        'tsc',
        'The TSC is not invariant (constant_tsc and nonstop_tsc are not both set): its rate may change with CPU power states or stop in deep C-states, so kvm-clock keeps its rating of 400 above it and the clocksource watchdog keeps checking it.',
      );
    if (cpu.inconsistentFlags.length) add('note', 'tsc', `CPUs disagree on flags: ${cpu.inconsistentFlags.join(', ')}.`);
  }
  const tscParams = cmd?.time.tsc ?? [];
  if (tscParams.includes('unstable') || cmd?.time.notsc) {
    add(
      'risk',
      'tsc',
      `TSC marked unstable by a boot parameter (${cmd?.time.notsc ? 'notsc' : 'tsc=unstable'}): the ${avail?.names.includes('kvm-clock') ? 'guest stays on kvm-clock' : 'kernel falls back to a slower clocksource'} even though the TSC ${cpu?.invariantTsc ? 'is invariant' : 'may be fine'}.`,
    );
  }
  if (tscParams.includes('reliable'))
    add(
      'note',
      'tsc',
      'tsc=reliable: the clocksource watchdog will not check the TSC, so a TSC that really jumps (a migration to a different host) goes unnoticed.',
    );
  if (cmd?.time.noKvmclock)
    add(
      'note',
      'clocksource',
      'no-kvmclock on the command line: kvm-clock is not registered; the guest uses the TSC or an emulated timer, and reads its boot wall clock from the CMOS RTC (1 s granularity).',
    );
  if (cmd?.time.noKvmclockVsyscall)
    add(
      'note',
      'vdso',
      'no-kvmclock-vsyscall: the vDSO will not read kvm-clock; with kvm-clock as clocksource every clock_gettime becomes a system call.',
    );
  for (const why of facts?.tscUnstable ?? [])
    add(
      'risk',
      'tsc',
      `The kernel marked the TSC unstable at run time (due to ${why}); it uses ${facts?.switches.at(-1) ?? 'another clocksource'} instead and will not go back to the TSC until reboot.`,
    );
  for (const cs of facts?.watchdogMarked ?? [])
    add(
      'risk',
      'clocksource',
      `The clocksource watchdog found "${cs}" skewing against its reference and marked it unstable: a sign of a vCPU being descheduled or of a host TSC problem.`,
    );

  // Clock events.
  const ce = val(r.clockevents);
  if (ce) {
    const devs = [...new Set(ce.perCpu)];
    add(
      'info',
      'clockevents',
      `Timer interrupts come from ${devs.map((d) => `"${d}" — ${CLOCKEVENT_WORDS[d] ?? 'a device doctor does not describe'}`).join('; ') || 'no per-CPU device'}${ce.broadcast ? `; broadcast device "${ce.broadcast}"` : '; no broadcast device'}.`,
    );
  }

  // Tick mode: why the jiffies clocksources are (not) listed.
  const tick = val(r.tick);
  if (tick) {
    const cpus = tick.tickDevices.filter((d) => d.cpu !== 'broadcast');
    const oneshot = cpus.length > 0 && cpus.every((d) => d.mode === 'oneshot');
    const hres = tick.hresActive.length > 0 && tick.hresActive.every(Boolean);
    const handlers = [...new Set(cpus.map((d) => d.eventHandler).filter(Boolean))].join(', ');
    add(
      'info',
      'clockevents',
      `The tick runs in ${oneshot ? 'one-shot' : 'periodic'} mode${hres ? ' with high-resolution timers' : ', without high-resolution timers'}${handlers ? ` (event handler ${handlers})` : ''}.${oneshot ? ' In one-shot mode available_clocksource leaves out clocksources not valid for high resolution, such as jiffies (kernel/time/clocksource.c).' : ' A periodic tick: timers have tick resolution.'}`,
    );
  }

  // Boot log.
  if (!r.kernelLog.ok)
    add(
      'note',
      'kernel log',
      `The kernel log could not be read (${r.kernelLog.reason}); the boot-time clock decisions are not shown and the twin cannot be checked line by line.`,
    );
  else if (facts) {
    if (!log?.fromBoot)
      add(
        'note',
        'kernel log',
        'The kernel log does not start at boot (its first lines were dropped from the ring buffer, or this is an excerpt): boot-time clock decisions may be missing.',
      );
    if (facts.switches.length)
      add('info', 'kernel log', `At boot the kernel switched clocksource ${facts.switches.map((s) => `→ ${s}`).join(' ')}.`);
    if (facts.vmFork)
      add(
        'note',
        'snapshot',
        'The kernel log says "crng reseeded due to virtual machine fork": this VM was restored from a snapshot. Its monotonic clock continued from the snapshot; its wall clock is only right if something (NTP, a guest agent) set it after the restore.',
      );
    if (facts.kvmClockSchedOffsetCycles) {
      const ms = (Number(facts.kvmClockSchedOffsetCycles) / 1e6).toFixed(1);
      add(
        'info',
        'kernel log',
        `kvm-clock read ${facts.kvmClockSchedOffsetCycles} when the kernel set it up ("using sched offset of … cycles" — the value is kvm-clock nanoseconds, arch/x86/kernel/kvmclock.c): ${ms} ms passed between the VMM starting the VM's clock and kvmclock_init.`,
      );
    }
  }

  // vDSO.
  const maps = val(r.vdso.mappings);
  if (maps) {
    const how = cur ? VDSO_CLOCKSOURCES[cur] : undefined;
    const vclock = maps.vvarVclock
      ? 'The [vvar_vclock] mapping is present (the kvmclock/Hyper-V page is visible to userspace).'
      : 'There is no [vvar_vclock] mapping (on kernels before 6.13 the page sits inside [vvar]).';
    add(
      how ? 'info' : 'risk',
      'vdso',
      `${maps.vdso ? 'The vDSO is mapped.' : 'No vDSO is mapped!'} ${vclock} ${how ? `With "${cur}" the vDSO ${how}, so clock_gettime needs no system call.` : cur ? `The vDSO cannot read "${cur}": every clock_gettime except the COARSE clocks is a system call.` : ''}`.trim(),
    );
  }
  const cost = val(r.vdso.cost);
  if (cost) {
    const rows = cost.clocks
      .map((c) => `${c.clock.replace('CLOCK_', '')} ${c.vdsoNs.toFixed(0)} ns vs ${c.syscallNs.toFixed(0)} ns`)
      .join(', ');
    add(
      'info',
      'vdso',
      `Measured cost of one clock_gettime, vDSO vs system call (koffi call overhead of ${cost.ffiOverheadNs.toFixed(0)} ns subtracted, best of ${cost.iterations} calls; differences under ~10 ns are below this method's resolution): ${rows}.`,
    );
    const slow = cost.clocks.filter((c) => !c.clock.includes('COARSE') && !c.servedInUserspace);
    if (slow.length)
      add(
        'risk',
        'vdso',
        `${slow.map((c) => c.clock).join(', ')} cost about as much through the vDSO as a system call: the vDSO falls back to the kernel for this clocksource.`,
      );
  }

  // NTP.
  const tx = val(r.ntp.adjtimex);
  const clients = val(r.ntp.clients);
  if (tx) {
    const state = tx.synchronized ? `synchronized (${tx.state})` : `not synchronized (STA_UNSYNC set, ${tx.state})`;
    add(
      tx.synchronized ? 'info' : 'note',
      'ntp',
      `Kernel NTP state: ${state}; frequency correction ${tx.freqPpm.toFixed(3)} ppm; offset being slewed ${tx.offsetNs} ns; max error ${tx.maxerrorUs} µs, estimated error ${tx.esterrorUs} µs; TAI offset ${tx.tai} s.`,
    );
    if (Math.abs(tx.freqPpm) > 100)
      add(
        'risk',
        'ntp',
        `The frequency correction (${tx.freqPpm.toFixed(1)} ppm) is large: the clocksource runs far from its nominal rate (a miscalibrated TSC?).`,
      );
  } else if (!r.ntp.adjtimex.ok) add('note', 'ntp', `Kernel NTP state not read: ${r.ntp.adjtimex.reason}.`);
  if (clients) {
    if (clients.length === 0)
      add(
        'risk',
        'ntp',
        'No NTP client is running: nothing corrects the wall clock. After a pause or snapshot restore the wall clock stays behind by the pause length, and it drifts with the host crystal (typically a few ppm, i.e. ~0.1-1 s a day).',
      );
    else {
      add('info', 'ntp', `Time sync running: ${clients.join(', ')}.`);
      if (tx && !tx.synchronized)
        add(
          'risk',
          'ntp',
          'Yet the kernel clock is not synchronized (STA_UNSYNC): the client has not synced yet, cannot reach a server, only serves time, or runs without adjusting the clock (chronyd -x). Until it synchronizes the wall clock is as undisciplined as with no client: after a pause or snapshot restore it stays behind by the pause length.',
        );
    }
  } else if (!r.ntp.clients.ok) add('note', 'ntp', `Running NTP clients not determined: ${r.ntp.clients.reason}.`);

  // Steal.
  const sb = val(r.steal.sinceBoot);
  const si = val(r.steal.interval);
  if (sb || si) {
    const parts = [
      sb ? `${(sb.share * 100).toFixed(2)}% since boot` : '',
      si ? `${(si.share * 100).toFixed(2)}% over the last ${si.intervalMs} ms` : '',
    ].filter(Boolean);
    const worst = Math.max(sb?.share ?? 0, si?.share ?? 0);
    add(
      worst > 0.05 ? 'risk' : 'info',
      'steal',
      `Steal time (CPU time the hypervisor gave to others while this guest wanted to run): ${parts.join(', ')}.${worst > 0.05 ? ' Above 5%: timers fire late and the clocksource watchdog may misjudge a good clock.' : ''}`,
    );
  }

  // KVM for the live backend.
  const kvm = val(r.kvm);
  if (kvm) {
    if (!kvm.devKvm) add('info', 'kvm', "No /dev/kvm: timevisor's live backend cannot run here; simulation works.");
    else {
      const backend = kvm.backends.filter((b) => b !== 'kvm').join(', ') || 'unknown backend';
      const pvm = kvm.backends.includes('kvm_pvm')
        ? " kvm-pvm runs guest code through KVM's instruction emulator (software virtualization): only tiny guests are practical."
        : '';
      add('info', 'kvm', `/dev/kvm exists, backed by ${backend}${kvm.access ? ` (${kvm.access})` : ''}.${pvm}`);
    }
  }
  return out;
}

/** Everything that could not be read, with the reason: shown so nothing is silently missing. */
export function unreadable(r: DoctorReport): { what: string; reason: string }[] {
  const items: [string, Reading<unknown>][] = [
    ['kernel version', r.kernel],
    ['available_clocksource', r.clocksource.available],
    ['current_clocksource', r.clocksource.current],
    ['clockevents', r.clockevents],
    ['/proc/timer_list', r.tick],
    ['/proc/cmdline', r.cmdline],
    ['/proc/cpuinfo', r.cpu],
    ['hypervisor', r.hypervisor],
    ['kernel log', r.kernelLog],
    ['adjtimex', r.ntp.adjtimex],
    ['NTP clients', r.ntp.clients],
    ['vDSO mappings', r.vdso.mappings],
    ['clock_gettime cost', r.vdso.cost],
    ['steal since boot', r.steal.sinceBoot],
    ['steal interval', r.steal.interval],
    ['/dev/kvm', r.kvm],
  ];
  return items.filter(([, v]) => !v.ok).map(([what, v]) => ({ what, reason: (v as { reason: string }).reason }));
}

const MARK: Record<Severity, string> = { info: ' ', note: '*', risk: '!' };

export function renderText(r: DoctorReport, findings = explain(r), extra: string[] = []): string {
  const lines: string[] = [];
  lines.push(`timevisor doctor — ${r.origin === 'live' ? 'this machine' : r.origin}`);
  if (r.kernel.ok) lines.push(r.kernel.value);
  lines.push('');
  const topics = [...new Set(findings.map((f) => f.topic))];
  for (const topic of topics) {
    lines.push(`${topic}:`);
    for (const f of findings.filter((x) => x.topic === topic)) lines.push(`  ${MARK[f.severity]} ${f.text}`);
  }
  const risks = findings.filter((f) => f.severity === 'risk');
  lines.push('');
  lines.push(risks.length ? `${risks.length} risk${risks.length > 1 ? 's' : ''} (marked !).` : 'No risks found.');
  const missingItems = unreadable(r);
  if (missingItems.length) {
    lines.push('');
    lines.push('Not read:');
    for (const m of missingItems) lines.push(`  - ${m.reason.startsWith(m.what) ? m.reason : `${m.what}: ${m.reason}`}`);
  }
  if (extra.length) lines.push('', ...extra);
  return lines.join('\n') + '\n';
}
