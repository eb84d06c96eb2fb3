import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { Worker, type TransferListItem } from 'node:worker_threads';

const bundles = new Map<string, string>();

/**
 * The module and everything it imports from this repository as one CommonJS script (packages stay `require`s).
 * Why not tsx in the worker: a worker does not inherit the CLI's loader, and registering it again costs every
 * worker a second thread running the loader hooks, ~25 MiB of memory and its own garbage collections (measured:
 * three workers 143 MiB with tsx, 69 MiB as plain scripts). Bundling takes 10-80 ms once per module.
 */
function bundle(path: string): string {
  let code = bundles.get(path);
  if (code === undefined) {
    const out = buildSync({ entryPoints: [path], bundle: true, platform: 'node', format: 'cjs', packages: 'external', target: 'node20', write: false, logLevel: 'silent' });
    code = out.outputFiles[0]!.text;
    bundles.set(path, code);
  }
  return code;
}

/**
 * A worker thread running the TypeScript module at `module` (pass `new URL('./x.ts', import.meta.url)`); `data`
 * arrives as workerData.data, and anything in it that must move rather than be copied (a MessagePort) goes in
 * `transfer`. The module must not use import.meta (a script has none) nor top-level await.
 */
export function startWorker(module: URL, data: unknown, transfer: TransferListItem[] = []): Worker {
  const path = fileURLToPath(module);
  // Packages resolve from the module's own directory, as they would unbundled.
  const script = `(function (require, module, exports) {\n${bundle(path)}\n})(require('node:module').createRequire(${JSON.stringify(path)}), { exports: {} }, {});`;
  return new Worker(script, { eval: true, workerData: { data }, transferList: transfer });
}
