import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';

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
 *
 * `semiSpaceMb`: start the worker's young generation at this size instead of V8's 1 MiB, for a worker that leaves a
 * little garbage per packet and must not pause for it: the DHCP data plane, whose scavenges (one every few hundred
 * packets, 1–8 ms each on a busy 2-CPU VM) were the p99 of DISCOVER → OFFER. The same storm saw 96 scavenges at the
 * default, 32 at 8 MiB and 15 at 16 MiB, but 16 MiB also raised heph's peak RSS in the boot storm by ~40 MiB. V8
 * reads the flag when the isolate is created, so it is set until the worker is online (a worker started meanwhile
 * gets it too); other workers keep the default, as each semi-space is memory touched.
 */
export function startWorker(module: URL, data: unknown, transfer: TransferListItem[] = [], opts: { semiSpaceMb?: number; resourceLimits?: ResourceLimits } = {}): Worker {
  const path = fileURLToPath(module);
  // Packages resolve from the module's own directory, as they would unbundled.
  const script = `(function (require, module, exports) {\n${bundle(path)}\n})(require('node:module').createRequire(${JSON.stringify(path)}), { exports: {} }, {});`;
  if (opts.semiSpaceMb) setFlagsFromString(`--min-semi-space-size=${opts.semiSpaceMb}`);
  const worker = new Worker(script, { eval: true, workerData: { data }, transferList: transfer, ...(opts.resourceLimits ? { resourceLimits: opts.resourceLimits } : {}) });
  if (opts.semiSpaceMb) {
    const reset = (): void => setFlagsFromString('--min-semi-space-size=0');
    worker.once('online', reset);
    worker.once('exit', reset);
  }
  return worker;
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
