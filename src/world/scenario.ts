// Scenario files: YAML (or JSON) describing the world — hosts, VMs, what happens and what to record.
// Validated with zod; every error names the file, the path inside it (hosts[1].tsc.freq_khz), the line,
// and what was expected. The JSON Schema for editors is generated from the same zod schema.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import { InputError } from '../core/errors.ts';
import { parseDuration } from '../core/units.ts';
import { parseCmdline } from '../guest/cmdline.ts';
import { kernelPreset } from '../vmm/kernels.ts';
import { machineProfile } from '../vmm/profiles.ts';

const duration = z
  .union([z.string(), z.number().nonnegative()])
  .describe('a duration: "500ms", "15s", "2h", "1d", "1y" or a number of seconds');

export const oscillatorSchema = z.strictObject({
  ppm: z.number().min(-1000).max(1000).default(0).describe('frequency error of the host crystal, parts per million (+ runs fast)'),
  wander_sigma_ppm: z
    .number()
    .nonnegative()
    .max(100)
    .default(0)
    .describe('random-walk step of the frequency error per wander_interval, ppm (0: none)'),
  wander_interval: duration.default('1s').describe('interval between random-walk steps'),
});

export const tscSchema = z.strictObject({
  freq_khz: z.number().int().positive().max(100_000_000).describe('nominal TSC frequency in kHz, e.g. 2596136'),
  constant: z.boolean().default(true).describe('constant_tsc: rate independent of P-states'),
  nonstop: z.boolean().default(true).describe('nonstop_tsc: counts in deep C-states'),
  invariant: z.boolean().default(true).describe('invariant TSC (CPUID 0x80000007 EDX bit 8)'),
});

export const hostSchema = z.strictObject({
  name: z.string().min(1),
  oscillator: oscillatorSchema.default({ ppm: 0, wander_sigma_ppm: 0, wander_interval: '1s' }),
  tsc: tscSchema,
  ntp: z.boolean().default(true).describe("whether the host's own clock is NTP-disciplined"),
  realtime_error: z.number().default(0).describe('host REALTIME minus true UTC at the start, seconds (only without host NTP)'),
});

export const pauseSchema = z.strictObject({
  at: duration.describe('when the VMM pauses the VM, from the start of the scenario'),
  duration: duration.describe('how long it stays paused'),
});

export const syncSchema = z.strictObject({
  method: z
    .enum(['none', 'agent', 'ntp'])
    .default('none')
    .describe(
      "what re-syncs the guest's wall clock: nothing, the management layer's guest-agent guest-set-time after each resume, or an NTP client in the guest",
    ),
  agent_delay: duration.default('1s').describe('agent: how long after a resume the management layer sends guest-set-time'),
  ntp_poll_exp: z.number().int().min(4).max(17).default(6).describe('ntp: log2 of the poll interval in seconds (6 = 64 s)'),
  ntp_step_threshold: duration
    .default('128ms')
    .describe('ntp: offsets beyond this are stepped (ADJ_SETOFFSET), smaller ones slewed by the kernel PLL'),
});

export const vmSchema = z.strictObject({
  name: z.string().min(1),
  host: z.string().min(1).describe('name of the host it runs on'),
  profile: z
    .string()
    .default('qemu-kvm')
    .describe('VMM machine profile: qemu-kvm, qemu-kvm-noinvtsc, firecracker, cloud-hypervisor, kvmtool, qemu-tcg'),
  kernel: z.string().default('distro').describe('guest kernel preset: distro, yocto-qemux86, debian12'),
  cmdline: z.string().default('').describe('guest kernel command line (clocksource=, no-kvmclock, tsc=…)'),
  vcpus: z.number().int().min(1).max(64).optional().describe("vCPU count (default: the profile's)"),
  boot_at: duration.default(0).describe('when the VMM creates the VM, from the start of the scenario'),
  pauses: z.array(pauseSchema).default([]).describe('VMM pause/resume events (each VMM handles kvmclock its own way)'),
  sync: syncSchema.default({ method: 'none', agent_delay: '1s', ntp_poll_exp: 6, ntp_step_threshold: '128ms' }),
  update_interval: duration
    .default('1s')
    .describe("how often the guest's timekeeper accumulates (the tick's update_wall_time); longer is faster to simulate"),
  kvmclock_at_init: duration
    .optional()
    .describe(
      'what kvm-clock read when the guest kernel set it up ("kvm-clock: using sched offset of N cycles", N ns): how long VMM, firmware and loader ran before kvmclock_init, e.g. "52991526ns" (default: the VMM profile\'s)',
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
  start: z.iso.datetime({ offset: true }).default('2026-01-01T00:00:00Z').describe('true UTC at the start of the scenario (ISO 8601)'),
  duration: duration.describe('simulated time to run'),
  sample_interval: duration.default('1min').describe('how often offsets are recorded in the timeline'),
  hosts: z.array(hostSchema).min(1),
  vms: z.array(vmSchema).min(1),
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

function describeIssue(issue: z.core.$ZodIssue, data: unknown): { path: PropertyKey[]; message: string } {
  const path = [...issue.path];
  if (valueAt(data, path) === undefined && issue.code !== 'unrecognized_keys') {
    const expected = issue.code === 'invalid_type' ? issue.expected : 'a value';
    return { path, message: `missing; expected ${expected}` };
  }
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    return { path: [...path, issue.keys[0]!], message: `unknown key ${keys}` };
  }
  return { path, message: issue.message.replace(/^Invalid input: /, '') };
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
  const checks: [PropertyKey[], string | number][] = [
    [['duration'], s.duration],
    [['sample_interval'], s.sample_interval],
    ...s.hosts.map((h, i): [PropertyKey[], string | number] => [
      ['hosts', i, 'oscillator', 'wander_interval'],
      h.oscillator.wander_interval,
    ]),
    ...s.vms.flatMap((v, i): [PropertyKey[], string | number][] => [
      [['vms', i, 'boot_at'], v.boot_at],
      [['vms', i, 'update_interval'], v.update_interval],
      ...(v.kvmclock_at_init !== undefined
        ? [[['vms', i, 'kvmclock_at_init'], v.kvmclock_at_init] as [PropertyKey[], string | number]]
        : []),
      [['vms', i, 'sync', 'agent_delay'], v.sync.agent_delay],
      [['vms', i, 'sync', 'ntp_step_threshold'], v.sync.ntp_step_threshold],
      ...v.pauses.flatMap((p, j): [PropertyKey[], string | number][] => [
        [['vms', i, 'pauses', j, 'at'], p.at],
        [['vms', i, 'pauses', j, 'duration'], p.duration],
      ]),
    ]),
  ];
  for (const [path, v] of checks) {
    try {
      parseDuration(v);
    } catch (e) {
      return { path, message: (e as Error).message };
    }
  }
  if (parseDuration(s.sample_interval) === 0n) return { path: ['sample_interval'], message: 'must be greater than 0' };
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
    if (parseDuration(vm.update_interval) === 0n) return { path: ['vms', i, 'update_interval'], message: 'must be greater than 0' };
    let end = parseDuration(vm.boot_at);
    for (const [j, p] of vm.pauses.entries()) {
      const at = parseDuration(p.at);
      if (at <= end)
        return {
          path: ['vms', i, 'pauses', j, 'at'],
          message: j === 0 ? 'a pause must come after boot_at' : 'pauses must be in order and must not overlap',
        };
      end = at + parseDuration(p.duration);
    }
  }
  for (const [i, h] of s.hosts.entries()) {
    if (h.oscillator.wander_sigma_ppm > 0 && parseDuration(h.oscillator.wander_interval) === 0n)
      return { path: ['hosts', i, 'oscillator', 'wander_interval'], message: 'must be greater than 0 when wander_sigma_ppm is set' };
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

/** Parse YAML text into a validated scenario. */
export function parseScenarioText(text: string, where = 'scenario'): Scenario {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new InputError(`not valid YAML: ${e.message.split('\n')[0]}`, line ? `${where}:${line}` : where);
  }
  const data: unknown = doc.toJS();
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new InputError('expected a YAML mapping (hosts:, vms:, duration: …) at the top level', where);
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
  return parseScenario(data, where, lineOf);
}

/** Read and validate a scenario file. */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
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
    throw new InputError(`cannot read scenario: ${why}`, file);
  }
  return parseScenarioText(text, file);
}
