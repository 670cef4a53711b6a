// Entry of worker threads: the module's bundle when the main thread built one (src/cli/worker-bundle.ts),
// else the TypeScript sources through tsx (as bin/timevisor.js loads them for the main thread).
import { workerData } from 'node:worker_threads';

let bundled = false;
if (workerData.bundle) {
  try {
    await import(workerData.bundle);
    bundled = true;
  } catch (e) {
    // a package the bundle names cannot be found from where it lies: nothing of it ran, load the sources
    if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  }
}
if (!bundled) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(workerData.module);
}
