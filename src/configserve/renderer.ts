// Renders configs on a worker thread (render-worker.ts). A worker that dies fails the renders it held (the config
// request answers 500 and Talos retries) and the next render starts a new one.
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../threads.ts';
import type { RenderInput, RenderResult } from './render.ts';

export class Renderer {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve(r: RenderResult): void; reject(e: Error): void }>();
  private nextId = 0;
  /** Workers started so far (tests: one serves every render until it dies). */
  starts = 0;

  render(input: RenderInput): Promise<RenderResult> {
    const worker = this.start();
    const id = ++this.nextId;
    // Held (ref'd) only while renders are in flight: an idle renderer must not keep a stopping process alive.
    if (this.pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, input });
    });
  }

  /** Ends the worker (the daemon, when it stops); renders in flight fail. */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
    this.failAll('the renderer stopped');
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // A small young generation: a storm renders a thousand configs in a burst, and V8's default lets this thread's
    // heap grow by tens of MiB for garbage that dies at once (measured: peak RSS 296 MiB instead of 250).
    const w = startWorker(new URL('./render-worker.ts', import.meta.url), {}, [], { resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    this.starts++;
    w.on('message', (m: { id: number; result: RenderResult }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      p?.resolve(m.result);
    });
    const gone = (why: string): void => {
      if (this.worker === w) this.worker = undefined;
      this.failAll(why);
    };
    w.on('error', (err) => gone(`config renderer failed: ${err.message}`));
    w.on('exit', (code) => gone(`config renderer exited (${code})`));
    // (After the listeners: adding a 'message' listener refs the worker again.)
    w.unref();
    this.worker = w;
    return w;
  }

  private failAll(why: string): void {
    for (const p of this.pending.values()) p.reject(new Error(why));
    this.pending.clear();
  }
}
