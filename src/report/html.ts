// The run report: one self-contained HTML file (ECharts inlined, no network), with the scenario, a
// verdict per VM, the plots and the tables. Same results → byte-identical file.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { formatDuration } from '../core/index.ts';
import type { RunData } from './data.ts';
import { reportCharts } from './charts.ts';
import { sharingTable } from './sharing.ts';
import { verdicts } from './verdict.ts';

const require = createRequire(import.meta.url);

/** ECharts' minified browser build, to inline. */
export function echartsSource(): string {
  return readFileSync(require.resolve('echarts/dist/echarts.min.js'), 'utf8');
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON safe inside <script>: no "</script" or "<!--" can close or confuse the element. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c');
}

const off = (ns: string) => {
  const v = BigInt(ns);
  return (v >= 0n ? '+' : '') + formatDuration(v);
};
const dur = (s: number) => formatDuration(BigInt(Math.round(s * 1e9)));

function table(head: string[], rows: string[][]): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

export const REPORT_CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
.chart{width:100%;height:420px}.what{color:#555;margin:.2em 0}.verdict{margin:.2em 0;padding:.3em .6em;border-radius:4px}
.ok{background:#e3f4e6}.warn{background:#fff4d6}.bad{background:#fde2e0}pre{background:#f6f6f6;padding:.8em;overflow:auto}`;

export interface ReportOptions {
  /** The scenario's text (YAML), when the report is made right after the run. */
  scenarioText?: string;
}

export function reportHtml(res: RunData, opts: ReportOptions = {}): string {
  const s = res.summary;
  const charts = reportCharts(s, res.timeline);
  const v = verdicts(s);
  const parts: string[] = [];
  parts.push(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>timevisor: ${escapeHtml(s.scenario)}</title>`);
  parts.push(`<style>${REPORT_CSS}</style></head><body>`);
  parts.push(`<h1>timevisor report: ${escapeHtml(s.scenario)}</h1>`);
  parts.push(
    `<p>Seed ${s.seed}, ${escapeHtml(dur(s.duration_s))} of simulated time from ${escapeHtml(s.start)}, ${s.samples} samples, ${s.events_dispatched} events.</p>`,
  );
  parts.push('<h2>Verdicts</h2>');
  for (const x of v)
    parts.push(`<p class="verdict ${x.level}" data-vm="${escapeHtml(x.vm)}"><b>${escapeHtml(x.vm)}</b>: ${escapeHtml(x.text)}</p>`);
  for (const c of charts) {
    parts.push(`<h2>${escapeHtml(c.title)}</h2><p class="what">${escapeHtml(c.what)}</p><div class="chart" id="chart-${c.id}"></div>`);
  }
  parts.push('<h2>Guests</h2>');
  parts.push(
    table(
      ['vm', 'host', 'profile', 'kernel', 'clocksource', 'wall clock from', 'sync', 'at boot', 'at end', 'worst', 'drift now'],
      s.vms.map((x) => [
        x.name,
        x.host,
        x.profile,
        x.kernel,
        x.clocksource,
        x.wall_clock_source,
        x.sync,
        off(x.initial_offset_ns),
        off(x.final_offset_ns),
        formatDuration(BigInt(x.max_abs_offset_ns)),
        `${x.drift_ppm >= 0 ? '+' : ''}${x.drift_ppm.toFixed(3)} ppm`,
      ]),
    ),
  );
  const pauses = s.vms.flatMap((x) =>
    x.pauses.map((p) => [
      x.name,
      dur(p.at_s),
      dur(p.duration_s),
      p.monotonic_advance_ns === null ? 'still paused at the end' : formatDuration(BigInt(p.monotonic_advance_ns)),
      off(p.offset_before_ns),
      p.offset_after_resume_ns === null ? '—' : off(p.offset_after_resume_ns),
      p.offset_after_sync_ns === null ? '—' : off(p.offset_after_sync_ns),
    ]),
  );
  if (pauses.length) {
    parts.push('<h2>Pauses</h2>');
    parts.push(table(['vm', 'paused at', 'for', 'monotonic advanced', 'offset before', 'after resume', 'after sync'], pauses));
  }
  const sharing = sharingTable(s.vms);
  if (sharing) {
    parts.push('<h2>Host CPUs and timer interrupts</h2>');
    parts.push(`<p class="what">${sharing.legend.map(escapeHtml).join('<br>')}</p>`);
    parts.push(table(sharing.head, sharing.rows));
  }
  parts.push('<h2>Hosts</h2>');
  parts.push(
    table(
      ['host', 'TSC', 'crystal at start', 'at end', 'host clock', 'host offset at end'],
      s.hosts.map((h) => [
        h.name,
        `${(h.tsc_khz / 1000).toFixed(3)} MHz`,
        `${h.ppm_start.toFixed(3)} ppm`,
        `${h.ppm_end.toFixed(3)} ppm`,
        h.ntp ? 'NTP-synced' : 'free-running',
        off(h.final_realtime_offset_ns),
      ]),
    ),
  );
  if (opts.scenarioText !== undefined) parts.push(`<h2>Scenario</h2><pre>${escapeHtml(opts.scenarioText)}</pre>`);
  parts.push(`<script>${echartsSource()}</script>`);
  const options = Object.fromEntries(charts.map((c) => [c.id, c.option]));
  parts.push(`<script>
const options = ${scriptJson(options)};
for (const [id, option] of Object.entries(options)) {
  const chart = echarts.init(document.getElementById('chart-' + id));
  chart.setOption(option);
  addEventListener('resize', () => chart.resize());
}
</script></body></html>
`);
  return parts.join('\n');
}
