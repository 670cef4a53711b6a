// Differential tests: the qtest scripts in test/fixtures/qtest run unchanged against Debian's QEMU and
// against timevisor's pc machine; the answers must match, line by line, except where the manifest
// states a tolerance for a value that depends on QEMU's real-time clock.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

const qemu = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
const qemuMissing = qemu.error || qemu.status !== 0 ? 'qemu-system-x86_64 not installed (Debian package qemu-system-x86)' : null;

function runQemu(script: string): string[] {
  const r = spawnSync('timeout', ['20', 'qemu-system-x86_64', ...manifest.qemuArgs], { input: script, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0 && r.status !== 124 && r.stdout.length === 0) throw new Error(`qemu failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('IRQ '));
}

function runTimevisor(lines: string[]): string[] {
  const s = new QtestSession({ rtcBaseSeconds: rtcBaseSeconds(manifest.rtcBase, 0n) });
  return lines.flatMap((l) => s.handle(l)).filter((l) => !l.startsWith('IRQ '));
}

function valueOf(answer: string): bigint | null {
  const m = /^OK (0x[0-9a-f]+)$/.exec(answer);
  return m ? BigInt(m[1]!) : null;
}

for (const [name, { rules }] of Object.entries(manifest.scripts)) {
  test(`qtest differential vs QEMU: ${name}`, (t) => {
    if (qemuMissing) {
      console.log(`skipping ${name}: ${qemuMissing}`);
      t.skip(qemuMissing);
      return;
    }
    const text = readFileSync(join(dir, name), 'utf8');
    const lines = text.split('\n').filter((l) => l !== '');
    const ours = runTimevisor(lines);
    const theirs = runQemu(text);
    assert.equal(theirs.length, lines.length, `QEMU answered ${theirs.length} of ${lines.length} lines`);
    assert.equal(ours.length, lines.length);
    let identical = 0;
    let tolerated = 0;
    for (let i = 0; i < lines.length; i++) {
      const rule = rules[String(i + 1)];
      const where = `${name}:${i + 1} '${lines[i]}' (QEMU ${theirs[i]}, timevisor ${ours[i]})`;
      if (rule?.ignore) continue;
      if (rule?.mask || rule?.within !== undefined) {
        const a = valueOf(theirs[i]!);
        const b = valueOf(ours[i]!);
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
