// ECharts options for a run's plots, shared by the HTML report (drawn in the browser), the PNG (drawn
// server-side to SVG) and the web UI. Options are plain JSON: no functions, so they can be inlined.
import type { SimulationSummary, TimelineRow } from '../world/index.ts';

export interface Unit {
  name: string;
  ns: number;
}

const UNITS: Unit[] = [
  { name: 's', ns: 1e9 },
  { name: 'ms', ns: 1e6 },
  { name: 'µs', ns: 1e3 },
  { name: 'ns', ns: 1 },
];

/** The largest unit in which the biggest value is still ≥ 10 (offsets span ns to days). */
export function unitFor(maxAbsNs: number): Unit {
  return UNITS.find((u) => maxAbsNs >= 10 * u.ns) ?? UNITS[UNITS.length - 1]!;
}

export function timeUnitFor(durationS: number): { name: string; s: number } {
  if (durationS >= 2 * 86400) return { name: 'days', s: 86400 };
  if (durationS >= 2 * 3600) return { name: 'hours', s: 3600 };
  if (durationS >= 120) return { name: 'minutes', s: 60 };
  return { name: 'seconds', s: 1 };
}

const PALETTE = ['#4269d0', '#ff725c', '#3ca951', '#efb118', '#a463f2', '#97bbf5', '#9c6b4e', '#6cc5b0', '#ff8ab7', '#9498a0'];

export interface ChartSpec {
  id: string;
  title: string;
  what: string;
  option: Record<string, unknown>;
}

type Column = 'guestOffsetNs' | 'monotonicLagNs' | 'hostOffsetNs';

function perVmSeries(s: SimulationSummary, rows: readonly TimelineRow[], col: Column, names: readonly string[]) {
  const tu = timeUnitFor(s.duration_s);
  let max = 0;
  for (const r of rows) max = Math.max(max, Math.abs(Number(r[col])));
  const unit = unitFor(max);
  const byVm = new Map<string, [number, number][]>(names.map((n) => [n, []]));
  for (const r of rows) byVm.get(r.vm)?.push([Number(r.t) / 1e9 / tu.s, Number(r[col]) / unit.ns]);
  return { tu, unit, byVm };
}

function baseOption(title: string, xName: string, yName: string): Record<string, unknown> {
  return {
    animation: false,
    color: PALETTE,
    title: { text: title, left: 'center', top: 4, textStyle: { fontSize: 14 } },
    tooltip: { trigger: 'axis' },
    legend: { top: 34, type: 'scroll' },
    grid: { left: 70, right: 30, top: 80, bottom: 64 },
    xAxis: { type: 'value', name: xName, nameLocation: 'middle', nameGap: 28, min: 0, max: 'dataMax' },
    yAxis: { type: 'value', name: yName, nameLocation: 'middle', nameGap: 52, scale: true },
    dataZoom: [{ type: 'inside' }, { type: 'slider', height: 16, bottom: 6 }],
  };
}

/** Points with an empty value ('-', ECharts' gap) inserted at each x in `gaps`. */
function withGaps(points: [number, number][], gaps: readonly number[]): [number, number | '-'][] {
  const out: [number, number | '-'][] = [];
  const g = [...gaps].sort((a, b) => a - b);
  let i = 0;
  for (const p of points) {
    while (i < g.length && g[i]! < p[0]) out.push([g[i++]!, '-']);
    out.push(p);
  }
  return out;
}

/** A VM's line broken in the middle of each of its pauses (the guest cannot be read then). */
function brokenAtPauses(
  points: Parameters<typeof withGaps>[0],
  v: SimulationSummary['vms'][number],
  unitS: number,
): ReturnType<typeof withGaps> {
  return withGaps(
    points,
    v.pauses.map((p) => (p.at_s + p.duration_s / 2) / unitS),
  );
}

/** Guest REALTIME minus true time per VM, pauses shaded and resumes marked on each VM's line. */
export function offsetChart(s: SimulationSummary, rows: readonly TimelineRow[]): ChartSpec {
  const names = s.vms.map((v) => v.name);
  const { tu, unit, byVm } = perVmSeries(s, rows, 'guestOffsetNs', names);
  // one label per distinct resume time, on the first VM resumed then
  const labelled = new Set<number>();
  const series = s.vms.map((v) => ({
    name: v.name,
    type: 'line',
    showSymbol: false,
    // the guest cannot be read while paused: break the line there instead of drawing a slope across
    data: brokenAtPauses(byVm.get(v.name) ?? [], v, tu.s),
    markArea: {
      silent: true,
      itemStyle: { color: 'rgba(128,128,128,0.15)' },
      data: v.pauses.map((p) => [{ xAxis: p.at_s / tu.s }, { xAxis: (p.at_s + p.duration_s) / tu.s }]),
    },
    markLine: {
      silent: true,
      symbol: 'none',
      lineStyle: { type: 'dashed', width: 1 },
      data: v.pauses.map((p) => {
        const x = (p.at_s + p.duration_s) / tu.s;
        const first = !labelled.has(x);
        labelled.add(x);
        return { xAxis: x, name: 'resumed', label: { show: first, formatter: '{b}', fontSize: 10 } };
      }),
    },
  }));
  return {
    id: 'offset',
    title: 'guest CLOCK_REALTIME minus true time',
    what: 'Each guest’s wall-clock error over the run; shaded: the VM was paused; dashed: it resumed.',
    option: { ...baseOption('guest CLOCK_REALTIME − true time', `time since start (${tu.name})`, `offset (${unit.name})`), series },
  };
}

export function monotonicChart(s: SimulationSummary, rows: readonly TimelineRow[]): ChartSpec {
  const names = s.vms.map((v) => v.name);
  const { tu, unit, byVm } = perVmSeries(s, rows, 'monotonicLagNs', names);
  return {
    id: 'monotonic',
    title: 'guest CLOCK_MONOTONIC minus time since the VM was created',
    what: 'How much elapsed time each guest has not seen: a kvm-clock guest loses every pause, a tsc guest none.',
    option: {
      ...baseOption('guest CLOCK_MONOTONIC − elapsed true time', `time since start (${tu.name})`, `lag (${unit.name})`),
      series: s.vms.map((v) => ({
        name: v.name,
        type: 'line',
        showSymbol: false,
        data: brokenAtPauses(byVm.get(v.name) ?? [], v, tu.s),
      })),
    },
  };
}

export function hostChart(s: SimulationSummary, rows: readonly TimelineRow[]): ChartSpec {
  // one line per host, taken from the first VM on it
  const firstVm = new Map<string, string>();
  for (const v of s.vms) if (!firstVm.has(v.host)) firstVm.set(v.host, v.name);
  const names = [...firstVm.values()];
  const { tu, unit, byVm } = perVmSeries(
    s,
    rows.filter((r) => names.includes(r.vm)),
    'hostOffsetNs',
    names,
  );
  return {
    id: 'host',
    title: 'host CLOCK_REALTIME minus true time',
    what: 'The hosts’ own wall clocks (what guest-set-time and the RTC hand to the guests).',
    option: {
      ...baseOption('host CLOCK_REALTIME − true time', `time since start (${tu.name})`, `offset (${unit.name})`),
      series: [...firstVm].map(([host, vm]) => ({ name: host, type: 'line', showSymbol: false, data: byVm.get(vm) ?? [] })),
    },
  };
}

/** Beyond the kernel's MAXFREQ (500 ppm, kernel/time/ntp.c) no clock runs: such an interval holds a step. */
const MAX_RATE_PPM = 500;

/**
 * Each guest clock's rate error between consecutive samples, ppm: (Δoffset / Δt)·10⁶. Intervals across a
 * step (sync, pause) are left out, so the line shows drift and how NTP disciplines it.
 */
export function rateChart(s: SimulationSummary, rows: readonly TimelineRow[]): ChartSpec {
  const tu = timeUnitFor(s.duration_s);
  const last = new Map<string, TimelineRow>();
  const seen = new Set<string>();
  const byVm = new Map<string, [number, number | '-'][]>(s.vms.map((v) => [v.name, []]));
  for (const r of rows) {
    const prev = last.get(r.vm);
    last.set(r.vm, r);
    // the first interval holds rtc_hctosys resetting the wall clock read at kernel entry: a step
    if (!prev || r.t <= prev.t || !seen.has(r.vm)) {
      if (prev) seen.add(r.vm);
      continue;
    }
    const ppm = (Number(r.guestOffsetNs - prev.guestOffsetNs) / Number(r.t - prev.t)) * 1e6;
    byVm.get(r.vm)?.push([Number(r.t) / 1e9 / tu.s, Math.abs(ppm) > MAX_RATE_PPM ? '-' : ppm]);
  }
  return {
    id: 'rate',
    title: 'guest clock rate error',
    what: 'How fast each guest clock gains (+) or loses against true time between samples; steps (pauses, syncs) are left out.',
    option: {
      ...baseOption('guest clock rate − true rate', `time since start (${tu.name})`, 'rate error (ppm)'),
      series: s.vms.map((v) => ({ name: v.name, type: 'line', showSymbol: false, data: byVm.get(v.name) ?? [] })),
    },
  };
}

export function reportCharts(s: SimulationSummary, rows: readonly TimelineRow[]): ChartSpec[] {
  return [offsetChart(s, rows), rateChart(s, rows), monotonicChart(s, rows), hostChart(s, rows)];
}
