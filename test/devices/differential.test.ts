// Differential tests: the qtest scripts in test/fixtures/qtest run unchanged against Debian's QEMU and
// against timevisor's pc machine, and every output line must be identical. QEMU starts stopped (-S):
// no CPU runs, SeaBIOS never executes and QEMU_CLOCK_VIRTUAL stays at 0, so its answers are exact and
// there is nothing to tolerate. The only skip is a missing QEMU.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { QtestSession, rtcBaseSeconds } from '../../src/devices/index.ts';

const dir = join(import.meta.dirname, '..', 'fixtures', 'qtest');
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
  qemuArgs: string[];
  rtcBase: string;
  scripts: Record<string, { covers: string }>;
};

// TIMEVISOR_QEMU names another binary (or a missing one, to see the skip path).
const QEMU = process.env.TIMEVISOR_QEMU ?? 'qemu-system-x86_64';
const probe = spawnSync(QEMU, ['--version'], { encoding: 'utf8' });
const qemuMissing =
  (probe.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ? `${QEMU} not installed (Debian package qemu-system-x86)` : null;

/**
 * Run a script through QEMU and return every output line. QEMU keeps running after stdin closes, so it is
 * stopped once every command line has its answer; `timeout` bounds a QEMU that stops answering.
 */
function runQemu(script: string, expected: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('timeout', ['30', QEMU, ...manifest.qemuArgs], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let answers = 0;
    let buf = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (!line.startsWith('IRQ ')) answers++;
      }
      if (answers >= expected) child.kill('SIGTERM');
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', () =>
      answers >= expected ? resolve(lines) : reject(new Error(`QEMU answered ${answers} of ${expected} lines: ${stderr.slice(-500)}`)),
    );
    child.stdin.end(script);
  });
}

function runTimevisor(lines: string[]): string[] {
  const s = new QtestSession({ rtcBaseSeconds: rtcBaseSeconds(manifest.rtcBase, 0n) });
  return lines.flatMap((l) => s.handle(l));
}

for (const name of Object.keys(manifest.scripts)) {
  test(`qtest differential vs QEMU: ${name} answers identically, line for line`, async (t) => {
    if (qemuMissing) {
      console.log(`skipping ${name}: ${qemuMissing}`);
      t.skip(qemuMissing);
      return;
    }
    const text = readFileSync(join(dir, name), 'utf8');
    const lines = text.split('\n').filter((l) => l !== '');
    const ours = runTimevisor(lines);
    const theirs = await runQemu(text, lines.length);
    // Walk both outputs together so a difference names the command that produced it.
    let o = 0;
    let q = 0;
    for (const [i, cmd] of lines.entries()) {
      const where = `${name}:${i + 1} '${cmd}'`;
      do {
        assert.equal(ours[o], theirs[q], `${where}: timevisor ${ours[o]}, QEMU ${theirs[q]}`);
        o++;
        q++;
      } while (ours[o - 1]!.startsWith('IRQ '));
    }
    assert.equal(ours.length, theirs.length, `${name}: timevisor wrote ${ours.length} lines, QEMU ${theirs.length}`);
    console.log(`${name}: ${lines.length} answers and ${ours.length - lines.length} IRQ lines identical to QEMU's`);
  });
}
