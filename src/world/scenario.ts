// Scenario files: YAML (or JSON) describing the world — hosts, VMs, what happens and what to record.
// Validated with zod; every error names the file, the path inside it (hosts[1].tsc.freq_khz), the line,
// and what was expected. Durations become exact ns (bigint) here, once, in the schema's transform; the
// JSON Schema for editors is generated from the same zod schema (its input side).
import { readFileSync } from 'node:fs';
import { isNode, LineCounter, parseDocument, visit } from 'yaml';
import { z } from 'zod';
import { InputError } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { parseDuration } from '../core/index.ts';
import { parseCmdline } from '../guest/index.ts';
import { INVTSC_BLOCKER, kernelPreset, machineProfile, moveClockPolicy, parseUuid, vmclockFlavor, vmgenidFlavor } from '../vmm/index.ts';

/** The longest duration a scenario may name: far beyond any run, short enough to keep ns exact as float64 offsets. */
export const MAX_DURATION_NS = 1000n * 31_536_000_000_000_000n; // 1000 y

/** A duration as written ("500ms", "15s", "2h", "1d", "1y" or seconds), parsed to exact ns. */
const duration = z
  .union([z.string(), z.number()])
  .transform((v, ctx): Ns => {
    try {
      const ns = typeof v === 'number' && !(Math.abs(v) <= 1e12) ? MAX_DURATION_NS + 1n : parseDuration(v);
      if (ns > MAX_DURATION_NS) throw new InputError(`must be at most 1000y, got ${typeof v === 'number' ? v : `"${v}"`}`);
      return ns;
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  })
  .describe('a duration: "500ms", "15s", "2h", "1d", "1y" or a number of seconds');
const positiveDuration = duration.refine((ns) => ns > 0n, 'must be greater than 0');

/** A signed duration ("-2s", "+1h", -0.5): how far a clock is stepped. */
const signedDuration = z
  .union([z.string(), z.number()])
  .transform((v, ctx): Ns => {
    const neg = typeof v === 'number' ? v < 0 : /^\s*-/.test(v);
    const abs = typeof v === 'number' ? Math.abs(v) : v.replace(/^\s*[-+]/, '');
    try {
      const ns = typeof abs === 'number' && !(abs <= 1e12) ? MAX_DURATION_NS + 1n : parseDuration(abs);
      if (ns > MAX_DURATION_NS) throw new InputError(`must be within ±1000y, got ${typeof v === 'number' ? v : `"${v}"`}`);
      return neg ? -ns : ns;
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message.replace('a non-negative duration', 'a duration') });
      return z.NEVER;
    }
  })
  .describe('a signed duration: "-2s", "+1h", or a number of seconds');

export const oscillatorSchema = z.strictObject({
  ppm: z.number().min(-1000).max(1000).default(0).describe('frequency error of the host crystal, parts per million (+ runs fast)'),
  wander_sigma_ppm: z
    .number()
    .nonnegative()
    .max(100)
    .default(0)
    .describe('random-walk step of the frequency error per wander_interval, ppm (0: none)'),
  wander_interval: positiveDuration.prefault('1s').describe('interval between random-walk steps'),
});

export const tscSchema = z
  .strictObject({
    freq_khz: z.number().int().min(1000).max(100_000_000).describe('nominal TSC frequency in kHz (1 MHz … 100 GHz), e.g. 2596136'),
    constant: z.boolean().default(true).describe('constant_tsc: rate independent of P-states'),
    nonstop: z.boolean().default(true).describe('nonstop_tsc: counts in deep C-states'),
    invariant: z.boolean().default(true).describe('invariant TSC (CPUID 0x80000007 EDX bit 8); implies constant and nonstop'),
  })
  // arch/x86/kernel/cpu/{amd,intel}.c: CPUID 0x80000007 EDX bit 8 sets both X86_FEATURE_CONSTANT_TSC and
  // X86_FEATURE_NONSTOP_TSC, so an invariant TSC that is not constant or not nonstop cannot exist.
  .refine((t) => !t.invariant || (t.constant && t.nonstop), {
    message:
      'an invariant TSC is constant and nonstop (CPUID 0x80000007 EDX bit 8 implies both): set invariant: false, or constant and nonstop: true',
    path: ['invariant'],
  });

export const hostCpuSchema = z.strictObject({
  vendor: z.enum(['amd', 'intel']).default('amd').describe('CPU vendor the guest is shown'),
  tsc_deadline: z.boolean().default(true).describe('TSC-deadline mode of the LAPIC timer (CPUID 1 ECX bit 24)'),
  tsc_adjust: z.boolean().default(true).describe('IA32_TSC_ADJUST MSR (CPUID 7 EBX bit 1)'),
});

// Host-kernel KVM clock behaviours: one flag per patch of David Woodhouse's "Cleaning up the KVM clock mess"
// series (v6, 2026-07-03), none in a released kernel yet (src/hypervisor/kvm.ts KvmClockFeatures, docs/fidelity.md)
export const hostKvmSchema = z.strictObject({
  hz_tsc_scale: z
    .boolean()
    .default(false)
    .describe(
      'kvmclock scale from the scaled TSC rate in Hz, not truncated kHz ("Improve accuracy of KVM clock when TSC scaling is in force"): a 2.6 GHz guest on a 3.0 GHz host no longer runs 0.38 ppm fast',
    ),
  scaled_get_clock: z
    .boolean()
    .default(false)
    .describe(
      'KVM_GET_CLOCK computes through the guest\'s TSC scaling and kvmclock scale ("Fix KVM clock precision in get_kvmclock() with TSC scaling", in linux-next since 2026-09): what a VMM saves equals what the guest reads',
    ),
  clock_guest_ioctls: z
    .boolean()
    .default(false)
    .describe('the per-vCPU KVM_GET_CLOCK_GUEST / KVM_SET_CLOCK_GUEST ioctls (needed for vms[].clock_guest)'),
});

export const realtimeStepSchema = z.strictObject({
  at: duration.describe("when the host's CLOCK_REALTIME is stepped, from the start of the scenario"),
  by: signedDuration.describe('how far it is stepped (settimeofday on the host), e.g. "-2s" or "+1h"'),
});

export const hostLoadSchema = z.strictObject({
  busy_threads: z.number().int().min(0).max(100_000).default(0).describe('threads on the host that are always runnable (CPU-bound)'),
});

export const hostSchema = z.strictObject({
  name: z.string().min(1),
  oscillator: oscillatorSchema.prefault({}),
  tsc: tscSchema,
  cpu: hostCpuSchema.prefault({}).describe('what the host CPU offers beyond its TSC'),
  ntp: z.boolean().default(true).describe("whether the host's own clock is NTP-disciplined"),
  kvm: hostKvmSchema.prefault({}).describe("the host kernel's KVM clock behaviours (default: mainline)"),
  realtime_steps: z
    .array(realtimeStepSchema)
    .default([])
    .describe("steps of the host's own CLOCK_REALTIME under running guests (only with ntp: false, whose clock nothing corrects)"),
  realtime_error: z
    .number()
    .min(-1e9)
    .max(1e9)
    .default(0)
    .describe('host REALTIME minus true UTC at the start, seconds (only with ntp: false; within ±10^9 s)'),
  cpus: z
    .number()
    .int()
    .min(1)
    .max(4096)
    .optional()
    .describe("physical CPUs the VMs' vCPU threads and load share (default: enough that no thread waits)"),
  load: hostLoadSchema.prefault({}).describe('other runnable work on the host, sharing its CPUs with the vCPU threads'),
  tsc_skew: z
    .strictObject({
      per_cpu_ns: z
        .array(z.number().int().min(-1_000_000_000).max(1_000_000_000))
        .min(1)
        .max(64)
        .describe("each host CPU's TSC minus CPU 0's, ns (index = host CPU; vCPU i runs on host CPU i)"),
      tsc_reliable: z
        .boolean()
        .default(false)
        .describe('the host kernel has tsc=reliable: it skips its TSC sync check, keeps the TSC as clocksource and KVM its master clock'),
    })
    .optional()
    .describe(
      'host CPUs whose TSCs are not synchronised: unless tsc_reliable, the host marks its TSC unstable and runs on the HPET, and KVM has no master clock',
    ),
});

export const pauseSchema = z.strictObject({
  at: duration.describe('when the VMM pauses the VM, from the start of the scenario'),
  duration: duration.describe('how long it stays paused'),
});

export const snapshotSchema = z.strictObject({
  at: duration.describe('when the VMM pauses and saves the VM, from the start of the scenario'),
  restore_after: duration.describe('how long the VM is gone before it is restored'),
  restore_on: z.string().min(1).optional().describe('the host it is restored on (default: the host it ran on)'),
  clock_realtime: z
    .boolean()
    .optional()
    .describe("Firecracker's snapshot-load option: KVM_SET_CLOCK with KVM_CLOCK_REALTIME, so kvmclock advances by the gap (default false)"),
});

export const migrationSchema = z.strictObject({
  at: duration.describe('when the stop-and-copy phase starts (the VM stops on its host)'),
  to: z.string().min(1).describe('the destination host'),
  downtime: positiveDuration.describe('how long the VM is stopped while its last state is copied'),
  tsc_scaling: z
    .boolean()
    .default(true)
    .describe("the destination CPU can scale the guest's TSC to its saved rate (VMX/SVM TSC multiplier)"),
});

/** chrony.conf `refclock PHC /dev/ptp0 [poll N] [dpoll N] [offset S] [delay S] [precision S] [filter N] [nocrossts]` (conf.c defaults). */
export const refclockSchema = z.strictObject({
  phc: z
    .literal('/dev/ptp0')
    .default('/dev/ptp0')
    .describe("the PHC device: the guest's ptp_kvm clock, /dev/ptp0 (the only PHC the model's guests have)"),
  poll: z
    .number()
    .int()
    .min(-6)
    .max(24)
    .default(4)
    .describe('log2 seconds between filtered samples handed to source selection (default 4 = 16 s)'),
  dpoll: z.number().int().min(-6).max(24).default(0).describe('log2 seconds between PHC reads (default 0 = 1 s; at most poll)'),
  offset: z.number().min(-1e6).max(1e6).default(0).describe('seconds added to the PHC time (default 0)'),
  delay: z.number().positive().max(1).default(1e-9).describe("the sample's assumed delay, seconds (default 1e-9)"),
  precision: z.number().nonnegative().max(1).default(0).describe('precision, seconds (default: the system clock precision)'),
  filter: z.number().int().min(1).max(256).default(64).describe('samples the median filter holds (default 64)'),
  nocrossts: z.boolean().default(false).describe('never read with PTP_SYS_OFFSET_PRECISE (cross timestamping)'),
});

export const syncSchema = z.strictObject({
  method: z
    .enum(['none', 'agent', 'ntp', 'ntpd', 'chrony'])
    .default('none')
    .describe(
      "what re-syncs the guest's wall clock: nothing, the management layer's guest-agent guest-set-time after each resume, an ntpd-like client in the guest (ntpd, or its alias ntp), or chronyd",
    ),
  agent_delay: duration.prefault('1s').describe('agent: how long after a resume the management layer sends guest-set-time'),
  ntp_poll_exp: z.number().int().min(4).max(17).default(6).describe('ntp: log2 of the poll interval in seconds (6 = 64 s)'),
  ntp_step_threshold: duration
    .prefault('128ms')
    .describe('ntp: offsets beyond this are stepped (ADJ_SETOFFSET), smaller ones slewed by the kernel PLL'),
  // chrony (and the servers of ntpd)
  servers: z
    .array(z.string().min(1))
    .optional()
    .describe('ntpd/chrony: names from ntp_servers (default: all of them; with none defined, an ideal server at true UTC 1 ms away)'),
  iburst: z.boolean().default(false).describe("chrony: the servers' iburst option (4 requests 2 s apart at start)"),
  minpoll: z
    .number()
    .int()
    .min(-7)
    .max(24)
    .default(6)
    .describe('chrony: minpoll, log2 seconds (default 6 = 64 s; below 0 only while the path delay is ≤ 10 ms, as chronyd 4.3)'),
  maxpoll: z.number().int().min(-7).max(24).default(10).describe('chrony: maxpoll, log2 seconds (default 10 = 1024 s)'),
  makestep: z
    .tuple([z.number().nonnegative(), z.number().int().min(-1)])
    .optional()
    .describe(
      'chrony: makestep [threshold seconds, limit]: step when the offset exceeds threshold during the first limit updates (-1: always); default: never step',
    ),
  maxslewrate_ppm: z
    .number()
    .positive()
    .max(100000)
    .default(1e6 / 12)
    .describe('chrony: maxslewrate, ppm (default 83333.333)'),
  rtcsync: z.boolean().default(false).describe("chrony: rtcsync (the kernel's 11-minute mode copies the system time to the RTC)"),
  refclock: refclockSchema
    .optional()
    .describe(
      'chrony: refclock PHC on the ptp_kvm clock (the host REALTIME through KVM_HC_CLOCK_PAIRING); without servers given, the only source',
    ),
  agent_latency: duration
    .prefault(0)
    .describe("agent: one-way latency of guest-set-time from the host's read of its clock to the guest applying it"),
});

export const ntpPathSchema = z.strictObject({
  delay: duration.describe('fixed one-way delay'),
  jitter: duration.prefault(0).describe('mean of the exponential extra delay of each packet (delay + jitter × Exp(1) each way)'),
  asymmetry: signedDuration
    .prefault(0)
    .describe('request minus reply fixed delay (request: delay + asymmetry/2, reply: delay − asymmetry/2)'),
  loss: z.number().min(0).lt(1).default(0).describe('probability that a packet is lost'),
});

export const ntpServerSchema = z.strictObject({
  name: z.string().min(1),
  stratum: z.number().int().min(1).max(15).optional().describe('stratum it announces (default 1 for true UTC, 2 for a host clock)'),
  host: z.string().min(1).optional().describe("serve this host's REALTIME instead of true UTC"),
  path: ntpPathSchema.describe('the network path between the guests and this server'),
});

export const vmSchema = z.strictObject({
  name: z.string().min(1),
  host: z.string().min(1).describe('name of the host it runs on'),
  profile: z
    .string()
    .default('qemu-kvm')
    .describe('VMM machine profile: qemu-kvm, qemu-kvm-noinvtsc, firecracker, firecracker-pvm, cloud-hypervisor, kvmtool, qemu-tcg'),
  kernel: z.string().default('distro').describe('guest kernel preset: distro, yocto-qemux86, debian12'),
  cmdline: z.string().default('').describe('guest kernel command line (clocksource=, no-kvmclock, tsc=…)'),
  vcpus: z.number().int().min(1).max(64).optional().describe("vCPU count (default: the profile's)"),
  boot_at: duration.prefault(0).describe('when the VMM creates the VM, from the start of the scenario'),
  pauses: z.array(pauseSchema).default([]).describe('VMM pause/resume events (each VMM handles kvmclock its own way)'),
  snapshots: z.array(snapshotSchema).default([]).describe('the VMM saves the VM, which is gone for restore_after, then restores it'),
  migrations: z.array(migrationSchema).default([]).describe('live migrations to another host, with a stop-and-copy downtime'),
  vmclock: z
    .strictObject({
      precise: z
        .boolean()
        .default(false)
        .describe(
          'the host also publishes the guest TSC → UTC relation (the ABI allows it; QEMU and Firecracker publish only the markers)',
        ),
      esterror: duration.prefault('1us').describe('precise: the estimated error the host states for the published time'),
      maxerror: duration.prefault('10us').describe('precise: the maximum error the host states'),
    })
    .optional()
    .describe(
      'a VMClock device (QEMU -device vmclock, Firecracker vmclock): disruption_marker and vm_generation_counter across restores and migrations',
    ),
  clock_guest: z
    .boolean()
    .default(false)
    .describe(
      "the VMM moves the VM by the KVM clock series' documented procedure: guest TSCs moved on by the elapsed host realtime, kvmclock put back with KVM_SET_CLOCK_GUEST (needs hosts[].kvm.clock_guest_ioctls on both sides), else KVM_SET_CLOCK with KVM_CLOCK_REALTIME. A VMM option: no VMM does this yet",
    ),
  vmgenid: z
    .union([z.boolean(), z.string()])
    .optional()
    .describe(
      'a VMGenID device: true or "auto" (QEMU -device vmgenid,guid=auto: each QEMU process draws a GUID, so restores and incoming migrations change it), a UUID (guid=<uuid>: the same every time), false (none). Firecracker always has one, changed on every restore; default: QEMU none',
    ),
  tsc_frequency_khz: z
    .number()
    .int()
    .min(1000)
    .max(100_000_000)
    .optional()
    .describe('QEMU -cpu …,tsc-frequency=N: the guest TSC rate the VMM sets (KVM_SET_TSC_KHZ); needed to migrate an invariant-TSC guest'),
  sync: syncSchema.prefault({}),
  pit_lost_tick_policy: z
    .enum(['reinject', 'discard'])
    .optional()
    .describe(
      "KVM's in-kernel PIT: reinject missed ticks one per EOI (KVM_CREATE_PIT2's default) or discard them (KVM_REINJECT_CONTROL); KVM profiles only",
    ),
  timer_interrupts: z
    .enum(['auto', 'wired', 'direct'])
    .default('auto')
    .describe(
      "how the tickless guest's one-shot tick reaches update_wall_time: wired (the LAPIC TSC-deadline interrupt through KVM, with its lateness), direct (run at the programmed expiry: the fast path, exact when the vCPU never waits), auto (wired when a host shares its CPUs, the VM has deschedule or rdtsc_exiting, or its host's TSCs are skewed; else direct); the boot-time periodic tick is always wired",
    ),
  deschedule: z
    .strictObject({
      period: positiveDuration.describe('length of the host scheduler period'),
      run: positiveDuration.describe('how much of each period the vCPU threads run'),
    })
    .refine((d) => d.run <= d.period, 'run must not be longer than period')
    .optional()
    .describe(
      'the vCPU threads run `run` out of every `period` from boot (a fixed CPU share on a busy host): late and lost timer ticks, steal',
    ),
  ptp_kvm: z
    .boolean()
    .optional()
    .describe("the guest loads ptp_kvm (/dev/ptp0 reads the host's REALTIME by KVM_HC_CLOCK_PAIRING); default: on with sync.refclock"),
  update_interval: positiveDuration
    .prefault('1s')
    .describe("how often the guest's timekeeper accumulates (the tick's update_wall_time); longer is faster to simulate"),
  initial_offset: signedDuration
    .optional()
    .describe('the guest\'s REALTIME error right after boot (set when userspace starts, 5 s after kernel entry), e.g. "+60s"'),
  kvmclock_at_init: duration
    .refine((ns) => ns <= 3_600_000_000_000n, 'must be at most 1h (it is how long the VMM, firmware and loader ran before the kernel)')
    .optional()
    .describe(
      'what kvm-clock read when the guest kernel set it up ("kvm-clock: using sched offset of N cycles", N ns): how long VMM, firmware and loader ran before kvmclock_init, e.g. "52991526ns" (default: the VMM profile\'s)',
    ),
  rdtsc_exiting: z
    .strictObject({
      exit_cost: positiveDuration
        .refine((ns) => ns <= 1_000_000n, 'must be at most 1ms')
        .describe('real time one RDTSC exit takes (exit, emulation, re-entry), e.g. "1.2us"'),
      offset_compensation: z
        .boolean()
        .default(false)
        .describe("the VMM subtracts each exit's time from the TSC offset: the guest does not see the exits, its TSC runs slow"),
      rate: z
        .number()
        .int()
        .min(0)
        .max(100_000_000)
        .default(10_000)
        .describe('guest RDTSCs per second per vCPU (the workload and the kernel): how much time compensation takes from the TSC'),
    })
    .refine((x) => BigInt(x.rate) * x.exit_cost < 1_000_000_000n, {
      message: 'rate × exit_cost must be below 1 s per second (the vCPU would do nothing but exit)',
    })
    .optional()
    .describe('the VMM traps every guest RDTSC (RDTSC exiting; KVM itself offers no such mode): each costs exit_cost'),
  kvmclock_test: z
    .strictObject({
      reads: z.number().int().min(1).max(10_000_000).default(100_000).describe('reads in all, round-robin over the vCPUs'),
      read_interval: positiveDuration.prefault('25ns').describe('time between two consecutive reads (on different vCPUs)'),
      wake_interval: positiveDuration
        .prefault('4ms')
        .describe("how often each vCPU's thread is put and loaded again (staggered across vCPUs)"),
    })
    .optional()
    .describe(
      "a kvm-unit-tests kvmclock_test-style check on this VM's vCPUs and host: cross-vCPU reads that go backwards (summary.json kvmclock_warps)",
    ),
});

export const scenarioSchema = z.strictObject({
  name: z.string().default('scenario'),
  description: z.string().optional(),
  seed: z
    .number()
    .int()
    .nonnegative()
    .max(0xffff_ffff)
    .default(1)
    .describe('PRNG seed: same scenario and seed give byte-identical results'),
  start: z.iso
    .datetime({ offset: true })
    .default('2026-01-01T00:00:00Z')
    // kvmclock's wall-clock record holds u32 seconds since 1970 (arch/x86/kvm/x86.c kvm_write_wall_clock:
    // "overflow in 2106 guest time"), and guests count from the epoch: outside these years the models are not meaningful
    .refine((v) => {
      const y = new Date(v).getUTCFullYear();
      return y >= 1970 && y <= 2105;
    }, "must be between 1970 and 2105 (kvmclock's wall-clock record holds u32 seconds since 1970)")
    .describe('true UTC at the start of the scenario (ISO 8601), 1970 … 2105'),
  duration: duration.describe('simulated time to run'),
  sample_interval: positiveDuration.prefault('1min').describe('how often offsets are recorded in the timeline'),
  hosts: z.array(hostSchema).min(1),
  vms: z.array(vmSchema).min(1),
  ntp_servers: z.array(ntpServerSchema).default([]).describe('NTP servers the guests can use, each with its network path'),
});

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;

/** JSON Schema (draft 2020-12) for scenario files, for editors. */
export function scenarioJsonSchema(): Record<string, unknown> {
  const js = z.toJSONSchema(scenarioSchema, { io: 'input' }) as Record<string, unknown>;
  return { $id: 'https://timevisor.dev/schema/scenario.schema.json', title: 'timevisor scenario', ...js };
}

/** "hosts[1].tsc.freq_khz" from ['hosts', 1, 'tsc', 'freq_khz']. */
export function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? String(p) : `.${String(p)}`;
  return s || '(top level)';
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let v = data;
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

export function describeIssue(issue: z.core.$ZodIssue, data: unknown): { path: PropertyKey[]; message: string } {
  const path = [...issue.path];
  if (valueAt(data, path) === undefined && issue.code !== 'unrecognized_keys') {
    const expected = issue.code === 'invalid_type' ? issue.expected : 'a value';
    return { path, message: `missing; expected ${expected}` };
  }
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    return { path: [...path, issue.keys[0]!], message: `unknown key ${keys}` };
  }
  return { path, message: plainMessage(issue, valueAt(data, path)) };
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return String(v);
}

/** zod's issue in the words of the rest of timevisor's messages: what was expected, what was given. */
function plainMessage(issue: z.core.$ZodIssue, given: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected === 'int' ? 'a whole number' : issue.expected}, got ${describeValue(given)}`;
    case 'too_small': {
      if (issue.origin === 'array') return `needs at least ${issue.minimum} entr${issue.minimum === 1 ? 'y' : 'ies'}`;
      if (issue.origin === 'string') return 'must not be empty';
      return `must be ${issue.inclusive ? '≥' : '>'} ${issue.minimum}, got ${describeValue(given)}`;
    }
    case 'too_big':
      return `must be ${issue.inclusive ? '≤' : '<'} ${issue.maximum}, got ${describeValue(given)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(given)}`;
    case 'invalid_format':
      return issue.format === 'datetime'
        ? `expected an ISO 8601 date and time like "2026-01-01T00:00:00Z", got ${describeValue(given)}`
        : `expected ${issue.format}, got ${describeValue(given)}`;
    case 'invalid_union':
      return `expected a duration like "500ms", "15s", "1d" or a number of seconds, got ${describeValue(given)}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}, got ${describeValue(given)}`;
    default:
      return issue.message.replace(/^Invalid input: /, '');
  }
}

/** Semantic checks zod cannot express: references between hosts and VMs, unique names, durations. */
function crossCheck(s: Scenario): { path: PropertyKey[]; message: string } | null {
  const names = new Set<string>();
  for (const [i, h] of s.hosts.entries()) {
    if (names.has(h.name)) return { path: ['hosts', i, 'name'], message: `duplicate host name "${h.name}"` };
    names.add(h.name);
  }
  const vmNames = new Set<string>();
  for (const [i, vm] of s.vms.entries()) {
    if (!names.has(vm.host)) return { path: ['vms', i, 'host'], message: `no host named "${vm.host}" (hosts: ${[...names].join(', ')})` };
    if (vmNames.has(vm.name)) return { path: ['vms', i, 'name'], message: `duplicate VM name "${vm.name}"` };
    vmNames.add(vm.name);
  }
  for (const [i, h] of s.hosts.entries()) {
    if (h.cpus === undefined && h.load.busy_threads > 0)
      return {
        path: ['hosts', i, 'load'],
        message: 'has no effect without hosts[].cpus (every thread would have a CPU of its own): set cpus to share them',
      };
    if (h.ntp && h.realtime_error !== 0)
      return {
        path: ['hosts', i, 'realtime_error'],
        message: 'has no effect while the host runs NTP (its REALTIME is true UTC): set ntp: false to give the host a wrong clock',
      };
  }
  for (const [i, vm] of s.vms.entries())
    if (vm.boot_at > s.duration) return { path: ['vms', i, 'boot_at'], message: 'is after the end of the run (duration)' };
  const ntpProblem = checkNtp(s, names);
  if (ntpProblem) return ntpProblem;
  const ptpProblem = checkPtpKvm(s);
  if (ptpProblem) return ptpProblem;
  for (const [i, vm] of s.vms.entries()) {
    const named: [string, () => unknown][] = [
      ['profile', () => machineProfile(vm.profile)],
      ['kernel', () => kernelPreset(vm.kernel)],
      ['cmdline', () => parseCmdline(vm.cmdline)],
    ];
    for (const [key, check] of named) {
      try {
        check();
      } catch (e) {
        return { path: ['vms', i, key], message: (e as Error).message };
      }
    }
    const stops = [
      ...vm.pauses.map((p, j) => ({ at: p.at, len: p.duration, path: ['vms', i, 'pauses', j, 'at'] as PropertyKey[] })),
      ...vm.snapshots.map((p, j) => ({ at: p.at, len: p.restore_after, path: ['vms', i, 'snapshots', j, 'at'] as PropertyKey[] })),
      ...vm.migrations.map((p, j) => ({ at: p.at, len: p.downtime, path: ['vms', i, 'migrations', j, 'at'] as PropertyKey[] })),
    ].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    let end = vm.boot_at;
    for (const [k, st] of stops.entries()) {
      if (st.at >= s.duration) return { path: st.path, message: 'is at or after the end of the run (duration)' };
      if (st.at <= end)
        return {
          path: st.path,
          message:
            k === 0
              ? 'must come after boot_at'
              : 'overlaps an earlier pause, snapshot or migration of this VM (each must end before the next starts)',
        };
      end = st.at + st.len;
    }
    const moves = moveClockPolicy(vm.profile);
    for (const [j, sn] of vm.snapshots.entries()) {
      if (moves.snapshotRefused) return { path: ['vms', i, 'snapshots', j], message: moves.snapshotRefused };
      if (sn.restore_on !== undefined && !names.has(sn.restore_on))
        return {
          path: ['vms', i, 'snapshots', j, 'restore_on'],
          message: `no host named "${sn.restore_on}" (hosts: ${[...names].join(', ')})`,
        };
      if (sn.clock_realtime !== undefined && moves.clockRealtime !== 'option')
        return {
          path: ['vms', i, 'snapshots', j, 'clock_realtime'],
          message: `is Firecracker's snapshot-load option; ${vm.profile} ${moves.clockRealtime === 'always' ? 'always restores kvmclock with KVM_CLOCK_REALTIME' : 'never asks KVM for KVM_CLOCK_REALTIME'}`,
        };
    }
    for (const [j, m] of vm.migrations.entries()) {
      if (!names.has(m.to))
        return { path: ['vms', i, 'migrations', j, 'to'], message: `no host named "${m.to}" (hosts: ${[...names].join(', ')})` };
      const refused =
        moves.migrationRefused === 'invtsc' ? (vm.tsc_frequency_khz === undefined ? INVTSC_BLOCKER : null) : moves.migrationRefused;
      if (refused)
        return {
          path: ['vms', i, 'migrations', j],
          message:
            refused === INVTSC_BLOCKER
              ? `QEMU refuses: "${INVTSC_BLOCKER}" (set tsc_frequency_khz, as -cpu …,tsc-frequency= does)`
              : refused,
        };
      // QEMU with an explicit tsc-frequency fails the destination's vCPU setup when KVM cannot give that
      // rate: no TSC scaling and the host more than 250 ppm away (target/i386/kvm/kvm.c kvm_arch_set_tsc_khz)
      const dstKhz = s.hosts.find((h) => h.name === m.to)?.tsc.freq_khz ?? 0;
      const want = vm.tsc_frequency_khz;
      if (want !== undefined && !m.tsc_scaling && Math.abs(dstKhz - want) * 1e6 > 250 * want)
        return {
          path: ['vms', i, 'migrations', j, 'tsc_scaling'],
          message: `QEMU refuses on the destination: "TSC frequency mismatch between VM (${want} kHz) and host (${dstKhz} kHz), and TSC scaling unavailable"`,
        };
    }
    if (vm.vmclock !== undefined && vmclockFlavor(vm.profile) === null)
      return { path: ['vms', i, 'vmclock'], message: `profile ${vm.profile} has no VMClock device (QEMU and Firecracker do)` };
    if (vm.pit_lost_tick_policy !== undefined && vm.profile === 'qemu-tcg')
      return { path: ['vms', i, 'pit_lost_tick_policy'], message: "is KVM's in-kernel PIT option; qemu-tcg has QEMU's userspace PIT" };
    const genid = vmgenidFlavor(vm.profile);
    if (vm.vmgenid !== undefined && vm.vmgenid !== false && genid === null)
      return { path: ['vms', i, 'vmgenid'], message: `profile ${vm.profile} has no VMGenID device (QEMU and Firecracker do)` };
    if (genid === 'firecracker' && vm.vmgenid === false)
      return {
        path: ['vms', i, 'vmgenid'],
        message: 'Firecracker always creates its VMGenID device (src/vmm/src/devices/acpi/vmgenid.rs)',
      };
    if (typeof vm.vmgenid === 'string' && vm.vmgenid !== 'auto') {
      if (genid === 'firecracker')
        return {
          path: ['vms', i, 'vmgenid'],
          message: 'Firecracker has no guid option: it draws new random bytes at every boot and restore',
        };
      if (!parseUuid(vm.vmgenid))
        return {
          path: ['vms', i, 'vmgenid'],
          message: `must be true, false, "auto" or a UUID like "324e6eaf-d1d1-4bf6-bf41-b9bb6c91fb87", got "${vm.vmgenid}"`,
        };
    }
    if (vm.clock_guest && vm.profile === 'qemu-tcg')
      return { path: ['vms', i, 'clock_guest'], message: 'is a KVM ioctl; profile qemu-tcg has no KVM clock' };
    if (vm.tsc_frequency_khz !== undefined && !vm.profile.startsWith('qemu-kvm'))
      return { path: ['vms', i, 'tsc_frequency_khz'], message: `is QEMU's -cpu tsc-frequency; profile ${vm.profile} has no such option` };
    // RDTSC exiting and the kvmclock check act on KVM vCPUs; under TCG there are none
    for (const key of ['rdtsc_exiting', 'kvmclock_test'] as const)
      if (vm[key] !== undefined && machineProfile(vm.profile).accel !== 'kvm')
        return { path: ['vms', i, key], message: `needs a KVM profile; ${vm.profile} emulates the CPU (TCG)` };
  }
  for (const [i, h] of s.hosts.entries()) {
    if (h.realtime_steps.length > 0 && h.ntp)
      return {
        path: ['hosts', i, 'realtime_steps'],
        message: 'a host running NTP would be put right at once: set ntp: false to step its clock',
      };
    for (const [j, st] of h.realtime_steps.entries())
      if (st.at >= s.duration)
        return { path: ['hosts', i, 'realtime_steps', j, 'at'], message: 'is at or after the end of the run (duration)' };
  }
  return null;
}

/** ntp_servers and the VMs' references to them. */
function checkNtp(s: Scenario, hostNames: Set<string>): { path: PropertyKey[]; message: string } | null {
  const servers = new Set<string>();
  for (const [i, n] of s.ntp_servers.entries()) {
    if (servers.has(n.name)) return { path: ['ntp_servers', i, 'name'], message: `duplicate NTP server name "${n.name}"` };
    servers.add(n.name);
    if (n.host !== undefined && !hostNames.has(n.host))
      return { path: ['ntp_servers', i, 'host'], message: `no host named "${n.host}" (hosts: ${[...hostNames].join(', ')})` };
    const a = n.path.asymmetry < 0n ? -n.path.asymmetry : n.path.asymmetry;
    if (a > 2n * n.path.delay)
      return {
        path: ['ntp_servers', i, 'path', 'asymmetry'],
        message: 'must be at most 2 × delay in size (no direction can take less than no time)',
      };
  }
  for (const [i, vm] of s.vms.entries()) {
    for (const [j, name] of (vm.sync.servers ?? []).entries())
      if (!servers.has(name))
        return {
          path: ['vms', i, 'sync', 'servers', j],
          message: `no NTP server named "${name}" (ntp_servers: ${[...servers].join(', ') || 'none'})`,
        };
    if (vm.sync.minpoll > vm.sync.maxpoll)
      return { path: ['vms', i, 'sync', 'maxpoll'], message: `must be ≥ minpoll (${vm.sync.minpoll})` };
  }
  return null;
}

/** ptp_kvm and chrony's refclock PHC: a KVM guest (the hypercall is KVM's), chronyd, the device loaded. */
function checkPtpKvm(s: Scenario): { path: PropertyKey[]; message: string } | null {
  for (const [i, vm] of s.vms.entries()) {
    const rc = vm.sync.refclock;
    if (rc && vm.sync.method !== 'chrony')
      return { path: ['vms', i, 'sync', 'refclock'], message: `is a chrony refclock: set sync.method to chrony (it is ${vm.sync.method})` };
    if (rc && vm.ptp_kvm === false)
      return { path: ['vms', i, 'ptp_kvm'], message: 'is false, but sync.refclock reads /dev/ptp0, which ptp_kvm provides' };
    if (rc && rc.dpoll > rc.poll) return { path: ['vms', i, 'sync', 'refclock', 'dpoll'], message: `must be at most poll (${rc.poll})` };
    if ((rc || vm.ptp_kvm) && machineProfile(vm.profile).accel !== 'kvm')
      return {
        path: ['vms', i, rc ? 'sync' : 'ptp_kvm', ...(rc ? ['refclock'] : [])],
        message: `needs KVM's KVM_HC_CLOCK_PAIRING hypercall; profile ${vm.profile} runs without KVM`,
      };
  }
  return null;
}

/** Validate an already-parsed object; `where` names its origin for error messages. */
export function parseScenario(data: unknown, where = 'scenario', lineOf: (path: PropertyKey[]) => number | null = () => null): Scenario {
  const r = scenarioSchema.safeParse(data);
  let problem: { path: PropertyKey[]; message: string } | null = null;
  if (!r.success) problem = describeIssue(r.error.issues[0]!, data);
  else problem = crossCheck(r.data);
  if (problem) {
    const line = lineOf(problem.path);
    throw new InputError(problem.message, line === null ? where : `${where}:${line}`, formatPath(problem.path));
  }
  return (r as { data: Scenario }).data;
}

/** A YAML document read as data, and the line of any path inside it (for file:line errors). */
export interface YamlData {
  data: Record<string, unknown>;
  lineOf: (path: PropertyKey[]) => number | null;
}

/** Parse YAML text whose top level must be a mapping (`expected` says what it should hold). */
export function parseYamlMapping(text: string, where: string, expected: string): YamlData {
  const lineCounter = new LineCounter();
  // logLevel 'error': a complex (collection) key is stringified silently and then named as an unknown key
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  const at = (pos: number | undefined) => (pos === undefined ? where : `${where}:${lineCounter.linePos(pos).line}`);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new InputError(`not valid YAML: ${e.message.split('\n')[0]}`, at(e.pos[0]));
  }
  let data: unknown;
  try {
    // an alias bomb (anchors expanding into each other) stops at 100 aliases instead of exhausting memory
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // yaml throws a ReferenceError for an alias it cannot resolve or expands too often: name the first alias
    let aliasAt: number | undefined;
    visit(doc, {
      Alias(_, node) {
        aliasAt ??= node.range?.[0];
      },
    });
    throw new InputError(
      `not valid YAML: ${(e as Error).message} (anchors must be defined before their aliases; at most 100 alias expansions)`,
      at(aliasAt),
    );
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new InputError(`expected a YAML mapping (${expected}) at the top level`, where);
  }
  const lineOf = (path: PropertyKey[]): number | null => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as (string | number)[], true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
      if (n < path.length && n > 0) {
        // a key that exists only as a key (unknown key): find the pair inside its parent map
        const parent = doc.getIn(path.slice(0, n) as (string | number)[], true) as { items?: { key: unknown }[] } | undefined;
        const pair = parent?.items?.find((it) => isNode(it.key) && (it.key as { value?: unknown }).value === path[n]);
        if (pair && isNode(pair.key) && pair.key.range) return lineCounter.linePos(pair.key.range[0]).line;
      }
    }
    return null;
  };
  return { data: data as Record<string, unknown>, lineOf };
}

/** Parse YAML text into a validated scenario. */
export function parseScenarioText(text: string, where = 'scenario'): Scenario {
  const { data, lineOf } = parseYamlMapping(text, where, 'hosts:, vms:, duration: …');
  return parseScenario(data, where, lineOf);
}

/** Read a text file for `what` ("scenario", "sweep"); errors name the file and the reason. */
export function readInputFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory, expected a YAML file'
          : code === 'EACCES'
            ? 'permission denied'
            : (e as Error).message;
    throw new InputError(`cannot read ${what}: ${why}`, file);
  }
}

/** Read and validate a scenario file. */
export function loadScenario(file: string): Scenario {
  return parseScenarioText(readInputFile(file, 'scenario'), file);
}
