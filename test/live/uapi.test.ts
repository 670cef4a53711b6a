// Runs everywhere gcc and linux-libc-dev exist (no /dev/kvm needed): the live backend's hard-coded
// struct layouts and ioctl numbers must match the kernel's UAPI header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compileC, cToolchainMissing } from '../../src/live/cc.ts';
import { uapiTable } from '../../src/live/uapi.ts';

const source = fileURLToPath(new URL('../fixtures/c/kvm_layout.c', import.meta.url));

test('FFI struct layouts, ioctl numbers and constants equal <linux/kvm.h> (compiled C program)', (t) => {
  const missing = cToolchainMissing();
  if (missing) {
    console.log(`skipping UAPI layout check: ${missing}`);
    t.skip(missing);
    return;
  }
  const prog = compileC(source, 'kvm_layout');
  try {
    const r = spawnSync(prog.path, { encoding: 'utf8' });
    assert.equal(r.status, 0);
    const fromC = new Map(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([k, v]) => [k!, Number(v)] as const),
    );
    const ours = uapiTable();
    assert.deepEqual([...ours.keys()].sort(), [...fromC.keys()].sort(), 'the C program and uapi.ts list the same names');
    for (const [k, v] of ours) assert.equal(v, fromC.get(k), k);
  } finally {
    prog.dispose();
  }
});
