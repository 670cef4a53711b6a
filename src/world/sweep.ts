// Sweep files: many one-VM runs of a base scenario, either a parameter grid (the cartesian product of the
// listed values) or N VMs drawn from stated distributions. Validated like scenarios (zod, file:line
// errors, JSON Schema from the same schema). Each point is its own scenario, simulated on its own, so a
// point's result does not depend on how the sweep is split into shards or spread over workers; a drawn
// point's values come from a PRNG stream forked by its index (and by parameter name), never from a
// shared sequence.
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { InputError } from '../core/index.ts';
import { Prng } from '../core/index.ts';
import type { Ns } from '../core/index.ts';
import { parseDuration } from '../core/index.ts';
import { describeIssue, formatPath, parseScenario, parseYamlMapping, readInputFile, type Scenario, type YamlData } from './scenario.ts';

/** The parameters a sweep may vary, in the order points enumerate them (the last varies fastest). */
export const SWEEP_PARAMS = ['kernel', 'pause', 'pause_at', 'ppm', 'profile', 'sync', 'update_interval'] as const;
export type SweepParam = (typeof SWEEP_PARAMS)[number];

const DURATION_PARAMS: ReadonlySet<SweepParam> = new Set(['pause', 'pause_at', 'update_interval']);
const SYNC_METHODS = ['none', 'agent', 'ntp', 'ntpd', 'chrony'] as const;

/** A duration as written in the sweep file, parsed to exact ns. */
const duration = z
  .union([z.string(), z.number()])
  .transform((v, ctx): Ns => {
    try {
      return parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  })
  .describe('a duration: "500ms", "15s", "2h", "1d" or a number of seconds');

const text = z.string().min(1);
const syncMethod = z.enum(SYNC_METHODS);
const ppm = z.number().min(-1000).max(1000);

const list = <T extends z.ZodType>(t: T) => z.array(t).min(1);

/** A parameter's value in draw mode: one value, a list (uniform choice), or a distribution. */
const choice = <T extends z.ZodType>(t: T) =>
  z.strictObject({
    choice: list(t).describe('one of these values'),
    weights: list(z.number().positive()).optional().describe('relative weights of the choices (default: equal)'),
  });
const range = <T extends z.ZodType>(t: T) => z.tuple([t, t]);

const stringDraw = <T extends z.ZodType>(t: T) => z.union([t, list(t), choice(t)]);
const durationDraw = z.union([
  duration,
  list(duration),
  choice(duration),
  z.strictObject({ uniform: range(duration).describe('uniform over [lo, hi], whole ns') }),
  z.strictObject({ log_uniform: range(duration).describe('log-uniform over [lo, hi] (lo > 0), rounded to whole ns') }),
]);
const ppmDraw = z.union([
  ppm,
  list(ppm),
  choice(ppm),
  z.strictObject({ uniform: range(ppm).describe('uniform over [lo, hi)') }),
  z.strictObject({ normal: z.strictObject({ mean: ppm, sigma: z.number().nonnegative().max(1000) }) }),
]);

const gridSchema = z
  .strictObject({
    kernel: list(text).optional().describe('guest kernel presets'),
    pause: list(duration).optional().describe('pause lengths: the VM gets one pause of each length (replacing its pauses)'),
    pause_at: list(duration).optional().describe("when the pause starts (default: the base VM's first pause, or mid-run)"),
    ppm: list(ppm).optional().describe("the host crystal's frequency error, ppm"),
    profile: list(text).optional().describe('VMM machine profiles'),
    sync: list(syncMethod).optional().describe('sync methods'),
    update_interval: list(duration).optional().describe("the guest timekeeper's update interval"),
  })
  .describe('a parameter grid: one point per combination of the listed values');

const drawSchema = z
  .strictObject({
    count: z.number().int().min(1).max(10_000_000).describe('how many VMs to draw'),
    kernel: stringDraw(text).optional(),
    pause: durationDraw.optional(),
    pause_at: durationDraw.optional(),
    ppm: ppmDraw.optional(),
    profile: stringDraw(text).optional(),
    sync: stringDraw(syncMethod).optional(),
    update_interval: durationDraw.optional(),
  })
  .describe('N VMs, each parameter drawn from its distribution by a PRNG stream of its own (seeded by seed, VM index and parameter)');

export const sweepSchema = z
  .strictObject({
    name: z.string().min(1).default('sweep'),
    description: z.string().optional(),
    seed: z.number().int().nonnegative().max(0xffff_ffff).default(1).describe("seed of the draws and of drawn VMs' scenarios"),
    scenario: z.string().min(1).optional().describe('the base scenario file (relative to the sweep file)'),
    base: z.record(z.string(), z.unknown()).optional().describe('the base scenario, inline'),
    vm: z.string().min(1).optional().describe('the base scenario VM that is varied (default: its first); the others are left out'),
    resync_within: duration.prefault('1ms').describe('a sync counts as having re-synced the guest once |offset| is at most this'),
    grid: gridSchema.optional(),
    draw: drawSchema.optional(),
  })
  .describe('timevisor sweep: many one-VM runs of a base scenario');

export type SweepInput = z.input<typeof sweepSchema>;
type SweepData = z.output<typeof sweepSchema>;

/** JSON Schema (draft 2020-12) for sweep files, for editors. */
export function sweepJsonSchema(): Record<string, unknown> {
  const js = z.toJSONSchema(sweepSchema, { io: 'input' }) as Record<string, unknown>;
  return { $id: 'https://timevisor.dev/schema/sweep.schema.json', title: 'timevisor sweep', ...js };
}

/** One parameter's value at a point: a string, exact ns, or ppm. */
export type ParamValue = string | Ns | number;

export interface SweepPoint {
  index: number;
  /** The seed of this point's scenario. */
  seed: number;
  params: Partial<Record<SweepParam, ParamValue>>;
}

export interface Sweep {
  name: string;
  mode: 'grid' | 'draw';
  seed: number;
  /** The parameters varied, in SWEEP_PARAMS order (the table's parameter columns). */
  params: SweepParam[];
  resyncWithinNs: Ns;
  /** Every point of the sweep (a shard runs a slice of them). */
  points: SweepPoint[];
  /** Identifies the sweep: base scenario, points and settings (shards of different sweeps do not merge). */
  id: string;
  /** The scenario of one point, validated. */
  scenarioOf(point: SweepPoint): Scenario;
}

/** Uniform choice, or weighted by cumulative weights. */
function pick<T>(values: readonly T[], weights: readonly number[] | undefined, rng: Prng): T {
  if (!weights) return values[rng.int(values.length)]!;
  const total = weights.reduce((a, b) => a + b, 0);
  const u = rng.float() * total;
  let acc = 0;
  for (let i = 0; i < values.length; i++) {
    acc += weights[i]!;
    if (u < acc) return values[i]!;
  }
  return values[values.length - 1]!;
}

type Dist = unknown;

/** Draw one value of `param` from its distribution. */
function drawValue(param: SweepParam, dist: Dist, rng: Prng): ParamValue {
  if (Array.isArray(dist)) return pick(dist as ParamValue[], undefined, rng);
  if (dist === null || typeof dist !== 'object') return dist as ParamValue;
  const d = dist as Record<string, unknown>;
  if ('choice' in d) return pick(d.choice as ParamValue[], d.weights as number[] | undefined, rng);
  if ('uniform' in d) {
    const [lo, hi] = d.uniform as [ParamValue, ParamValue];
    if (typeof lo === 'bigint') {
      const span = (hi as bigint) - lo;
      const k = BigInt(Math.floor(rng.float() * Number(span + 1n)));
      return lo + (k > span ? span : k);
    }
    return rng.uniform(lo as number, hi as number);
  }
  if ('log_uniform' in d) {
    const [lo, hi] = d.log_uniform as [bigint, bigint];
    const a = Math.log(Number(lo));
    const v = BigInt(Math.round(Math.exp(a + (Math.log(Number(hi)) - a) * rng.float())));
    return v < lo ? lo : v > hi ? hi : v;
  }
  const n = d.normal as { mean: number; sigma: number };
  if (param !== 'ppm') throw new Error(`normal distribution for ${param}`);
  return rng.normal(n.mean, n.sigma);
}

/** Where a problem in the sweep file is: file:line and its path. */
function sweepError(message: string, path: PropertyKey[], where: string, lineOf: YamlData['lineOf']): InputError {
  const line = lineOf(path);
  return new InputError(message, line === null ? where : `${where}:${line}`, formatPath(path));
}

/** Distribution checks zod cannot express: ordered ranges, weights matching choices. */
function checkDraws(draw: Record<string, unknown>): { path: PropertyKey[]; message: string } | null {
  for (const p of SWEEP_PARAMS) {
    const d = draw[p] as Record<string, unknown> | undefined;
    if (d === undefined || d === null || typeof d !== 'object' || Array.isArray(d)) continue;
    if ('choice' in d && d.weights !== undefined && (d.weights as unknown[]).length !== (d.choice as unknown[]).length)
      return { path: ['draw', p, 'weights'], message: `needs one weight per choice (${(d.choice as unknown[]).length})` };
    for (const k of ['uniform', 'log_uniform'] as const) {
      if (!(k in d)) continue;
      const [lo, hi] = d[k] as [number | bigint, number | bigint];
      if (lo > hi) return { path: ['draw', p, k], message: 'expected [lo, hi] with lo ≤ hi' };
      if (k === 'log_uniform' && lo <= 0n) return { path: ['draw', p, k, 0], message: 'must be greater than 0 (log-uniform)' };
    }
    if (DURATION_PARAMS.has(p) === false && p !== 'ppm' && ('uniform' in d || 'log_uniform' in d))
      return { path: ['draw', p], message: 'expected a value, a list or { choice: [...] }' };
  }
  return null;
}

/** The value as the scenario file would write it. */
function scenarioValue(param: SweepParam, v: ParamValue): string | number {
  return DURATION_PARAMS.has(param) ? `${v as bigint}ns` : (v as string | number);
}

/** A short label of a point's values, for error messages: "profile=kvmtool, pause=10000000000ns". */
export function pointLabel(point: SweepPoint): string {
  return Object.entries(point.params)
    .map(([k, v]) => `${k}=${typeof v === 'bigint' ? `${v}ns` : v}`)
    .join(', ');
}

function canonical(v: unknown): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  return v;
}

interface Base {
  raw: Record<string, unknown>;
  parsed: Scenario;
  vmIndex: number;
}

function loadBase(s: SweepData, where: string, lineOf: YamlData['lineOf']): Base {
  if ((s.scenario === undefined) === (s.base === undefined))
    throw sweepError('expected exactly one of scenario: (a file) and base: (inline)', [], where, lineOf);
  let raw: Record<string, unknown>;
  let parsed: Scenario;
  if (s.scenario !== undefined) {
    const file = resolve(dirname(where), s.scenario);
    const y = parseYamlMapping(readInputFile(file, 'scenario'), file, 'hosts:, vms:, duration: …');
    raw = y.data;
    parsed = parseScenario(raw, file, y.lineOf);
  } else {
    raw = s.base!;
    try {
      parsed = parseScenario(raw, where, (p) => lineOf(['base', ...p]));
    } catch (e) {
      // the inline scenario's paths are inside base:
      if (e instanceof InputError && e.path !== undefined)
        throw new InputError(e.message, e.where, e.path === '(top level)' ? 'base' : `base.${e.path}`);
      throw e;
    }
  }
  const vmIndex = s.vm === undefined ? 0 : parsed.vms.findIndex((v) => v.name === s.vm);
  if (vmIndex < 0)
    throw sweepError(
      `no VM named "${s.vm}" in the base scenario (vms: ${parsed.vms.map((v) => v.name).join(', ')})`,
      ['vm'],
      where,
      lineOf,
    );
  return { raw, parsed, vmIndex };
}

/** The base scenario with one VM, the point's values applied, and the hosts it uses. */
function pointInput(base: Base, point: SweepPoint): Record<string, unknown> {
  const raw = structuredClone(base.raw);
  const vm = { ...(raw.vms as Record<string, unknown>[])[base.vmIndex]! };
  const baseVm = base.parsed.vms[base.vmIndex]!;
  const p = point.params;
  if (p.profile !== undefined) vm.profile = p.profile;
  if (p.kernel !== undefined) vm.kernel = p.kernel;
  if (p.sync !== undefined) vm.sync = { ...((vm.sync as object | undefined) ?? {}), method: p.sync };
  if (p.update_interval !== undefined) vm.update_interval = scenarioValue('update_interval', p.update_interval);
  if (p.pause !== undefined || p.pause_at !== undefined) {
    const first = baseVm.pauses[0];
    const at = p.pause_at ?? first?.at ?? base.parsed.duration / 2n;
    const len = p.pause ?? first?.duration;
    vm.pauses = [{ at: scenarioValue('pause_at', at), duration: scenarioValue('pause', len!) }];
  }
  const hostNames = new Set<string>([
    String(vm.host),
    ...baseVm.snapshots.flatMap((sn) => (sn.restore_on !== undefined ? [sn.restore_on] : [])),
    ...baseVm.migrations.map((m) => m.to),
    ...base.parsed.ntp_servers.flatMap((n) => (n.host !== undefined ? [n.host] : [])),
  ]);
  const hosts = (raw.hosts as Record<string, unknown>[]).filter((h) => hostNames.has(String(h.name)));
  if (p.ppm !== undefined) {
    const i = hosts.findIndex((h) => h.name === vm.host);
    hosts[i] = { ...hosts[i], oscillator: { ...((hosts[i]!.oscillator as object | undefined) ?? {}), ppm: p.ppm } };
  }
  return { ...raw, seed: point.seed, hosts, vms: [vm] };
}

/** Every point: the grid's combinations, or `count` drawn VMs. */
function expandPoints(s: SweepData, params: SweepParam[], baseSeed: number): SweepPoint[] {
  if (s.grid) {
    const grid = s.grid as Record<SweepParam, ParamValue[] | undefined>;
    let points: SweepPoint['params'][] = [{}];
    for (const p of params) points = points.flatMap((pt) => grid[p]!.map((v) => ({ ...pt, [p]: v })));
    // grid points share the base scenario's seed: they differ only by the values varied
    return points.map((params, index) => ({ index, seed: baseSeed, params }));
  }
  const draw = s.draw as Record<string, Dist> & { count: number };
  const root = new Prng(s.seed);
  const points: SweepPoint[] = [];
  for (let index = 0; index < draw.count; index++) {
    const rng = root.fork(`vm/${index}`);
    const values: SweepPoint['params'] = {};
    for (const p of params) values[p] = drawValue(p, draw[p], rng.fork(p));
    points.push({ index, seed: rng.fork('seed').nextU32(), params: values });
  }
  return points;
}

/** Validate a parsed sweep file's data and expand it. `where` is the file (base scenario files are relative to it). */
export function parseSweep(data: unknown, where = 'sweep', lineOf: YamlData['lineOf'] = () => null): Sweep {
  const r = sweepSchema.safeParse(data);
  if (!r.success) {
    const { path, message } = describeIssue(r.error.issues[0]!, data);
    throw sweepError(message, path, where, lineOf);
  }
  const s = r.data;
  if ((s.grid === undefined) === (s.draw === undefined)) throw sweepError('expected exactly one of grid: and draw:', [], where, lineOf);
  const section = (s.grid ?? s.draw) as Record<string, unknown>;
  if (s.draw) {
    const problem = checkDraws(s.draw as Record<string, unknown>);
    if (problem) throw sweepError(problem.message, problem.path, where, lineOf);
  }
  const params = SWEEP_PARAMS.filter((p) => section[p] !== undefined);
  const base = loadBase(s, where, lineOf);
  const baseVm = base.parsed.vms[base.vmIndex]!;
  if (params.includes('pause_at') && !params.includes('pause') && baseVm.pauses.length === 0)
    throw sweepError(
      `needs pause: too (the base VM "${baseVm.name}" has no pause to move)`,
      [s.grid ? 'grid' : 'draw', 'pause_at'],
      where,
      lineOf,
    );
  const points = expandPoints(s, params, base.parsed.seed);
  const id = createHash('sha256')
    .update(JSON.stringify(canonical({ base: base.raw, vm: base.vmIndex, points, resync: s.resync_within, name: s.name })))
    .digest('hex')
    .slice(0, 16);
  return {
    name: s.name,
    mode: s.grid ? 'grid' : 'draw',
    seed: s.seed,
    params,
    resyncWithinNs: s.resync_within,
    points,
    id,
    scenarioOf(point) {
      try {
        return parseScenario(pointInput(base, point), 'scenario');
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        throw new InputError(
          `point ${point.index} (${pointLabel(point)}) makes an invalid scenario: ${e.path ? `${e.path}: ` : ''}${e.message}`,
          where,
        );
      }
    },
  };
}

/** Parse sweep YAML text. */
export function parseSweepText(textIn: string, where = 'sweep'): Sweep {
  const { data, lineOf } = parseYamlMapping(textIn, where, 'name:, scenario: or base:, grid: or draw: …');
  return parseSweep(data, where, lineOf);
}

/** Read, validate and expand a sweep file. */
export function loadSweep(file: string): Sweep {
  return parseSweepText(readInputFile(file, 'sweep'), file);
}

/** Shard `i` of `n` (0-based): a contiguous slice of the points, [first, end). */
export function shardRange(points: number, i: number, n: number): { first: number; end: number } {
  return { first: Math.floor((i * points) / n), end: Math.floor(((i + 1) * points) / n) };
}

/** "--shard i/n" → {index, count}; 0 ≤ i < n. */
export function parseShard(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || count > 1_000_000 || index >= count)
    throw new InputError(`expected i/n with 0 ≤ i < n (e.g. 0/4), got "${v}"`, '--shard');
  return { index, count };
}
