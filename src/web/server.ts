// `timevisor serve`: a local web app on Node's http module. The page (static/app.js) builds its form
// from the scenario JSON Schema, runs scenarios through the job runner and watches them over
// Server-Sent Events; results download as summary.json, timeline.csv and the HTML report.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { InputError } from '../core/index.ts';
import { echartsSource, offsetChart, reportHtml } from '../report/index.ts';
import { chromeTrace, runTrace } from '../trace/index.ts';
import { verdicts } from '../report/index.ts';
import { parseScenario, parseScenarioText, type Scenario, scenarioJsonSchema } from '../world/index.ts';
import { type SimulationSummary, timelineCsv } from '../world/index.ts';
import { JobRunner } from './jobs.ts';
import { LIBRARY } from './library.ts';

const MAX_BODY = 1 << 20;
const asset = (name: string) => readFileSync(new URL(`./static/${name}`, import.meta.url), 'utf8');

export interface WebServerOptions {
  host?: string;
  port?: number;
}

export interface WebServer {
  server: Server;
  url: string;
  close: () => Promise<void>;
}

/** An InputError as the page shows it: the field path to put it beside, and the CLI's one line. */
export function errorJson(e: InputError): { message: string; where: string | null; path: string | null; line: string } {
  const where = [e.where, e.path].filter(Boolean).join(': ');
  return { message: e.message, where: e.where ?? null, path: e.path ?? null, line: `${where ? `${where}: ` : ''}${e.message}` };
}

function send(res: ServerResponse, status: number, type: string, body: string | Uint8Array, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...extra });
  res.end(body);
}
const json = (res: ServerResponse, status: number, v: unknown) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(v));

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new InputError('request body larger than 1 MiB', 'request');
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new InputError('expected a JSON body', 'request');
  }
}

/** A scenario from {text, name} (a YAML file's content) or {scenario} (the form's object); raw is what could be read. */
function scenarioFrom(body: unknown): { scenario: Scenario | null; raw: unknown; error: InputError | null } {
  const b = (body ?? {}) as { text?: unknown; name?: unknown; scenario?: unknown };
  let raw: unknown = null;
  try {
    if (typeof b.text === 'string') {
      const name = typeof b.name === 'string' && b.name ? b.name : 'uploaded scenario';
      try {
        raw = parseYaml(b.text);
      } catch {
        raw = null; // the loader below names the line
      }
      return { scenario: parseScenarioText(b.text, name), raw, error: null };
    }
    if (b.scenario !== undefined) {
      raw = b.scenario;
      return { scenario: parseScenario(b.scenario, 'form'), raw, error: null };
    }
    throw new InputError('expected {"text": YAML} or {"scenario": {...}}', 'request');
  } catch (e) {
    if (e instanceof InputError) return { scenario: null, raw, error: e };
    throw e;
  }
}

export function startWebServer(opts: WebServerOptions = {}): Promise<WebServer> {
  const jobs = new JobRunner();
  const page = asset('index.html');
  const app = asset('app.js');
  const css = asset('app.css');
  let echarts: string | null = null;

  let allowedHosts: Set<string> | null = null;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // bound to loopback, answer only requests addressed to loopback: a web page elsewhere cannot reach
    // this server through a DNS name it rebinds to 127.0.0.1
    if (allowedHosts && !allowedHosts.has(req.headers.host ?? '')) return json(res, 403, { error: { line: 'Host not allowed' } });
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = url.pathname;
    if (req.method === 'GET' && p === '/') return send(res, 200, 'text/html; charset=utf-8', page);
    if (req.method === 'GET' && p === '/app.js') return send(res, 200, 'text/javascript; charset=utf-8', app);
    if (req.method === 'GET' && p === '/app.css') return send(res, 200, 'text/css; charset=utf-8', css);
    if (req.method === 'GET' && p === '/echarts.js') {
      echarts ??= echartsSource();
      return send(res, 200, 'text/javascript; charset=utf-8', echarts);
    }
    if (req.method === 'GET' && p === '/api/schema') return json(res, 200, scenarioJsonSchema());
    if (req.method === 'GET' && p === '/api/library') return json(res, 200, LIBRARY);
    if (req.method === 'POST' && (p === '/api/validate' || p === '/api/run')) {
      const { scenario, raw, error } = scenarioFrom(await readBody(req));
      if (error || !scenario) return json(res, 400, { error: errorJson(error!), raw });
      // the form shows the file as written ("15min", not ns); the loader fills in defaults when it runs
      if (p === '/api/validate') return json(res, 200, { scenario: raw });
      const job = jobs.start(scenario);
      return json(res, 202, { id: job.id });
    }
    const m = /^\/api\/runs\/([0-9a-f-]{36})\/(events|summary\.json|timeline\.csv|report\.html|trace\.json)$/.exec(p);
    const job = m ? jobs.get(m[1]!) : undefined;
    if (m && job && req.method === 'GET') {
      if (m[2] === 'events') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
        const write = (msg: (typeof job.messages)[number]) => {
          // the finished plot is the report's: pauses shaded, the line broken across them
          const data =
            msg.kind === 'done'
              ? {
                  summary: msg.summary,
                  verdicts: verdicts(msg.summary as SimulationSummary),
                  chart: job.result ? offsetChart(job.result.summary, job.result.timeline).option : null,
                }
              : msg;
          res.write(`event: ${msg.kind}\ndata: ${JSON.stringify(data)}\n\n`);
          if (msg.kind === 'done' || msg.kind === 'error') res.end();
        };
        for (const msg of job.messages) write(msg);
        if (!job.finished) {
          job.listeners.add(write);
          req.on('close', () => job.listeners.delete(write));
        }
        return;
      }
      if (!job.result) return json(res, 409, { error: { line: 'the run has not finished' } });
      const name = job.scenario.name.replace(/[^\w.-]/g, '_');
      const attach = (f: string) => ({ 'content-disposition': `attachment; filename="${name}-${f}"` });
      if (m[2] === 'summary.json')
        return send(res, 200, 'application/json', JSON.stringify(job.result.summary, null, 2) + '\n', attach('summary.json'));
      if (m[2] === 'timeline.csv') return send(res, 200, 'text/csv', timelineCsv(job.result.timeline), attach('timeline.csv'));
      if (m[2] === 'trace.json') {
        // traced on demand (most runs are never traced); blocks this local server for about one run
        const t = runTrace(job.scenario);
        return send(
          res,
          200,
          'application/json',
          JSON.stringify(chromeTrace(t.events, t.result.timeline, t.vmOrder)),
          attach('trace.json'),
        );
      }
      return send(res, 200, 'text/html; charset=utf-8', reportHtml(job.result), attach('report.html'));
    }
    return json(res, 404, { error: { line: `no such resource: ${req.method} ${p}` } });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof InputError) return json(res, 400, { error: errorJson(e) });
      if (!res.headersSent) json(res, 500, { error: { line: e instanceof Error ? e.message : String(e) } });
      else res.end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' || e.code === 'EACCES' ? new InputError(`cannot listen: ${e.code}`, '--port') : e),
    );
    server.listen(opts.port ?? 7300, opts.host ?? '127.0.0.1', () => {
      const a = server.address() as AddressInfo;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      if (a.address === '127.0.0.1' || a.address === '::1')
        allowedHosts = new Set([`127.0.0.1:${a.port}`, `localhost:${a.port}`, `[::1]:${a.port}`]);
      resolve({
        server,
        url: `http://${host}:${a.port}/`,
        close: async () => {
          await jobs.close();
          server.closeAllConnections();
          await new Promise<void>((r) => server.close(() => r()));
        },
      });
    });
  });
}
