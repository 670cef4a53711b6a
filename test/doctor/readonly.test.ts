// doctor is read-only by construction: no write API is imported, adjtimex only ever gets a modes = 0
// buffer, and the koffi bindings cover reading calls only. The struct timex offsets are checked against
// the kernel's UAPI header compiled with the system's C compiler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as adjtimex from '../../src/doctor/adjtimex.ts';
import { decodeTimex, STA, TIMEX_LAYOUT, timexQuery } from '../../src/doctor/adjtimex.ts';

const DOCTOR = join(import.meta.dirname, '../../src/doctor');
const sources = readdirSync(DOCTOR)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f, text: readFileSync(join(DOCTOR, f), 'utf8') }));

const READ_ONLY_FS = new Set([
  'statSync',
  'readFileSync',
  'readdirSync',
  'existsSync',
  'openSync',
  'readSync',
  'closeSync',
  'constants',
  'readlinkSync',
  'accessSync',
]);

test('src/doctor imports only reading functions from node:fs, and never fs/promises', () => {
  for (const { file, text } of sources) {
    assert.doesNotMatch(text, /from 'node:fs\/promises'|from 'fs\/promises'|from 'fs'/, file);
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from 'node:fs'/g)) {
      for (const name of m[1]!
        .split(',')
        .map((s) => s.trim().split(/\s+as\s+/)[0]!)
        .filter(Boolean)) {
        assert.ok(READ_ONLY_FS.has(name), `${file} imports ${name} from node:fs`);
      }
    }
    assert.doesNotMatch(
      text,
      /\b(writeFile|appendFile|createWriteStream|mkdir|rmSync|unlink|rename|chmod|chown|truncate|copyFile|symlinkSync|utimes)\w*\s*\(/,
      file,
    );
  }
});

test('the only file opened with openSync is /dev/kmsg, read-only and non-blocking', () => {
  const calls = sources.flatMap(({ text }) => [...text.matchAll(/openSync\(([^)]*)\)/g)].map((m) => m[1]!));
  assert.deepEqual(calls, ["'/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK"]);
});

test('the only programs run are dmesg without arguments (dmesg -c would clear the ring buffer) and chronyc -n tracking/sources (monitoring reports that change nothing)', () => {
  const calls = sources.flatMap(({ text }) => [...text.matchAll(/exec\w*\(([^,]*),\s*(\[[^\]]*\])/g)].map((m) => `${m[1]} ${m[2]}`));
  assert.deepEqual(calls, ["'dmesg' []", "'chronyc' ['-n', 'tracking']", "'chronyc' ['-n', 'sources']"]);
  const cp = sources.flatMap(({ text }) =>
    [...text.matchAll(/import\s*\{([^}]*)\}\s*from 'node:child_process'/g)].map((m) => m[1]!.trim()),
  );
  assert.deepEqual(cp, ['execFileSync']);
});

test('no clock-setting call is declared anywhere in src/doctor', () => {
  for (const { file, text } of sources) {
    assert.doesNotMatch(text, /clock_settime|settimeofday|clock_adjtime|\bstime\b|ntp_adjtime|KVM_SET|ioctl/, file);
  }
  const decls = sources.flatMap(({ text }) => [...text.matchAll(/libc\.func\('([^']*)'/g)].map((m) => m[1]!));
  assert.deepEqual(
    decls.sort(),
    [
      'int adjtimex(void *buf)',
      'int clock_gettime(int clk, void *ts)',
      'long memchr(void *s, int c, long n)',
      'long syscall(long nr, long clk, void *ts)',
    ].sort(),
  );
  // syscall() is only ever called with __NR_clock_gettime.
  const vdso = sources.find((s) => s.file === 'vdso.ts')!.text;
  const sysCalls = [...vdso.matchAll(/\.syscall\(([^,]*),/g)].map((m) => m[1]);
  assert.deepEqual(sysCalls, ['NR_CLOCK_GETTIME_X86_64']);
});

test('adjtimex gets only the all-zero query buffer: modes = 0, and no setter is exported', () => {
  const q = timexQuery();
  assert.equal(q.length, 208);
  assert.ok(
    q.every((b) => b === 0),
    'q.every((b) => b === 0)',
  );
  assert.equal(q.readUInt32LE(TIMEX_LAYOUT.modes), 0);
  const text = sources.find((s) => s.file === 'adjtimex.ts')!.text;
  // The binding is called in exactly one place, with the buffer timexQuery() returned.
  assert.deepEqual(
    [...text.matchAll(/\bfn\(([^)]*)\)/g)].map((m) => m[1]),
    ['buf'],
  );
  assert.match(text, /const buf = timexQuery\(\);\n\s*const ret = fn\(buf\);/);
  const exported = Object.keys(adjtimex).sort();
  assert.deepEqual(exported, ['CLOCK_STATES', 'STA', 'TIMEX_LAYOUT', 'decodeTimex', 'readAdjtimex', 'timexQuery']);
  assert.equal(adjtimex.readAdjtimex.length, 0, 'readAdjtimex takes no arguments');
});

test('decodeTimex: µs offsets scale to ns unless STA_NANO; freq is ppm << 16', () => {
  const b = Buffer.alloc(208);
  b.writeBigInt64LE(-1500n, TIMEX_LAYOUT.offset);
  b.writeBigInt64LE(-655360n, TIMEX_LAYOUT.freq); // -10 ppm
  b.writeInt32LE(STA.PLL, TIMEX_LAYOUT.status);
  b.writeInt32LE(37, TIMEX_LAYOUT.tai);
  b.writeBigInt64LE(10000n, TIMEX_LAYOUT.tick);
  const t = decodeTimex(b, 0);
  assert.equal(t.offsetNs, '-1500000');
  assert.equal(t.freqPpm, -10);
  assert.equal(t.synchronized, true);
  assert.equal(t.state, 'TIME_OK');
  assert.equal(t.tai, 37);
  assert.deepEqual(t.statusFlags, ['STA_PLL']);
  b.writeInt32LE(STA.NANO | STA.UNSYNC, TIMEX_LAYOUT.status);
  const n = decodeTimex(b, 5);
  assert.equal(n.offsetNs, '-1500');
  assert.equal(n.synchronized, false);
  assert.equal(n.state, 'TIME_ERROR');
});

test('struct timex offsets match include/uapi/linux/timex.h', (t) => {
  const cc = spawnSync('cc', ['--version']);
  if (cc.error || cc.status !== 0 || process.arch !== 'x64') {
    const why =
      process.arch !== 'x64' ? `layout is recorded for x86-64, this is ${process.arch}` : 'no C compiler (cc) to compile linux/timex.h';
    console.log(`skip: ${why}`);
    t.skip(why);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'timevisor-timex-'));
  try {
    const fields = Object.keys(TIMEX_LAYOUT).filter((k) => k !== 'size' && !k.startsWith('time_'));
    const src = [
      '#include <stddef.h>',
      '#include <stdio.h>',
      '#include <linux/timex.h>',
      'int main(void) {',
      ...fields.map((f) => `  printf("${f} %zu\\n", offsetof(struct timex, ${f}));`),
      '  printf("time_sec %zu\\n", offsetof(struct timex, time) + offsetof(struct timeval, tv_sec));',
      '  printf("time_usec %zu\\n", offsetof(struct timex, time) + offsetof(struct timeval, tv_usec));',
      '  printf("size %zu\\n", sizeof(struct timex));',
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'timex.c'), src);
    const built = spawnSync('cc', ['-o', join(dir, 'timex'), join(dir, 'timex.c')], { encoding: 'utf8' });
    if (built.status !== 0) {
      const why = `linux/timex.h did not compile (install linux-libc-dev): ${built.stderr.split('\n')[0]}`;
      console.log(`skip: ${why}`);
      t.skip(why);
      return;
    }
    const out = execFileSync(join(dir, 'timex'), { encoding: 'utf8' });
    const got = Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((l) => {
          const [k, v] = l.split(' ');
          return [k!, Number(v)];
        }),
    );
    assert.deepEqual(got, { ...TIMEX_LAYOUT });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
