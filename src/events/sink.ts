import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { bindFailure } from '../errors.ts';
import type { Logger } from '../log.ts';
import { startWorker, Supervisor } from '../threads.ts';
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
  private readonly sup: Supervisor<FromSink>;
  port = 0;
  /** Set while the thread is down and being started again: what /healthz says. */
  problem: string | undefined;
  /** Threads started so far (tests). */
  starts = 0;
  /** Where the thread sends its calls: a port of their own, so takeWaiting() can read it between other work. */
  private calls: MessagePort | undefined;

  constructor(
    private readonly opts: { listen: string; port: number },
    private readonly handle: PublishHandler,
    private readonly log: Logger,
  ) {
    this.sup = new Supervisor<FromSink>('event sink thread', {
      start: () => {
        this.starts++;
        // A thread started again binds the port its predecessor had (the one chosen, when the setting is 0).
        const { port1, port2 } = new MessageChannel();
        this.calls?.close();
        this.calls = port1;
        port1.on('message', (calls: SinkCall[]) => this.record(calls));
        // The worker keeps the process alive; its port need not.
        port1.unref();
        const init: SinkWorkerInit = { listen: opts.listen, port: this.port || opts.port, calls: port2 };
        return startWorker('heph-events', new URL('./sink-worker.ts', import.meta.url), init, [port2], { resourceLimits: { maxYoungGenerationSizeMb: 1 } });
      },
      message: (m, worker) => this.onMessage(m, worker),
      died: (err, retryMs) => {
        this.problem = `${err.message}; starting it again in ${retryMs / 1000} s`;
        log.error({ svc: 'events', err: err.message, retryMs }, 'the Talos event sink thread died: events are refused until it is started again');
      },
      restarted: () => {
        this.problem = undefined;
        log.warn({ svc: 'events' }, 'the Talos event sink is back');
      },
    });
  }

  async start(): Promise<void> {
    const { listen, port } = this.opts;
    try {
      await this.sup.launch();
    } catch (err) {
      throw bindFailure({ service: 'events', proto: 'TCP', address: listen, port, setting: 'grpc.port', err });
    }
  }

  /** Calls in flight are answered; connections Talos keeps open are closed after a second. */
  stop(): Promise<void> {
    return this.sup.stop((w) => w.postMessage({ kind: 'stop' } satisfies ToSink), STOP_WAIT_MS);
  }

  private onMessage(m: FromSink, worker: Worker): 'ready' | Error | undefined {
    switch (m.kind) {
      case 'bound':
        this.port = m.port;
        return 'ready';
      case 'bind-failed':
        return Object.assign(new Error(m.message), m.code ? { code: m.code } : {});
      case 'log':
        this.log.warn({ svc: 'events' }, m.text);
        return undefined;
      case 'stopped':
        void worker.terminate();
        return undefined;
    }
  }

  /**
   * Records the calls that have reached this thread but not yet its event loop. In a boot storm one turn of the
   * main thread serves hundreds of requests (hundreds of milliseconds), and a machine's events go one call at a
   * time: answered at turn ends, its four install events took four turns, 1.5–2 s. Called between requests, they
   * are answered within a request's time.
   */
  takeWaiting(): void {
    const port = this.calls;
    if (!port) return;
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) this.record(m.message as SinkCall[]);
  }

  private record(calls: SinkCall[]): void {
    this.sup.worker?.postMessage({ kind: 'answers', answers: calls.map((c) => this.answer(c)) } satisfies ToSink);
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
}
