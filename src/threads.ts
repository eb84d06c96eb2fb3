import { Worker, type TransferListItem } from 'node:worker_threads';

const BOOT = new URL('./worker-boot.mjs', import.meta.url);

/**
 * A worker thread running the TypeScript module at `module` (pass `new URL('./x.ts', import.meta.url)`); `data`
 * arrives as workerData.data, and anything in it that must move rather than be copied (a MessagePort) goes in `transfer`.
 */
export function startWorker(module: URL, data: unknown, transfer: TransferListItem[] = []): Worker {
  return new Worker(BOOT, { workerData: { module: module.href, data }, transferList: transfer });
}
