import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Worker, type TransferListItem } from 'node:worker_threads';

const bundles = new Map<string, string>();

/**
 * The workers are data planes: each packet leaves a little garbage, and V8 starts an isolate with a 1 MiB young
 * generation, so a DHCP storm meant a scavenge every few hundred packets, each 1–8 ms on a busy 2-CPU VM: that was
 * the p99 of DISCOVER → OFFER. Isolates created after this start with 16 MiB semi-spaces (measured on the same
 * storm: 96 scavenges in the DHCP worker → 15, pauses mostly under 1 ms; ~20 MiB more memory in a worker that
 * allocates). The main isolate is configured before any of this runs and keeps V8's defaults.
 */
let workerHeaps = false;
function configureWorkerHeaps(): void {
  if (workerHeaps) return;
  setFlagsFromString('--min-semi-space-size=16');
  workerHeaps = true;
}

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
  configureWorkerHeaps();
  const path = fileURLToPath(module);
  // Packages resolve from the module's own directory, as they would unbundled.
  const script = `(function (require, module, exports) {\n${bundle(path)}\n})(require('node:module').createRequire(${JSON.stringify(path)}), { exports: {} }, {});`;
  return new Worker(script, { eval: true, workerData: { data }, transferList: transfer });
}

/** Delays before restarting a worker that died: 1 s, doubling to 30 s; one that served a minute starts over at 1 s. */
export class RestartBackoff {
  private deaths = 0;
  private upSince = 0;

  /** The worker serves (again). */
  up(): void {
    this.upSince = performance.now();
  }

  /** It died: how long to wait before the next start. */
  next(): number {
    if (performance.now() - this.upSince > 60_000) this.deaths = 0;
    return Math.min(30_000, 1000 * 2 ** this.deaths++);
  }
}
