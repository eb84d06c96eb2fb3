// The TFTP data plane as seen from the main thread: a worker thread that answers every request and moves every
// DATA block, ACK and retransmission, on sockets it drives itself through libc (see dataplane-worker.ts), so no
// packet waits for the main thread (SQLite commits, the API, GC). The main thread keeps what needs the rest of
// heph: the allowlist, metrics, logs and the timeline. The two talk in compact messages; the worker sleeps in
// epoll_wait, so the main thread wakes it through an eventfd.
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { startWorker } from '../threads.ts';
import type { RequestLimits } from './requests.ts';
import type { EndReason, TransferInfo } from './server.ts';
import { eventfdCreate, eventfdSignal, loadSys } from '../net/syscalls.ts';

export const PLANE_THREAD = 'heph-tftp';

/** What the worker needs to serve: where to listen, and the limits (validated settings). */
export interface PlaneConfig extends RequestLimits {
  addresses: string[];
  port: number;
  retries: number;
  busyPollMicros: number;
  /** The allowlist at start, in shared memory; later changes come as 'file' messages. */
  files: Record<string, Uint8Array>;
}

export type ToWorker =
  /** Adds or replaces a name (bytes in shared memory: handed over without a copy), or removes it (no data). */
  | { t: 'file'; name: string; data?: Uint8Array }
  | { t: 'stop' };

export interface Warning {
  kind: string;
  fields: Record<string, unknown>;
  msg: string;
}

/** What the worker tells the main thread about transfers, batched per wake-up of the worker. */
export type Report =
  /** fd: the transfer's socket, closed by the main thread should the worker die before it does. */
  | { t: 'open'; id: number; info: TransferInfo; fd: number }
  | { t: 'end'; id: number; reason: EndReason; detail?: string; bytes: number }
  /** Counters since the last report (sent only when one changed) and a sample of what to log. */
  | { t: 'events'; retransmits: number; errors: Record<string, number>; warnings: Warning[] };

export type FromWorker =
  /** fds: the listening sockets and the epoll set, which the main thread closes should the worker die. */
  | { t: 'ready'; ports: Record<string, number>; fds: number[] }
  | { t: 'bind-failed'; address: string; code: string; message: string }
  | { t: 'reports'; reports: Report[] }
  | { t: 'stopped' };

export class DataPlane {
  private stopped: (() => void) | undefined;
  private exiting = false;
  private gone = false;
  /** Descriptors the worker opened and has not closed: a worker that dies leaves them to this thread. */
  private readonly fds = new Set<number>();
  private readonly transferFds = new Map<number, number>();

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly wakeFd: number,
  ) {}

  /**
   * Starts the worker and resolves once it listens (with the ports it bound), or rejects with the bind error.
   * `onReport` gets every report; `onExit` an unexpected end of the worker (its transfers are gone with it).
   * `priorityBoost`: threads.packetPriority, which the worker's thread setup applies (threads.ts).
   */
  static start(config: PlaneConfig, priorityBoost: number, onReport: (r: Report) => void, onExit: (err: Error) => void): Promise<{ plane: DataPlane; ports: Record<string, number> }> {
    const sys = loadSys();
    const wakeFd = eventfdCreate(sys);
    const { port1, port2 } = new MessageChannel();
    const worker = startWorker(PLANE_THREAD, new URL('./dataplane-worker.ts', import.meta.url), { port: port2, wakeFd, config }, [port2], { priorityBoost });
    const plane = new DataPlane(worker, port1, wakeFd);
    return new Promise((resolve, reject) => {
      let ready = false;
      let failure: Error | undefined;
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'ready') {
          ready = true;
          for (const fd of m.fds) plane.fds.add(fd);
          resolve({ plane, ports: m.ports });
        } else if (m.t === 'bind-failed') {
          failure = Object.assign(new Error(m.message), { code: m.code, address: m.address });
        } else if (m.t === 'stopped') {
          // It closed every descriptor it had: none are this thread's to close (their numbers may be reused).
          plane.fds.clear();
          plane.transferFds.clear();
          plane.stopped?.();
        } else {
          for (const r of m.reports) {
            plane.track(r);
            onReport(r);
          }
        }
      });
      worker.on('error', (err) => (failure = err));
      worker.on('exit', (code) => {
        plane.gone = true;
        sys.close(wakeFd);
        // A worker that stopped cleanly closed its own; one that died did not, and a successor must bind again.
        for (const fd of [...plane.fds, ...plane.transferFds.values()]) sys.close(fd);
        plane.stopped?.();
        const err = failure ?? new Error(`TFTP data plane exited with code ${code}`);
        if (!ready) reject(err);
        else if (!plane.exiting) onExit(err);
      });
    });
  }

  private track(r: Report): void {
    if (r.t === 'open') this.transferFds.set(r.id, r.fd);
    else if (r.t === 'end') this.transferFds.delete(r.id);
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
