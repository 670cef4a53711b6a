// Writing a sweep's result files as one step: each file to a temporary name first, all renamed only once
// every one is complete, so an interrupted or failed sweep leaves no half-written result file.
import { join, resolve } from 'node:path';
import type { sweepFiles } from '../world/index.ts';
import { AtomicFile } from './output.ts';

export const SWEEP_FILES = ['results.csv', 'results.parquet', 'summary.json'] as const;

export function writeSweepFiles(dir: string, files: ReturnType<typeof sweepFiles>, option: string): string[] {
  const open: AtomicFile[] = [];
  try {
    for (const name of SWEEP_FILES) {
      const f = new AtomicFile(join(resolve(dir), name), option);
      open.push(f);
      const body = files[name];
      if (typeof body === 'string') f.write(body);
      else f.writeBytes(body);
    }
    for (const f of open) f.commit();
  } catch (e) {
    for (const f of open) f.abort();
    throw e;
  }
  return open.map((f) => f.path);
}

/** Remove the temporary files a writer in this process may have left in `dir`. */
export function discardSweepFiles(dir: string): void {
  for (const name of SWEEP_FILES) AtomicFile.discard(join(resolve(dir), name));
}
