// The main thread's handle on the DHCP data-plane worker (datapath-worker.ts): starts it on descriptors the main
// thread opened (so bind errors surface at startup, with their errno), pushes rejection-set changes to it, and
// hands its outcome records to the service. Stopping wakes the worker through an eventfd: no timeouts to wait out.
import type { Worker } from 'node:worker_threads';
import type { RejectedIdentities } from '../inventory/machines.ts';
import { eventfdCreate, eventfdSignal, loadSys } from '../net/syscalls.ts';
import { RestartBackoff, startWorker } from '../threads.ts';
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
  /** The worker died (a bug: respond() never throws); another is started in `retryMs`. */
  died(err: Error, retryMs: number): void;
  /** A worker started after a death serves again. */
  restarted(): void;
}

const STOP_WAIT_MS = 2000;
/** The worker's young generation (see startWorker): garbage per packet must not become pauses. */
const SEMI_SPACE_MB = 8;

export class DataPath {
  private worker!: Worker;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private readonly backoff = new RestartBackoff();
  private retry: NodeJS.Timeout | undefined;

  private constructor(
    private readonly init: Omit<WorkerInit, 'wakeFd'>,
    private readonly on: DataPathHandlers,
    private readonly wakeFd: number,
  ) {}

  /**
   * Resolves once the worker waits on the sockets. The descriptors stay the caller's to close (after stop()); they
   * outlive a worker that dies, so its successor serves the same sockets.
   */
  static async start(init: Omit<WorkerInit, 'wakeFd'>, on: DataPathHandlers): Promise<DataPath> {
    const dp = new DataPath({ ...init }, on, eventfdCreate(loadSys()));
    try {
      await dp.launch();
    } catch (err) {
      loadSys().close(dp.wakeFd);
      throw err;
    }
    return dp;
  }

  /** Starts a worker: resolves when it serves, rejects when it fails before that. */
  private launch(): Promise<void> {
    const worker = startWorker(new URL('./datapath-worker.ts', import.meta.url), { ...this.init, wakeFd: this.wakeFd } satisfies WorkerInit, [], { semiSpaceMb: SEMI_SPACE_MB });
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
      worker.on('message', (m: ToMain) => {
        if (m.type === 'ready') {
          up = true;
          this.backoff.up();
          resolve();
        } else if (m.type === 'outcomes') this.on.outcomes(m);
        else this.on.socketError(m.iface, m.message);
      });
      void this.exited.then(() => fail(new Error(up ? 'the DHCP data-plane worker exited' : 'the DHCP data-plane worker exited at start')));
    });
  }

  private died(err: Error): void {
    const retryMs = this.backoff.next();
    this.on.died(err, retryMs);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.stopping) return;
      this.launch().then(
        () => this.on.restarted(),
        (e: unknown) => this.stopping || this.died(e as Error),
      );
    }, retryMs);
  }

  setRejections(ids: RejectedIdentities): void {
    // Kept for a successor, should this worker die.
    this.init.rejections = ids;
    this.send({ type: 'rejections', ids });
  }

  /** Stops the worker; its last records arrive before this resolves. */
  async stop(): Promise<void> {
    if (this.stopping) return this.exited;
    this.stopping = true;
    clearTimeout(this.retry);
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
