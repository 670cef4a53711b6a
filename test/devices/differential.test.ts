// Differential tests: the qtest scripts in test/fixtures/qtest run unchanged against Debian's QEMU and
// against timevisor's pc machine; the answers must match, line by line, except where the manifest
// states a tolerance for a value that depends on QEMU's real-time clock.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { QtestSession, rtcBaseSeconds } from '../../src/devices/index.ts';

const dir = join(import.meta.dirname, '..', 'fixtures', 'qtest');
interface Rule {
  mask?: string;
  within?: number;
  ignore?: boolean;
  why: string;
}
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
  qemuArgs: string[];
  rtcBase: string;
  scripts: Record<string, { rules: Record<string, Rule> }>;
};

// TIMEVISOR_QEMU names another binary (or a missing one, to see the skip path).
const QEMU = process.env.TIMEVISOR_QEMU ?? 'qemu-system-x86_64';
const qemu = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
const qemuMissing = qemu.error || qemu.status !== 0 ? `${QEMU} not installed (Debian package qemu-system-x86)` : null;

/** Run a script through QEMU; QEMU keeps running after stdin closes, so stop it once every line is answered. */
function runQemu(script: string, expected: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('timeout', ['20', QEMU, ...manifest.qemuArgs], { stdio: ['pipe', 'pipe', 'pipe'] });
    const answers: string[] = [];
    let buf = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line !== '' && !line.startsWith('IRQ ')) answers.push(line);
      }
      if (answers.length >= expected) child.kill('SIGTERM');
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', () =>
      answers.length >= expected
        ? resolve(answers)
        : reject(new Error(`qemu answered ${answers.length} of ${expected} lines: ${stderr.slice(-500)}`)),
    );
    child.stdin.end(script);
  });
}

function runTimevisor(lines: string[]): string[] {
  const s = new QtestSession({ rtcBaseSeconds: rtcBaseSeconds(manifest.rtcBase, 0n) });
  return lines.flatMap((l) => s.handle(l)).filter((l) => !l.startsWith('IRQ '));
}

function answerValue(answer: string): bigint | null {
  const m = /^OK (0x[0-9a-f]+)$/.exec(answer);
  return m ? BigInt(m[1]!) : null;
}

for (const [name, { rules }] of Object.entries(manifest.scripts)) {
  test(`qtest differential vs QEMU: ${name}`, async (t) => {
    if (qemuMissing) {
      console.log(`skipping ${name}: ${qemuMissing}`);
      t.skip(qemuMissing);
      return;
    }
    const text = readFileSync(join(dir, name), 'utf8');
    const lines = text.split('\n').filter((l) => l !== '');
    const ours = runTimevisor(lines);
    const theirs = await runQemu(text, lines.length);
    assert.equal(theirs.length, lines.length, `QEMU answered ${theirs.length} of ${lines.length} lines`);
    assert.equal(ours.length, lines.length);
    let identical = 0;
    let tolerated = 0;
    for (let i = 0; i < lines.length; i++) {
      const rule = rules[String(i + 1)];
      const where = `${name}:${i + 1} '${lines[i]}' (QEMU ${theirs[i]}, timevisor ${ours[i]})`;
      if (rule?.ignore) continue;
      if (rule?.mask || rule?.within !== undefined) {
        const a = answerValue(theirs[i]!);
        const b = answerValue(ours[i]!);
        assert.ok(a !== null && b !== null, where);
        if (rule.mask) assert.equal(a & BigInt(rule.mask), b & BigInt(rule.mask), `${where}: ${rule.why}`);
        else {
          const diff = a > b ? a - b : b - a;
          assert.ok(diff <= BigInt(rule.within!), `${where}: ${rule.why}`);
        }
        tolerated++;
      } else {
        assert.equal(ours[i], theirs[i], where);
        identical++;
      }
    }
    const ignored = lines.length - identical - tolerated;
    console.log(`${name}: ${identical} answers identical, ${tolerated} within a stated tolerance, ${ignored} not compared (timing only)`);
  });
}
