// The main thread's handle on the DHCP data-plane worker (datapath-worker.ts): starts it on descriptors the main
// thread opened (so bind errors surface at startup, with their errno), pushes rejection-set changes to it, and
// hands its outcome records to the service. Stopping wakes the worker through an eventfd: no timeouts to wait out.
import type { RejectedIdentities } from '../inventory/machines.ts';
import { eventfdCreate, eventfdSignal, loadSys } from '../net/syscalls.ts';
import { startWorker, Supervisor } from '../threads.ts';
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

export const DATAPATH_THREAD = 'heph-dhcp';
const STOP_WAIT_MS = 2000;
/** The worker's young generation (see startWorker): garbage per packet must not become pauses. */
const SEMI_SPACE_MB = 8;

export class DataPath {
  private readonly sup: Supervisor<ToMain>;
  private stopped: Promise<void> | undefined;

  private constructor(
    private readonly init: Omit<WorkerInit, 'wakeFd'>,
    on: DataPathHandlers,
    private readonly wakeFd: number,
    priorityBoost: number,
  ) {
    this.sup = new Supervisor<ToMain>('DHCP data-plane worker', {
      start: () => startWorker(DATAPATH_THREAD, new URL('./datapath-worker.ts', import.meta.url), { ...this.init, wakeFd: this.wakeFd } satisfies WorkerInit, [], { semiSpaceMb: SEMI_SPACE_MB, priorityBoost }),
      message: (m) => {
        if (m.type === 'ready') return 'ready';
        if (m.type === 'outcomes') on.outcomes(m);
        else on.socketError(m.iface, m.message);
        return undefined;
      },
      died: (err, retryMs) => on.died(err, retryMs),
      restarted: () => on.restarted(),
    });
  }

  /**
   * Resolves once the worker waits on the sockets. The descriptors stay the caller's to close (after stop()); they
   * outlive a worker that dies, so its successor serves the same sockets. `priorityBoost`: threads.packetPriority,
   * which the worker's thread setup applies (threads.ts), again for a successor.
   */
  static async start(init: Omit<WorkerInit, 'wakeFd'>, on: DataPathHandlers, priorityBoost = 0): Promise<DataPath> {
    const dp = new DataPath({ ...init }, on, eventfdCreate(loadSys()), priorityBoost);
    try {
      await dp.sup.launch();
    } catch (err) {
      loadSys().close(dp.wakeFd);
      throw err;
    }
    return dp;
  }

  setRejections(ids: RejectedIdentities): void {
    // Kept for a successor, should this worker die.
    this.init.rejections = ids;
    this.send({ type: 'rejections', ids });
  }

  /** Stops the worker; its last records arrive before this resolves. */
  stop(): Promise<void> {
    this.stopped ??= this.sup.stop(() => this.send({ type: 'stop' }), STOP_WAIT_MS).then(() => {
      loadSys().close(this.wakeFd);
    });
    return this.stopped;
  }

  private send(m: ToWorker): void {
    this.sup.worker?.postMessage(m);
    eventfdSignal(loadSys(), this.wakeFd);
  }
}
