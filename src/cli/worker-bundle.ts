// Worker threads of `run` and `sweep` load one bundle of their module, built by esbuild (the compiler tsx
// runs on each file), instead of the TypeScript sources through tsx. Two reasons, both measured
// (docs/performance.md, "worker bundles"): a worker starts without tsx's loader (about a second each), and
// bundled code calls imported functions directly, where tsx's per-file modules reach every import through a
// getter on the exporting module (10 % of a simulation's CPU time in a profile). The bundle is kept in
// node_modules/.cache/timevisor with the size and mtime of every source it was built from, and rebuilt when
// one of them changes. Any failure leaves the worker on tsx, as before.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ENTRY = new URL('./worker-entry.mjs', import.meta.url);

interface Inputs {
  /** [path relative to the project root, size, mtimeMs] of every file bundled. */
  files: [string, number, number][];
}

function cacheDir(): string {
  return process.env.TIMEVISOR_BUNDLE_DIR ?? join(ROOT, 'node_modules', '.cache', 'timevisor');
}

function unchanged(inputs: Inputs): boolean {
  for (const [rel, size, mtimeMs] of inputs.files) {
    try {
      const st = statSync(join(ROOT, rel));
      if (st.size !== size || st.mtimeMs !== mtimeMs) return false;
    } catch {
      return false;
    }
  }
  return inputs.files.length > 0;
}

/** Where the bundle of `module` (a .ts file URL) is, built now if missing or stale; null when bundling is off or fails. */
export async function workerBundle(module: URL): Promise<string | null> {
  if (process.env.TIMEVISOR_NO_BUNDLE === '1') return null;
  try {
    const entry = fileURLToPath(module);
    const dir = cacheDir();
    const key = createHash('sha256').update(entry).digest('hex').slice(0, 12);
    const out = join(dir, `${basename(entry, '.ts')}-${key}.mjs`);
    const meta = `${out}.inputs.json`;
    try {
      if (unchanged(JSON.parse(readFileSync(meta, 'utf8')) as Inputs)) {
        statSync(out);
        return pathToFileURL(out).href;
      }
    } catch {
      // no bundle yet, or an unreadable one: build it
    }
    const { build } = await import('esbuild');
    const r = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      keepNames: true, // errors and classes keep their names, as under tsx
      write: false,
      metafile: true,
      logLevel: 'silent',
      absWorkingDir: ROOT,
    });
    const code = r.outputFiles[0]!.contents;
    const files: Inputs['files'] = Object.keys(r.metafile.inputs).map((rel) => {
      const st = statSync(join(ROOT, rel));
      return [rel, st.size, st.mtimeMs];
    });
    mkdirSync(dir, { recursive: true });
    // another process may build the same bundle at the same time: each writes its own file and renames
    const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, out);
    writeFileSync(`${meta}.${process.pid}.tmp`, JSON.stringify({ files }));
    renameSync(`${meta}.${process.pid}.tmp`, meta);
    return pathToFileURL(out).href;
  } catch {
    return null;
  }
}

/** A worker thread running `module`: from `bundle` (what workerBundle gave) when there is one, else its sources through tsx. */
export function moduleWorker(module: URL, bundle: string | null, data: object = {}): Worker {
  return new Worker(ENTRY, { workerData: { ...data, module: module.href, bundle } });
}
