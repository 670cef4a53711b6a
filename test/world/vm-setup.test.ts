// Per-VM set-up and summary shortcuts against the plain computation they replace (issue 15, fleet speed).
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { dmesgLines, type LogLine } from '../../src/guest/index.ts';
import { parseScenarioText } from '../../src/world/scenario.ts';
import { resolveScenario } from '../../src/world/resolve.ts';
import { kernelLogAfterBoot } from '../../src/world/summary.ts';
import { World } from '../../src/world/world.ts';

/** The plain summary's kernel_log: every dmesg line formatted, kept when its stamp reads above 3 s. */
function plainKernelLog(log: readonly LogLine[]): string[] {
  return dmesgLines(log).filter((l) => {
    const m = /^\[\s*(\d+\.\d+)\]/.exec(l);
    return (m ? Number(m[1]) : 0) > 3;
  });
}

test('kernelLogAfterBoot keeps exactly the dmesg lines the plain filter keeps, around the 3-s edge', () => {
  const ts = [0n, 1n, 2_999_999_999n, 3_000_000_000n, 3_000_000_999n, 3_000_001_000n, 3_000_001_001n, 4_000_000_000n, 123_456_789_012_345n];
  const log = ts.map((t, i) => ({ t, line: `line ${i}` }));
  const kept = kernelLogAfterBoot(log);
  assert.deepEqual(kept, plainKernelLog(log));
  assert.deepEqual(kept, ['[    3.000001] line 5', '[    3.000001] line 6', '[    4.000000] line 7', '[123456.789012] line 8']);
});

// an example whose guest prints after boot (RDTSC exiting: the watchdog's verdict)
for (const file of ['rdtsc-exiting.yaml']) {
  test(`${file}: kernel_log is the plain filter of each guest's log`, () => {
    const text = readFileSync(join(import.meta.dirname, '../../examples', file), 'utf8');
    const r = resolveScenario(parseScenarioText(text, file));
    const world = new World(r);
    const booted = r.vms.map((vm) => world.bootVm(vm));
    world.engine.run(r.durationNs);
    const plain = booted.map((b) => plainKernelLog(b.guest.log));
    assert.ok(
      plain.some((l) => l.length > 0),
      'some line after boot',
    );
    assert.deepEqual(
      booted.map((b) => kernelLogAfterBoot(b.guest.log)),
      plain,
    );
  });
}
