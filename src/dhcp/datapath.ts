// The main thread's handle on the DHCP data-plane worker (datapath-worker.ts): starts it on descriptors the main
// thread opened (so bind errors surface at startup, with their errno), pushes rejection-set changes to it, and
// hands its outcome records to the service. Stopping wakes the worker through an eventfd: no timeouts to wait out.
import type { Worker } from 'node:worker_threads';
import type { RejectedIdentities } from '../inventory/machines.ts';
import { eventfdCreate, eventfdSignal, loadSys } from '../net/syscalls.ts';
import { startWorker } from '../threads.ts';
import type { PlainRespondConfig } from './policy.ts';

export interface WorkerInit {
  sockets: { fd: number; iface: number; via: 'dhcp' | 'proxy' }[];
  wakeFd: number;
  /** Per interface index. */
  configs: PlainRespondConfig[];
  rejections: RejectedIdentities;
  /** Datagrams per recvmmsg/sendmmsg. */
  batch: number;
  /** Longest a record waits before it is handed to the main thread. */
  flushMs: number;
}

export type ToWorker = { type: 'rejections'; ids: RejectedIdentities } | { type: 'stop' };

export type ToMain =
  | { type: 'ready' }
  | { type: 'outcomes'; records: ArrayBuffer; length: number; sendErrors: number; lastSendError: { errno: number; to: { address: string; port: number } } | undefined }
  | { type: 'socket-error'; iface: number; message: string };

export interface DataPathHandlers {
  outcomes(m: Extract<ToMain, { type: 'outcomes' }>): void;
  socketError(iface: number, message: string): void;
  /** The worker died (a bug: respond() never throws): the service reports itself failed. */
  died(err: Error): void;
}

const STOP_WAIT_MS = 2000;

export class DataPath {
  private exited: Promise<void>;
  private stopping = false;

  private constructor(
    private readonly worker: Worker,
    private readonly wakeFd: number,
  ) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  /** Resolves once the worker waits on the sockets. The descriptors stay the caller's to close (after stop()). */
  static async start(init: Omit<WorkerInit, 'wakeFd'>, on: DataPathHandlers): Promise<DataPath> {
    const wakeFd = eventfdCreate(loadSys());
    const worker = startWorker(new URL('./datapath-worker.ts', import.meta.url), { ...init, wakeFd } satisfies WorkerInit);
    const dp = new DataPath(worker, wakeFd);
    let started = false;
    try {
      await new Promise<void>((resolve, reject) => {
        worker.on('error', (err) => (started ? on.died(err) : reject(err)));
        worker.on('message', (m: ToMain) => {
          if (m.type === 'ready') resolve();
          else if (m.type === 'outcomes') on.outcomes(m);
          else on.socketError(m.iface, m.message);
        });
        void dp.exited.then(() => (started ? dp.stopping || on.died(new Error('the DHCP data-plane worker exited')) : reject(new Error('the DHCP data-plane worker exited at start'))));
      });
    } catch (err) {
      loadSys().close(wakeFd);
      throw err;
    }
    started = true;
    return dp;
  }

  setRejections(ids: RejectedIdentities): void {
    this.send({ type: 'rejections', ids });
  }

  /** Stops the worker; its last records arrive before this resolves. */
  async stop(): Promise<void> {
    if (this.stopping) return this.exited;
    this.stopping = true;
    this.send({ type: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), STOP_WAIT_MS)));
    if ((await Promise.race([this.exited, late])) === 'late') await this.worker.terminate();
    clearTimeout(timer);
    loadSys().close(this.wakeFd);
  }

  private send(m: ToWorker): void {
    this.worker.postMessage(m);
    eventfdSignal(loadSys(), this.wakeFd);
  }
}
