import { Worker } from 'node:worker_threads';

const BOOT = new URL('./worker-boot.mjs', import.meta.url);

/** A worker thread running the TypeScript module at `module` (pass `new URL('./x.ts', import.meta.url)`); `data` arrives as workerData.data. */
export function startWorker(module: URL, data: unknown): Worker {
  return new Worker(BOOT, { workerData: { module: module.href, data } });
}
