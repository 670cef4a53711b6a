// The project's QMP and QGA clients against scripted peers on unix sockets (framing only; the real
// QEMU and qemu-ga are exercised by real-guest.test.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { QgaClient } from '../../src/lab/qga.ts';
import { QmpClient } from '../../src/lab/qmp.ts';

async function peer(onConn: (s: Socket) => void): Promise<{ path: string; server: Server; done: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-labtest-'));
  const path = join(dir, 'sock');
  const server = createServer(onConn);
  await new Promise<void>((r) => server.listen(path, () => r()));
  return {
    path,
    server,
    done: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('QGA: guest-sync-delimited skips stale bytes up to the 0xFF sentinel; ns times above 2^53 stay exact', async () => {
  const seen: string[] = [];
  const p = await peer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      // the client starts a sync with a 0xFF byte that resets the agent's parser
      buf += d.toString('latin1').replace(/\xff/g, '');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const req = JSON.parse(buf.slice(0, nl)) as { execute: string; arguments?: { id?: number } };
        buf = buf.slice(nl + 1);
        seen.push(req.execute);
        if (req.execute === 'guest-sync-delimited') {
          // stale output from before the session, then the sentinel, then the reply
          s.write(
            Buffer.concat([Buffer.from('{"return": 1}\n garbage'), Buffer.from([0xff]), Buffer.from(`{"return": ${req.arguments!.id}}\n`)]),
          );
        } else if (req.execute === 'guest-get-time') {
          s.write('{"return": 1795639061223494123}\n');
        } else if (req.execute === 'guest-set-time') {
          s.write('{"return": {}}\n');
        }
      }
    });
  });
  const qga = await QgaClient.connect(p.path);
  try {
    await qga.sync(5_000);
    assert.equal(await qga.getTime(), 1_795_639_061_223_494_123n);
    await qga.setTime(1_795_639_061_223_494_123n);
    assert.deepEqual(seen, ['guest-sync-delimited', 'guest-get-time', 'guest-set-time']);
  } finally {
    qga.close();
    p.done();
  }
});

test('QGA: guest-set-time sends the exact integer ns, not a rounded double', async () => {
  let body = '';
  const p = await peer((s) => {
    s.on('data', (d: Buffer) => {
      body += d.toString();
      if (body.endsWith('\n')) s.write('{"return": {}}\n');
    });
  });
  const qga = await QgaClient.connect(p.path);
  try {
    await qga.setTime(1_795_639_061_223_494_123n);
    assert.equal(body, '{"execute":"guest-set-time","arguments":{"time":1795639061223494123}}\n');
  } finally {
    qga.close();
    p.done();
  }
});

test('QMP: greeting, qmp_capabilities first, replies matched by id, events kept, errors raised', async () => {
  const order: string[] = [];
  const p = await peer((s) => {
    s.write('{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": []}}\n');
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const req = JSON.parse(buf.slice(0, nl)) as { execute: string; id: string };
        buf = buf.slice(nl + 1);
        order.push(req.execute);
        if (req.execute === 'stop')
          s.write(`{"timestamp": {"seconds": 1795639061, "microseconds": 5}, "event": "STOP"}\n{"return": {}, "id": "${req.id}"}\n`);
        else if (req.execute === 'query-status') s.write(`{"return": {"status": "paused", "running": false}, "id": "${req.id}"}\n`);
        else if (req.execute === 'cont') s.write(`{"error": {"class": "GenericError", "desc": "nope"}, "id": "${req.id}"}\n`);
        else s.write(`{"return": {}, "id": "${req.id}"}\n`);
      }
    });
  });
  const qmp = await QmpClient.connect(p.path);
  try {
    await qmp.stop();
    assert.deepEqual(await qmp.queryStatus(), { status: 'paused', running: false });
    await assert.rejects(qmp.cont(), /nope/);
    assert.deepEqual(order, ['qmp_capabilities', 'stop', 'query-status', 'cont']);
    assert.deepEqual(
      qmp.events.map((e) => [e.event, e.timestamp?.microseconds]),
      [['STOP', 5]],
    );
  } finally {
    qmp.close();
    p.done();
  }
});
