import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eta, progressBar } from '../../src/cli/progress.ts';

function fakeStream(isTTY: boolean) {
  const out: string[] = [];
  return { stream: { isTTY, write: (s: string) => out.push(s) } as unknown as NodeJS.WriteStream, out };
}

test('ETA: elapsed × (1 − done) / done, in minutes and seconds; nothing until it means something', () => {
  assert.equal(eta(10_000, 0.25), 'ETA 30s');
  assert.equal(eta(60_000, 0.5), 'ETA 1m00s');
  assert.equal(eta(65_000, 0.1), 'ETA 9m45s');
  assert.equal(eta(200, 0.5), ''); // too early to say
  assert.equal(eta(10_000, 0.005), '');
  assert.equal(eta(10_000, 1), '');
});

test('on a terminal: a bar redrawn at most every 100 ms, with percent and ETA, ended by a newline', () => {
  const { stream, out } = fakeStream(true);
  let now = 0;
  const p = progressBar('simulating demo', stream, { now: () => now });
  now = 1000;
  p.update(0.5);
  now = 1050;
  p.update(0.6); // within 100 ms: not drawn
  now = 2000;
  p.update(0.75);
  p.done();
  assert.equal(out.length, 4);
  assert.equal(out[0], `\rsimulating demo [${'#'.repeat(15)}${' '.repeat(15)}]  50% ETA 1s\x1b[K`);
  assert.match(out[1]!, /\] {2}75% ETA 1s/);
  assert.ok(out[2]!.endsWith('] 100%\x1b[K'), out[2]);
  assert.equal(out[3], '\n');
});

test('piped, or with --quiet: nothing at all', () => {
  for (const [tty, quiet] of [
    [false, false],
    [true, true],
  ] as const) {
    const { stream, out } = fakeStream(tty);
    const p = progressBar('x', stream, { quiet, now: () => 5000 });
    p.update(0.5);
    p.done();
    assert.deepEqual(out, []);
  }
});
