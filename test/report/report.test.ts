import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { offsetPng, parseTimelineCsv, readRunDir, reportHtml, verdicts } from '../../src/report/index.ts';
import { loadScenario, parseScenarioText } from '../../src/world/scenario.ts';
import { simulate, timelineCsv } from '../../src/world/simulation.ts';
import { countColour, decodePng } from './png-decode.ts';

const FIXTURE = resolve(import.meta.dirname, '../fixtures/report/pause-short.yaml');
const BIN = resolve(import.meta.dirname, '../../bin/timevisor.js');
const tv = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
const res = simulate(loadScenario(FIXTURE));

/** The chart options the page hands to ECharts. */
function inlineOptions(html: string): Record<string, { series: { name: string; data: unknown[]; markArea?: { data: unknown[] } }[] }> {
  const m = /const options = (.*);\n/.exec(html);
  assert.ok(m, 'no inline chart options');
  return JSON.parse(m[1]!);
}

test('the report is one self-contained HTML file: ECharts inlined, no network reference', () => {
  const html = reportHtml(res, { scenarioText: readFileSync(FIXTURE, 'utf8') });
  assert.match(html, /^<!doctype html>/);
  assert.ok(html.includes('echarts'), 'ECharts inlined');
  assert.ok(html.length > 900_000, 'ECharts is ~1 MB');
  const markup = html.replace(/<script>[\s\S]*?<\/script>/g, '<script></script>');
  assert.doesNotMatch(markup, /<(script|img|link|iframe)[^>]+(src|href)=/i);
  assert.doesNotMatch(markup, /https?:/i);
  assert.equal(reportHtml(res, { scenarioText: readFileSync(FIXTURE, 'utf8') }), html, 'same results, same bytes');
});

test('the report carries its plots: offset per VM with the pause shaded, monotonic lag, host clock', () => {
  const html = reportHtml(res);
  for (const id of ['offset', 'rate', 'monotonic', 'host']) assert.ok(html.includes(`<div class="chart" id="chart-${id}"></div>`), id);
  const o = inlineOptions(html);
  assert.deepEqual(
    o.offset!.series.map((s) => s.name),
    ['vm-agent', 'vm-ntp'],
  );
  const agent = o.offset!.series[0]!;
  // one point per timeline row of that VM, plus the gap that breaks the line across the pause
  assert.equal(agent.data.length, res.timeline.filter((r) => r.vm === 'vm-agent').length + 1);
  assert.deepEqual(agent.markArea!.data, [[{ xAxis: 5 }, { xAxis: 6 }]]); // paused 5–6 min
  assert.ok(agent.data.some((p) => (p as unknown[])[1] === '-'));
});

test('the rate plot: each guest clock’s drift between samples, its last point the summary’s drift now', () => {
  const o = inlineOptions(reportHtml(res));
  const rate = o.rate!.series;
  res.summary.vms.forEach((v, i) => {
    const pts = rate[i]!.data as [number, number | '-'][];
    const lastRate = pts.at(-1)![1] as number;
    assert.equal(Math.round(lastRate * 1e6) / 1e6, v.drift_ppm);
    // the steps at resume and sync are gaps, never a 60-s-in-30-s spike
    assert.ok(pts.some((p) => p[1] === '-'));
    for (const p of pts) assert.ok(p[1] === '-' || Math.abs(p[1]) <= 500);
  });
});

test('verdicts: NTP keeps its guest in time, the agent guest drifts with the 8 ppm crystal after its one set, nobody re-syncs: wrong', () => {
  assert.deepEqual(
    verdicts(res.summary).map((v) => v.level),
    ['warn', 'ok'],
  );
  assert.match(verdicts(res.summary)[0]!.text, /^drifting: 4\.\d{3} ms ahead at the end, 7\.\d{3} ppm/);
  const s = loadScenario(FIXTURE);
  const none = simulate({
    ...s,
    vms: s.vms.map((v) => ({ ...v, profile: 'qemu-kvm-noinvtsc', sync: { ...v.sync, method: 'none' as const } })),
  });
  const v = verdicts(none.summary);
  assert.equal(v[0]!.level, 'bad');
  assert.match(v[0]!.text, /^wrong: 60\.\d{3} s behind at the end and nothing put it right \(sync: none\)$/);
  assert.ok(reportHtml(none).includes('<p class="verdict bad" data-vm="vm-agent"><b>vm-agent</b>: wrong: 60.'));
});

test('--png: the main plot as a PNG that is not blank (axes, grid and each VM line drawn)', () => {
  const png = decodePng(offsetPng(res));
  assert.equal(png.width, 1200);
  assert.equal(png.height, 600);
  const total = png.width * png.height;
  const white = countColour(png, '#ffffff', 0);
  assert.ok(white < total * 0.97, `${total - white} non-white pixels`);
  assert.ok(white > total * 0.5, 'mostly background');
  // the two series colours of the palette
  assert.ok(countColour(png, '#4269d0') > 200, 'vm-agent line');
  assert.ok(countColour(png, '#ff725c') > 200, 'vm-ntp line');
});

test('timevisor report DIR reads a run --out; run --report writes the same kind of file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-report-'));
  const out = join(dir, 'out');
  const r = tv('run', FIXTURE, '--out', out, '--report', join(dir, 'run.html'), '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const rep = tv('report', out, '--png');
  assert.equal(rep.status, 0, rep.stderr);
  assert.equal(rep.stderr, `wrote ${join(out, 'report.html')}, ${join(out, 'offset.png')}\n`);
  assert.deepEqual(readdirSync(out).sort(), ['offset.png', 'report.html', 'summary.json', 'timeline.csv']);
  const fromDir = readFileSync(join(out, 'report.html'), 'utf8');
  const fromRun = readFileSync(join(dir, 'run.html'), 'utf8');
  assert.deepEqual(inlineOptions(fromDir), inlineOptions(fromRun));
  assert.ok(fromRun.includes('<h2>Scenario</h2><pre># Two guests'));
  assert.ok(decodePng(readFileSync(join(out, 'offset.png'))).width === 1200);
});

test('report --png into a directory that does not exist: exit 2 and no HTML written either', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-report-'));
  assert.equal(tv('run', FIXTURE, '--out', dir, '--quiet').status, 0);
  const r = tv('report', dir, '--png', join(dir, 'nope', 'x.png'));
  assert.equal(r.status, 2);
  assert.equal(r.stderr, `timevisor: --png: cannot write ${join(dir, 'nope', 'x.png')}: ENOENT\n`);
  assert.deepEqual(readdirSync(dir).sort(), ['summary.json', 'timeline.csv']);
});

test('run --report without --out: the report alone, its temporary timeline gone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-report-'));
  const tmpsBefore = readdirSync(tmpdir()).filter((n) => n.startsWith('timevisor-report-')).length;
  const r = tv('run', FIXTURE, '--report', join(dir, 'r.html'), '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).scenario, 'pause-short');
  assert.equal(r.stderr, `wrote ${join(dir, 'r.html')}\n`);
  assert.deepEqual(readdirSync(dir), ['r.html']);
  assert.deepEqual(inlineOptions(readFileSync(join(dir, 'r.html'), 'utf8')), inlineOptions(reportHtml(res)));
  assert.equal(readdirSync(tmpdir()).filter((n) => n.startsWith('timevisor-report-')).length, tmpsBefore);
});

test('the timeline read back from CSV is the timeline written, exactly', () => {
  assert.deepEqual(parseTimelineCsv(timelineCsv(res.timeline)), res.timeline);
});

test('a directory that is not a run: one line naming the file, exit 2, no report written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tv-report-'));
  const r = tv('report', dir);
  assert.equal(r.status, 2);
  assert.equal(r.stderr, `timevisor: ${join(dir, 'summary.json')}: no such file (expected the output of \`timevisor run --out DIR\`)\n`);
  mkdirSync(join(dir, 'x'));
  writeFileSync(join(dir, 'x', 'summary.json'), '{"hosts":[],"vms":[]}');
  writeFileSync(join(dir, 'x', 'timeline.csv'), 't_s,vm,guest_offset_ns,monotonic_lag_ns,host_offset_ns\n1.0,vm0,12,x,0\n');
  const c = tv('report', join(dir, 'x'));
  assert.equal(c.status, 2);
  assert.match(c.stderr, /timeline\.csv: line 2: expected t_s,vm and three integer ns columns, got "1\.0,vm0,12,x,0"\n$/);
  assert.deepEqual(readdirSync(join(dir, 'x')).sort(), ['summary.json', 'timeline.csv']);
  assert.throws(() => readRunDir(join(dir, 'nope')), /no such file/);
});

test('the report has the host CPUs and timer interrupts table where a VM waited for a CPU or took a late tick, and none otherwise', () => {
  const shared = simulate(
    parseScenarioText(
      `duration: 3s
sample_interval: 1s
hosts: [{ name: h, tsc: { freq_khz: 2596136 } }]
vms:
  - { name: discard, host: h, profile: kvmtool, kernel: yocto-qemux86, cmdline: nolapic, deschedule: { period: 100ms, run: 50ms }, pit_lost_tick_policy: discard }
  - { name: alone, host: h, profile: qemu-kvm }
`,
      'shared.yaml',
    ),
  );
  const html = reportHtml(shared);
  const at = html.indexOf('<h2>Host CPUs and timer interrupts</h2>');
  assert.ok(at > 0);
  const tableHtml = html.slice(at, html.indexOf('</table>', at));
  const cells = (row: string) => [...row.matchAll(/<t[dh]>([^<]*)<\/t[dh]>/g)].map((m) => m[1]);
  const rows = tableHtml.split('<tr>').slice(1).map(cells);
  assert.deepEqual(rows[0], ['vm', 'timer irqs', 'lost', 'late p50', 'late p99', 'late max']);
  const v = shared.summary.vms[0]!;
  assert.equal(rows.length, 2, 'the VM with nothing late has no row');
  assert.deepEqual(rows[1]!.slice(0, 3), [v.name, v.timer_irqs, v.ticks_lost]);
  assert.ok(!reportHtml(res).includes('Host CPUs and timer interrupts'), 'the pause fixture shares nothing');
});
