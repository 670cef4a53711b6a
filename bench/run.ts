// `npm run bench`: runs every bench/*.bench.ts (or those named on the command line) and prints one
// table of figures. Each bench module default-exports a function that reports rows.
import { readdirSync } from 'node:fs';
import { arch, cpus, release, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  note?: string;
}
export type Bench = (report: (row: BenchRow) => void) => Promise<void> | void;

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(
  `machine: ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${arch()} Linux ${release()}, Node ${process.version}`,
);
const rows: (BenchRow & { bench: string })[] = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: Bench };
  const bench = basename(f, '.bench.ts');
  process.stderr.write(`running ${bench}…\n`);
  await mod.default((row) => {
    rows.push({ bench, ...row });
    const v = row.value >= 100 ? Math.round(row.value).toLocaleString('en-US') : row.value.toPrecision(4);
    console.log(`${bench.padEnd(10)} ${row.name.padEnd(58)} ${v.padStart(16)} ${row.unit}${row.note ? `  (${row.note})` : ''}`);
  });
}
if (process.env.BENCH_JSON) {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(process.env.BENCH_JSON, JSON.stringify(rows, null, 2) + '\n');
}
