// The TFTP data plane as seen from the main thread: a worker thread that moves every DATA block, ACK and
// retransmission of every transfer, on sockets it drives itself through libc (see dataplane-worker.ts). The main
// thread keeps what needs the rest of heph: request checks, limits, metrics, logs and the timeline. The two talk
// in compact messages; the worker sleeps in epoll_wait, so the main thread wakes it through an eventfd.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { EndReason } from './server.ts';
import { eventfdCreate, eventfdSignal, loadSys } from './syscalls.ts';

/** One transfer for the worker: everything was checked and negotiated on the main thread. */
export interface StartJob {
  t: 'start';
  id: number;
  /** The server address the request arrived on: the transfer's socket binds to it. */
  local: string;
  address: string;
  port: number;
  /** The file, backed by a SharedArrayBuffer: handed over without a copy. */
  data: Uint8Array;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  /** The OACK packet, empty when the first DATA is the answer. */
  oack: Uint8Array;
}

export type ToWorker = StartJob | { t: 'stop' };

export interface Warning {
  kind: string;
  fields: Record<string, unknown>;
  msg: string;
}

export type FromWorker =
  | { t: 'ready' }
  | { t: 'open'; id: number }
  | { t: 'fail'; id: number; message: string }
  | { t: 'end'; id: number; reason: EndReason; detail?: string; bytes: number }
  /** Counters since the last report (sent only when one changed) and a sample of what to log. */
  | { t: 'events'; retransmits: number; errors: Record<string, number>; warnings: Warning[] }
  | { t: 'stopped' };

// The worker runs TypeScript like the rest of heph: tsx is registered in the worker before its module loads.
const BOOT = `const { workerData } = require('node:worker_threads');
import(workerData.tsx).then((m) => { m.register(); return import(workerData.entry); });`;

export class DataPlane {
  private stopped: (() => void) | undefined;
  private exiting = false;
  private gone = false;

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly wakeFd: number,
  ) {}

  /**
   * Starts the worker and resolves once it is ready. `onMessage` gets every report; `onExit` an unexpected end
   * of the worker (its transfers are gone with it).
   */
  static start(onMessage: (m: FromWorker) => void, onExit: (err: Error) => void): Promise<DataPlane> {
    const sys = loadSys();
    const wakeFd = eventfdCreate(sys);
    const { port1, port2 } = new MessageChannel();
    const tsx = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./dataplane-worker.ts', import.meta.url).href;
    const worker = new Worker(BOOT, { eval: true, workerData: { tsx, entry, port: port2, wakeFd }, transferList: [port2] });
    const plane = new DataPlane(worker, port1, wakeFd);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'ready') {
          ready = true;
          resolve(plane);
        } else if (m.t === 'stopped') plane.stopped?.();
        else onMessage(m);
      });
      let failure: Error | undefined;
      worker.on('error', (err) => (failure = err));
      worker.on('exit', (code) => {
        plane.gone = true;
        sys.close(wakeFd);
        plane.stopped?.();
        const err = failure ?? new Error(`TFTP data plane exited with code ${code}`);
        if (!ready) reject(err);
        else if (!plane.exiting) onExit(err);
      });
    });
  }

  post(m: ToWorker): void {
    if (this.gone) return;
    this.port.postMessage(m);
    eventfdSignal(loadSys(), this.wakeFd);
  }

  /** Ends every transfer (the worker tells each client) and the worker; its last reports arrive before this resolves. */
  async stop(): Promise<void> {
    if (this.exiting || this.gone) return;
    this.exiting = true;
    const done = new Promise<void>((r) => (this.stopped = r));
    this.post({ t: 'stop' });
    const timer = setTimeout(() => this.stopped?.(), 2000);
    await done;
    clearTimeout(timer);
    this.port.close();
    await this.worker.terminate();
  }
}
