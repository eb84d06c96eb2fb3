import type { Worker } from 'node:worker_threads';
import { bindFailure } from '../errors.ts';
import type { Logger } from '../log.ts';
import { RestartBackoff, startWorker } from '../threads.ts';
import type { FromSink, SinkAnswer, SinkCall, SinkWorkerInit, ToSink } from './sink-wire.ts';

export { peerIp, PUBLISH_PATH } from './sink-wire.ts';

/** Returns the status to answer with: OK, or INVALID_ARGUMENT with a message. */
export type PublishHandler = (ip: string, bytes: Uint8Array) => { ok: true } | { ok: false; message: string };

/** How long stop() waits for calls in flight before it ends the thread. */
const STOP_WAIT_MS = 3000;

/**
 * The Talos event sink: plaintext HTTP/2 gRPC (Talos dials it with insecure credentials), one unary method. The
 * transport runs on its own thread (sink-worker.ts); each call's event is recorded here, on the main thread, by
 * `handle`, and the call is answered after that. A thread that dies is started again on the same port.
 */
export class EventSinkServer {
  private worker: Worker | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly backoff = new RestartBackoff();
  port = 0;
  /** Set while the thread is down and being started again: what /healthz says. */
  problem: string | undefined;
  /** Threads started so far (tests). */
  starts = 0;

  constructor(
    private readonly opts: { listen: string; port: number },
    private readonly handle: PublishHandler,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.stopping = false;
    const { listen, port } = this.opts;
    try {
      this.port = await this.launch(port);
    } catch (err) {
      throw bindFailure({ service: 'events', proto: 'TCP', address: listen, port, setting: 'grpc.port', err });
    }
  }

  /** Calls in flight are answered; connections Talos keeps open are closed after a second. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retry);
    const worker = this.worker;
    if (!worker) return;
    worker.postMessage({ kind: 'stop' } satisfies ToSink);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), STOP_WAIT_MS)));
    if ((await Promise.race([this.exited, late])) === 'late') await worker.terminate();
    clearTimeout(timer);
    this.worker = undefined;
  }

  /** Starts a thread bound to `port`: resolves with the port it bound, rejects if it fails before that. */
  private launch(port: number): Promise<number> {
    const worker = startWorker(new URL('./sink-worker.ts', import.meta.url), { listen: this.opts.listen, port } satisfies SinkWorkerInit, [], {
      resourceLimits: { maxYoungGenerationSizeMb: 1 },
    });
    this.worker = worker;
    this.starts++;
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
      worker.on('message', (m: FromSink) => {
        switch (m.kind) {
          case 'bound':
            up = true;
            this.backoff.up();
            resolve(m.port);
            break;
          case 'bind-failed':
            fail(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
            void worker.terminate();
            break;
          case 'calls':
            worker.postMessage({ kind: 'answers', answers: m.calls.map((c) => this.answer(c)) } satisfies ToSink);
            break;
          case 'log':
            this.log.warn({ svc: 'events' }, `grpc-js: ${m.text}`);
            break;
          case 'stopped':
            void worker.terminate();
            break;
        }
      });
      void this.exited.then(() => fail(new Error(up ? 'the event sink thread exited' : 'the event sink thread exited at start')));
    });
  }

  private answer(c: SinkCall): SinkAnswer {
    try {
      const r = this.handle(c.ip, c.bytes);
      return r.ok ? [c.id, 0, ''] : [c.id, 3, r.message];
    } catch (err) {
      // As grpc-js answers a handler that throws: UNKNOWN, and Talos sends the event again later.
      this.log.error({ svc: 'events', ip: c.ip, err: (err as Error).message }, 'a Talos event could not be recorded; answered UNKNOWN');
      return [c.id, 2, 'heph could not record the event'];
    }
  }

  private died(err: Error): void {
    const retryMs = this.backoff.next();
    this.problem = `${err.message}; starting it again in ${retryMs / 1000} s`;
    this.log.error({ svc: 'events', err: err.message, retryMs }, 'the Talos event sink thread died: events are refused until it is started again');
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.stopping) return;
      this.launch(this.port).then(
        () => {
          this.problem = undefined;
          this.log.warn({ svc: 'events' }, 'the Talos event sink is back');
        },
        (e: unknown) => this.stopping || this.died(e as Error),
      );
    }, retryMs);
  }
}
