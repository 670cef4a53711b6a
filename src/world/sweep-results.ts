// A sweep's results table and its summary. One row per VM and lifecycle event (pause, restore, migration,
// host clock step), or one row for a VM without any, with what the guest's wall clock did across the
// event and how long its sync took to put it right. Rows are kept as the CSV's cells (strings), so a table
// read back from shard CSVs is the same data a single run holds, and merged files come out byte for byte
// the same; summary.json is computed from the rows alone.
import { parquetWriteBuffer } from 'hyparquet-writer';
import { InputError } from '../core/index.ts';
import type { SimulationSummary } from './summary.ts';
import { SWEEP_PARAMS, type Sweep, type SweepParam, type SweepPoint } from './sweep.ts';

type ColumnType = 'INT32' | 'INT64' | 'DOUBLE' | 'STRING';

/** Events whose aftermath a row describes (a snapshot's save is told by its restore). */
const ROW_EVENTS: ReadonlySet<string> = new Set(['pause', 'restore', 'migration', 'host_step']);

const RESULT_COLUMNS: [string, ColumnType][] = [
  ['clocksource', 'STRING'],
  ['final_offset_ns', 'INT64'],
  ['max_abs_offset_ns', 'INT64'],
  ['event', 'INT32'],
  ['event_kind', 'STRING'],
  ['event_at_s', 'DOUBLE'],
  ['offset_before_ns', 'INT64'],
  ['offset_after_ns', 'INT64'],
  ['sync_at_s', 'DOUBLE'],
  ['offset_after_sync_ns', 'INT64'],
  ['resync_s', 'DOUBLE'],
];

function paramColumn(p: SweepParam): [string, ColumnType] {
  if (p === 'pause' || p === 'pause_at' || p === 'update_interval') return [`${p}_ns`, 'INT64'];
  return [p, p === 'ppm' ? 'DOUBLE' : 'STRING'];
}

/** The table's columns for a sweep varying `params`. */
export function sweepColumns(params: readonly SweepParam[]): [string, ColumnType][] {
  return [['index', 'INT32'], ['seed', 'INT64'], ...SWEEP_PARAMS.filter((p) => params.includes(p)).map(paramColumn), ...RESULT_COLUMNS];
}

/** A row: one cell per column, '' for none. */
export type Row = string[];

/** What a point's run gave: its rows' result cells (RESULT_COLUMNS), computed on the worker from the summary. */
export type PointOutcome = string[][];

/** s → whole µs, as a string without float noise. */
const seconds = (s: number): string => String(Math.round(s * 1e6) / 1e6);

/**
 * The result cells of one VM's run. Time to resync: from the end of the event (a pause's resume) to the
 * first sync after it that leaves |offset| ≤ resyncWithinNs, before the next event; '' if none did.
 */
export function pointOutcome(summary: SimulationSummary, resyncWithinNs: bigint): PointOutcome {
  const vm = summary.vms[0]!;
  const head = [vm.final_clocksource, vm.final_offset_ns, vm.max_abs_offset_ns];
  const rows: string[][] = [];
  let pauseNo = 0;
  const events = vm.events;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.kind === 'pause') pauseNo++;
    if (!ROW_EVENTS.has(e.kind) || e.offset_after_ns === null) continue;
    const endS = e.kind === 'pause' ? e.at_s + vm.pauses[pauseNo - 1]!.duration_s : e.at_s;
    let firstSync: (typeof events)[number] | null = null;
    let resync = '';
    for (let j = i + 1; j < events.length && events[j]!.kind === 'sync'; j++) {
      const s = events[j]!;
      firstSync ??= s;
      const off = BigInt(s.offset_after_ns!);
      if ((off < 0n ? -off : off) <= resyncWithinNs) {
        resync = seconds(s.at_s - endS);
        break;
      }
    }
    rows.push([
      ...head,
      String(rows.length),
      e.kind,
      seconds(e.at_s),
      e.offset_before_ns,
      e.offset_after_ns,
      firstSync ? seconds(firstSync.at_s) : '',
      firstSync ? firstSync.offset_after_ns! : '',
      resync,
    ]);
  }
  if (rows.length === 0) rows.push([...head, '', '', '', '', '', '', '', '']);
  return rows;
}

/** The point's parameter cells followed by each outcome row. */
export function pointRows(sweep: Pick<Sweep, 'params'>, point: SweepPoint, outcome: PointOutcome): Row[] {
  const cells = [
    String(point.index),
    String(point.seed),
    ...SWEEP_PARAMS.filter((p) => sweep.params.includes(p)).map((p) => String(point.params[p])),
  ];
  return outcome.map((o) => [...cells, ...o]);
}

// ---- CSV (RFC 4180: cells with a comma, quote or line break are quoted, quotes doubled) ----

function csvCell(c: string): string {
  return /[",\r\n]/.test(c) ? `"${c.replaceAll('"', '""')}"` : c;
}

export function toCsv(header: readonly string[], rows: readonly Row[]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/** Parse CSV this module wrote; `where` names the file for errors. */
export function parseCsv(textIn: string, where: string): { header: string[]; rows: Row[] } {
  const out: Row[] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < textIn.length; i++) {
    const ch = textIn[i]!;
    if (quoted) {
      if (ch === '"' && textIn[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"' && cell === '') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n') {
      row.push(cell);
      out.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  if (quoted || cell !== '' || row.length > 0) throw new InputError('not a complete CSV file (ends inside a row)', where);
  const [header, ...rows] = out;
  if (!header) throw new InputError('empty CSV file, expected a header row', where);
  for (const [i, r] of rows.entries())
    if (r.length !== header.length) throw new InputError(`row ${i + 2} has ${r.length} cells, the header ${header.length}`, where);
  return { header, rows };
}

// ---- Parquet ----

/** The table as Parquet (typed columns, '' cells as nulls). */
export function toParquet(columns: readonly [string, ColumnType][], rows: readonly Row[]): Uint8Array {
  const columnData = columns.map(([name, type], c) => {
    const cells = rows.map((r) => r[c]!);
    const data =
      type === 'STRING'
        ? cells
        : type === 'INT64'
          ? cells.map((x) => (x === '' ? null : BigInt(x)))
          : cells.map((x) => (x === '' ? null : Number(x)));
    return { name, data, type };
  });
  return new Uint8Array(parquetWriteBuffer({ columnData, createdBy: 'timevisor' }));
}

// ---- summary.json ----

/** Nearest-rank percentile of sorted values: the smallest value with at least p % of them at or below it. */
function rank<T>(sorted: readonly T[], p: number): T {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface NsStats {
  count: number;
  p50_ns: string;
  p99_ns: string;
  max_ns: string;
}

function nsStats(values: bigint[]): NsStats | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { count: s.length, p50_ns: String(rank(s, 50)), p99_ns: String(rank(s, 99)), max_ns: String(s[s.length - 1]) };
}

const abs = (x: string): bigint => {
  const v = BigInt(x);
  return v < 0n ? -v : v;
};

export interface SweepMeta {
  sweep: string;
  sweep_id: string;
  mode: 'grid' | 'draw';
  seed: number;
  points: number;
  resync_within_ns: string;
}

export interface SweepSummary extends SweepMeta {
  /** Only in a shard's output: which slice of the points it holds. */
  shard?: { index: number; count: number; first_point: number; end_point: number };
  rows: number;
  vms: number;
  /** Per VM: |offset| at the end and its largest |offset| over the run. */
  final_abs_offset: NsStats | null;
  max_abs_offset: NsStats | null;
  /** Per event kind: |offset| right after the event, after its first sync, and the time to resync. */
  events: Record<
    string,
    {
      count: number;
      offset_after_abs: NsStats | null;
      offset_after_sync_abs: NsStats | null;
      resync_s: { resynced: number; never: number; p50: number; p99: number; max: number } | null;
    }
  >;
}

export function sweepMeta(sweep: Sweep): SweepMeta {
  return {
    sweep: sweep.name,
    sweep_id: sweep.id,
    mode: sweep.mode,
    seed: sweep.seed,
    points: sweep.points.length,
    resync_within_ns: String(sweep.resyncWithinNs),
  };
}

/** The summary of a table (all of it, or a shard's slice). */
export function summarize(meta: SweepMeta, header: readonly string[], rows: readonly Row[], shard?: SweepSummary['shard']): SweepSummary {
  const col = (name: string) => header.indexOf(name);
  const [iIndex, iFinal, iMax, iKind, iAfter, iSync, iResync] = [
    'index',
    'final_offset_ns',
    'max_abs_offset_ns',
    'event_kind',
    'offset_after_ns',
    'offset_after_sync_ns',
    'resync_s',
  ].map(col) as number[];
  const perVm = new Map<string, Row>();
  for (const r of rows) if (!perVm.has(r[iIndex!]!)) perVm.set(r[iIndex!]!, r);
  const kinds = [...new Set(rows.map((r) => r[iKind!]!).filter((k) => k !== ''))].sort();
  const events: SweepSummary['events'] = {};
  for (const k of kinds) {
    const of = rows.filter((r) => r[iKind!] === k);
    const resync = of
      .map((r) => r[iResync!]!)
      .filter((x) => x !== '')
      .map(Number)
      .sort((a, b) => a - b);
    events[k] = {
      count: of.length,
      offset_after_abs: nsStats(of.map((r) => abs(r[iAfter!]!))),
      offset_after_sync_abs: nsStats(of.filter((r) => r[iSync!] !== '').map((r) => abs(r[iSync!]!))),
      resync_s:
        resync.length === 0
          ? null
          : {
              resynced: resync.length,
              never: of.length - resync.length,
              p50: rank(resync, 50),
              p99: rank(resync, 99),
              max: resync[resync.length - 1]!,
            },
    };
  }
  const vms = [...perVm.values()];
  return {
    ...meta,
    ...(shard ? { shard } : {}),
    rows: rows.length,
    vms: vms.length,
    final_abs_offset: nsStats(vms.map((r) => abs(r[iFinal!]!))),
    max_abs_offset: nsStats(vms.map((r) => abs(r[iMax!]!))),
    events,
  };
}

/** The three result files of a table, as their bytes/text. */
export function sweepFiles(
  meta: SweepMeta,
  columns: readonly [string, ColumnType][],
  rows: readonly Row[],
  shard?: SweepSummary['shard'],
): { 'results.csv': string; 'results.parquet': Uint8Array; 'summary.json': string } {
  const header = columns.map(([n]) => n);
  return {
    'results.csv': toCsv(header, rows),
    'results.parquet': toParquet(columns, rows),
    'summary.json': JSON.stringify(summarize(meta, header, rows, shard), null, 2) + '\n',
  };
}

/** Column types from a header read back (for merge): the same types a run gives its columns. */
export function columnsOf(header: readonly string[], where: string): [string, ColumnType][] {
  const known = new Map<string, ColumnType>([['index', 'INT32'], ['seed', 'INT64'], ...SWEEP_PARAMS.map(paramColumn), ...RESULT_COLUMNS]);
  return header.map((h) => {
    const t = known.get(h);
    if (!t) throw new InputError(`unknown column "${h}" (not a timevisor sweep table)`, where);
    return [h, t];
  });
}
