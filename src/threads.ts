import { buildSync } from 'esbuild';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';

const bundles = new Map<string, string>();

/**
 * The module and everything it imports from this repository as one CommonJS script (packages stay `require`s).
 * Why not tsx in the worker: heph itself runs without it (bin/heph.js runs a bundle of src/), and where a loader is
 * registered (tests) a worker does not inherit it; registering it again costs every worker a second thread running
 * the loader hooks, ~25 MiB of memory and its own garbage collections (measured: three workers 143 MiB with tsx,
 * 69 MiB as plain scripts). Bundling takes 10-80 ms once per module.
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

const THREAD_SETUP = fileURLToPath(new URL('./net/thread-setup.ts', import.meta.url));

/** The bundle of `path` as a script of its own, its packages resolved from its directory as they would be unbundled. */
const script = (path: string): string => `(function (require, module, exports) {\n${bundle(path)}\n})(require('node:module').createRequire(${JSON.stringify(path)}), { exports: {} }, {});`;

/**
 * A worker thread running the TypeScript module at `module` (pass `new URL('./x.ts', import.meta.url)`), its OS
 * thread named `name` (heph-…, 15 bytes at most, for top -H); `data` arrives as workerData.data, and anything in it
 * that must move rather than be copied (a MessagePort) goes in `transfer`. The module must not use import.meta (a
 * script has none) nor top-level await.
 *
 * `semiSpaceMb`: start the worker's young generation at this size instead of V8's 1 MiB, for a worker that leaves a
 * little garbage per packet and must not pause for it: the DHCP data plane, whose scavenges (one every few hundred
 * packets, 1–8 ms each on a busy 2-CPU VM) were the p99 of DISCOVER → OFFER. The same storm saw 96 scavenges at the
 * default, 32 at 8 MiB and 15 at 16 MiB, but 16 MiB also raised heph's peak RSS in the boot storm by ~40 MiB. V8
 * reads the flag when the isolate is created, so it is set until the worker is online (a worker started meanwhile
 * gets it too); other workers keep the default, as each semi-space is memory touched.
 *
 * `priorityBoost`: the thread runs this many nice levels above the thread that starts it (`threads.packetPriority`,
 * for the DHCP and TFTP packet planes; see settings.ts for why). Whether it could is priorityShortfall's to tell.
 */
export function startWorker(name: string, module: URL, data: unknown, transfer: TransferListItem[] = [], opts: { semiSpaceMb?: number; resourceLimits?: ResourceLimits; priorityBoost?: number } = {}): Worker {
  const code = `${script(THREAD_SETUP)}\n${script(fileURLToPath(module))}`;
  if (opts.semiSpaceMb) setFlagsFromString(`--min-semi-space-size=${opts.semiSpaceMb}`);
  const worker = new Worker(code, { eval: true, workerData: { data, threadName: name, priorityBoost: opts.priorityBoost ?? 0 }, transferList: transfer, ...(opts.resourceLimits ? { resourceLimits: opts.resourceLimits } : {}) });
  if (opts.semiSpaceMb) {
    const reset = (): void => setFlagsFromString('--min-semi-space-size=0');
    worker.once('online', reset);
    worker.once('exit', reset);
  }
  return worker;
}

/** The nice value of the thread named `name` (as thread-setup.ts named it) in process `pid`, if it is running. */
export function threadNice(name: string, pid: number | 'self' = 'self'): number | undefined {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trimEnd() !== name) continue;
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // The fields after the parenthesised name start at field 3 (state); nice is field 19 (proc(5)).
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    } catch {
      // That thread ended meanwhile.
    }
  }
  return undefined;
}

/**
 * Why the running worker `name`, started with `priorityBoost: boost`, is not at the priority asked for; undefined
 * when it is (or nothing was asked). Call it once the worker has said it serves: the setup has run by then.
 */
export function priorityShortfall(name: string, boost: number): string | undefined {
  if (boost <= 0) return undefined;
  const want = Math.max(-20, getPriority(0) - boost);
  const got = threadNice(name);
  if (got === undefined) return `no thread named ${name} is running`;
  if (got <= want) return undefined;
  return `${name} runs at nice ${got}, not ${want}: raising a thread's priority needs root or CAP_SYS_NICE`;
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

/**
 * One worker thread kept running. launch() resolves when the worker says it serves and rejects if it fails before
 * that; a worker that fails after that is reported (`died`) and started again after RestartBackoff's delay
 * (`restarted` once it serves again).
 */
export class Supervisor<M> {
  worker: Worker | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly backoff = new RestartBackoff();

  constructor(
    /** Names the worker in errors: "the <what> exited". */
    private readonly what: string,
    private readonly hooks: {
      start(): Worker;
      /** 'ready' once the worker serves; an Error if it cannot (before that: launch() rejects with it). */
      message(m: M, worker: Worker): 'ready' | Error | undefined;
      died(err: Error, retryMs: number): void;
      restarted(): void;
    },
  ) {}

  launch(): Promise<void> {
    const worker = this.hooks.start();
    this.worker = worker;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    return new Promise((resolve, reject) => {
      let up = false;
      let failed = false;
      const fail = (err: Error): void => {
        if (failed) return;
        failed = true;
        if (!up) reject(err);
        else if (!this.stopping) this.died(err);
      };
      worker.on('error', fail);
      worker.on('message', (m: M) => {
        const verdict = this.hooks.message(m, worker);
        if (verdict === 'ready') {
          up = true;
          this.backoff.up();
          resolve();
        } else if (verdict instanceof Error) {
          fail(verdict);
          void worker.terminate();
        }
      });
      void this.exited.then(() => fail(new Error(up ? `the ${this.what} exited` : `the ${this.what} exited at start`)));
    });
  }

  /** Asks the worker to stop (`ask` sends it whatever it needs), and ends it if it has not exited after `waitMs`. */
  async stop(ask: (worker: Worker) => void, waitMs: number): Promise<void> {
    if (this.stopping) return this.exited;
    this.stopping = true;
    clearTimeout(this.retry);
    const worker = this.worker;
    if (!worker) return;
    ask(worker);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), waitMs)));
    if ((await Promise.race([this.exited, late])) === 'late') await worker.terminate();
    clearTimeout(timer);
  }

  private died(err: Error): void {
    const retryMs = this.backoff.next();
    this.hooks.died(err, retryMs);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.stopping) return;
      this.launch().then(
        () => this.hooks.restarted(),
        (e: unknown) => this.stopping || this.died(e as Error),
      );
    }, retryMs);
  }
}
