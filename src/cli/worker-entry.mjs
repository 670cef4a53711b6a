// Entry of worker threads: load TypeScript through tsx (as bin/timevisor.js does for the main thread),
// then the worker module named in workerData.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
