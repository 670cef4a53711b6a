// The project's QMP and QGA clients against scripted peers on unix sockets (framing only; the real
// QEMU and qemu-ga are exercised by real-guest.test.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { UnavailableError } from '../../src/core/errors.ts';
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

/** A scripted agent: `answer` gets each request (0xFF bytes removed) and the socket to reply on. */
async function agent(answer: (req: { execute: string; arguments?: { id?: number } }, s: Socket) => void) {
  return peer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1').replace(/\xff/g, '');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        answer(JSON.parse(line), s);
      }
    });
    s.on('error', () => undefined);
  });
}

test('QGA: a request with no reply times out naming the command; the client stays usable', async () => {
  let n = 0;
  const p = await agent((req, s) => {
    n++;
    if (req.execute === 'guest-ping' && n === 1) return; // the first ping is never answered
    if (req.execute === 'guest-sync-delimited')
      s.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${req.arguments!.id}}\n`)]));
    else s.write('{"return": {}}\n');
  });
  const qga = await QgaClient.connect(p.path);
  try {
    await assert.rejects(qga.execute('guest-ping', undefined, 150), (e: UnavailableError) => {
      assert.equal(e.message, 'guest agent did not answer guest-ping');
      assert.equal(e.reason, 'no reply within 150 ms');
      return true;
    });
    await qga.ping();
  } finally {
    qga.close();
    p.done();
  }
});

test('QGA: a reply that arrives after its timeout is not taken for the next request’s (the client re-syncs first)', async () => {
  const seen: string[] = [];
  const p = await agent((req, s) => {
    seen.push(req.execute);
    if (req.execute === 'guest-get-time' && seen.filter((x) => x === 'guest-get-time').length === 1)
      setTimeout(() => s.write('{"return": 111}\n'), 300); // late
    else if (req.execute === 'guest-get-time') s.write('{"return": 222}\n');
    else if (req.execute === 'guest-sync-delimited')
      setTimeout(() => s.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${req.arguments!.id}}\n`)])), 350);
  });
  const qga = await QgaClient.connect(p.path);
  try {
    await assert.rejects(qga.execute('guest-get-time', undefined, 100), /did not answer guest-get-time/);
    assert.equal(await qga.getTime(), 222n);
    assert.deepEqual(seen, ['guest-get-time', 'guest-sync-delimited', 'guest-get-time']);
  } finally {
    qga.close();
    p.done();
  }
});

test('QGA: the agent closing the socket fails the request in flight and every later one', async () => {
  const p = await agent((_req, s) => s.destroy());
  const qga = await QgaClient.connect(p.path);
  try {
    await assert.rejects(qga.ping(), (e: UnavailableError) => e.message === 'guest agent socket closed' && e.reason === 'QEMU exited');
    await assert.rejects(qga.getTime(), /guest agent socket closed/);
  } finally {
    qga.close();
    p.done();
  }
});

test('QGA: a malformed reply and an error object are errors with the agent’s words', async () => {
  const p = await agent((req, s) => {
    if (req.execute === 'guest-ping') s.write('{"return": {]\n');
    else s.write('{"error": {"class": "GenericError", "desc": "Invalid parameter \'time\'"}}\n');
  });
  const qga = await QgaClient.connect(p.path);
  try {
    await assert.rejects(
      qga.ping(),
      (e: UnavailableError) => e.message === 'guest agent sent malformed JSON' && e.reason === '{"return": {]',
    );
    await assert.rejects(qga.setTime(-1n), (e: UnavailableError) => {
      assert.equal(e.message, "guest agent error: Invalid parameter 'time'");
      assert.equal(e.reason, 'GenericError');
      return true;
    });
  } finally {
    qga.close();
    p.done();
  }
});

test('QGA: an agent that never echoes our id is "never synchronised"; a silent one times out', async () => {
  const wrong = await agent((_req, s) => s.write(Buffer.concat([Buffer.from([0xff]), Buffer.from('{"return": 7}\n')])));
  const qga = await QgaClient.connect(wrong.path);
  try {
    await assert.rejects(qga.sync(300), (e: UnavailableError) => {
      assert.equal(e.message, 'guest agent never synchronised');
      assert.equal(e.reason, 'no matching guest-sync-delimited reply in 300 ms');
      return true;
    });
  } finally {
    qga.close();
    wrong.done();
  }
  const silent = await agent(() => undefined);
  const q2 = await QgaClient.connect(silent.path);
  try {
    await assert.rejects(q2.sync(100), /guest agent did not answer guest-sync-delimited/);
  } finally {
    q2.close();
    silent.done();
  }
});

test('QGA: one request at a time', async () => {
  const p = await agent((_req, s) => setTimeout(() => s.write('{"return": {}}\n'), 50));
  const qga = await QgaClient.connect(p.path);
  try {
    const first = qga.ping();
    await assert.rejects(qga.ping(), /one request at a time/);
    await first;
  } finally {
    qga.close();
    p.done();
  }
});
