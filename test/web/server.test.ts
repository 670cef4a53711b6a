import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadScenario } from '../../src/world/scenario.ts';
import { simulate, timelineCsv, type TimelineRow } from '../../src/world/simulation.ts';
import { runProgressively, startWebServer } from '../../src/web/index.ts';

const FIXTURE = resolve(import.meta.dirname, '../fixtures/report/pause-short.yaml');
const web = await startWebServer({ port: 0 });
after(() => web.close());

const post = async (path: string, body: unknown) => {
  const r = await fetch(new URL(path, web.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

/** The events of a Server-Sent Events stream, in order. */
async function sse(path: string): Promise<{ event: string; data: unknown }[]> {
  const text = await (await fetch(new URL(path, web.url))).text();
  return text
    .split('\n\n')
    .filter(Boolean)
    .map((block) => {
      const ev = /^event: (.*)$/m.exec(block)![1]!;
      return { event: ev, data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) };
    });
}

test('binds to 127.0.0.1 by default and answers only requests addressed to loopback', async () => {
  assert.match(web.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const { request } = await import('node:http');
  const status = (host: string) =>
    new Promise<number>((resolve, reject) => {
      const u = new URL(web.url);
      request({ host: u.hostname, port: u.port, path: '/api/library', headers: { host } }, (r) => {
        r.resume();
        resolve(r.statusCode!);
      })
        .on('error', reject)
        .end();
    });
  assert.equal(await status(`localhost:${new URL(web.url).port}`), 200);
  assert.equal(await status(`evil.example:${new URL(web.url).port}`), 403);
});

test('the progressive run hands out exactly the full run’s timeline, in five growing batches', () => {
  const s = loadScenario(FIXTURE);
  const batches: TimelineRow[][] = [];
  const fractions: number[] = [];
  const res = runProgressively(s, { rows: (r) => batches.push(r), progress: (f) => fractions.push(f) });
  assert.equal(batches.length, 5);
  assert.deepEqual(batches.flat(), simulate(s).timeline);
  assert.deepEqual(res.summary, simulate(s).summary);
  assert.deepEqual(
    fractions,
    [...fractions].sort((a, b) => a - b),
    'progress never goes back',
  );
  assert.equal(fractions.at(-1), 1);
});

test('a run streams progress and rows over SSE, ends with the verdicts, and its results download', async () => {
  const r = await post('/api/run', { text: readFileSync(FIXTURE, 'utf8'), name: 'pause-short.yaml' });
  assert.equal(r.status, 202);
  const events = await sse(`/api/runs/${r.body.id}/events`);
  const kinds = new Set(events.map((e) => e.event));
  assert.deepEqual([...kinds].sort(), ['done', 'progress', 'rows']);
  assert.equal(events.at(-1)!.event, 'done');
  const done = events.at(-1)!.data as { verdicts: { vm: string; level: string }[] };
  assert.deepEqual(
    done.verdicts.map((v) => [v.vm, v.level]),
    [
      ['vm-agent', 'warn'],
      ['vm-ntp', 'ok'],
    ],
  );
  const rows = events.filter((e) => e.event === 'rows').flatMap((e) => (e.data as { rows: unknown[][] }).rows);
  const full = simulate(loadScenario(FIXTURE)).timeline;
  assert.equal(rows.length, full.length);
  const csv = await (await fetch(new URL(`/api/runs/${r.body.id}/timeline.csv`, web.url))).text();
  assert.equal(csv, timelineCsv(full));
  const rep = await fetch(new URL(`/api/runs/${r.body.id}/report.html`, web.url));
  assert.equal(rep.headers.get('content-disposition'), 'attachment; filename="pause-short-report.html"');
  assert.match(await rep.text(), /<div class="chart" id="chart-offset">/);
  const trace = (await (await fetch(new URL(`/api/runs/${r.body.id}/trace.json`, web.url))).json()) as {
    traceEvents: { name: string; ph: string }[];
  };
  assert.ok(trace.traceEvents.some((e) => e.name === 'kvm_pvclock_update' && e.ph === 'i'));
  const done2 = events.at(-1)!.data as { chart: { series: { name: string; markArea: { data: unknown[] } }[] } };
  assert.deepEqual(
    done2.chart.series.map((s) => [s.name, s.markArea.data.length]),
    [
      ['vm-agent', 1],
      ['vm-ntp', 1],
    ],
  );
});

test('a bad scenario: 400 with the path of the field, the CLI’s one line, and what could be read', async () => {
  const text = readFileSync(FIXTURE, 'utf8').replace('freq_khz: 2596136', 'freq_khz: -5');
  const r = await post('/api/validate', { text, name: 'bad.yaml' });
  assert.equal(r.status, 400);
  assert.deepEqual(r.body.error, {
    message: 'must be ≥ 1000, got -5',
    where: 'bad.yaml:10',
    path: 'hosts[0].tsc.freq_khz',
    line: 'bad.yaml:10: hosts[0].tsc.freq_khz: must be ≥ 1000, got -5',
  });
  assert.equal((r.body.raw as { name: string }).name, 'pause-short');
  const f = await post('/api/run', { scenario: { duration: '1h', hosts: [], vms: [] } });
  assert.equal(f.status, 400);
  assert.equal((f.body.error as { path: string }).path, 'hosts');
  const junk = await fetch(new URL('/api/run', web.url), { method: 'POST', body: 'not json' });
  assert.equal(junk.status, 400);
  assert.equal(((await junk.json()) as { error: { line: string } }).error.line, 'request: expected a JSON body');
  assert.equal((await fetch(new URL('/nope', web.url))).status, 404);
});

test('an error the run itself finds (a pause before the kernel starts) ends the stream with its path', async () => {
  const text = readFileSync(FIXTURE, 'utf8').replace('pauses: [{ at: 5min, duration: 1min }]', 'pauses: [{ at: 100ms, duration: 1min }]');
  const r = await post('/api/run', { text, name: 'early.yaml' });
  assert.equal(r.status, 202);
  const events = await sse(`/api/runs/${r.body.id}/events`);
  assert.deepEqual(events.at(-1), {
    event: 'error',
    data: {
      kind: 'error',
      message: 'pause at 100.000 ms comes before the guest kernel has started',
      input: true,
      where: 'scenario',
      path: 'vms[0].pauses',
    },
  });
  const dl = await fetch(new URL(`/api/runs/${r.body.id}/summary.json`, web.url));
  assert.equal(dl.status, 409);
});

test('`timevisor serve --port 0` prints its URL, serves, and stops on SIGTERM; a bad --port is exit 2', async () => {
  const { spawn, spawnSync } = await import('node:child_process');
  const BIN = resolve(import.meta.dirname, '../../bin/timevisor.js');
  const bad = spawnSync(process.execPath, [BIN, 'serve', '--port', 'http'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr, 'timevisor: --port: expected a port 0…65535, got "http"\n');
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /timevisor web UI at (http:\/\/127\.0\.0\.1:\d+\/) \(Ctrl-C to stop\)\n/.exec(out);
      if (m) resolveUrl(m[1]!);
    });
    child.on('exit', () => reject(new Error(`serve exited early: ${out}`)));
  });
  const lib = (await (await fetch(new URL('/api/library', url))).json()) as { id: string }[];
  assert.deepEqual(
    lib.map((l) => l.id),
    ['demo', 'pause-15min'],
  );
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
