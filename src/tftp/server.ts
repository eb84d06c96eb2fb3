import { bindFailure } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Service, ServiceHealth } from '../service.ts';
import { priorityShortfall, RestartBackoff } from '../threads.ts';
import { DataPlane, PLANE_THREAD, type PlaneConfig, type Report } from './dataplane.ts';
import type { FileTable } from './files.ts';
import type { TftpMetrics } from './metrics.ts';
import type { Limits } from './options.ts';

export interface ServerOptions extends Limits {
  addresses: string[];
  port: number;
  maxTransfers: number;
  maxTransfersPerClient: number;
  retries: number;
  /** tftp.busyPollMicros */
  busyPollMicros: number;
  /** threads.packetPriority */
  priorityBoost: number;
}

/** What one transfer was, for the timeline and the logs. */
export interface TransferInfo {
  file: string;
  client: string;
  port: number;
  local: string;
  size: number;
  blksize: number;
  windowsize: number;
  options: Record<string, string>;
}

export type EndReason = 'done' | 'client-ended' | 'timeout' | 'stopped';

/** Where transfers are reported (the machine's timeline); kept out of the protocol code. */
export interface TransferReporter {
  started(t: TransferInfo): void;
  ended(t: TransferInfo, how: { reason: EndReason; detail?: string; bytes: number; ms: number }): void;
}

/**
 * The read-only TFTP server: one listening socket per local address, and for each transfer a new socket bound to
 * the address the request arrived on (a new TID, RFC 1350 §4), so a multi-homed host answers from the address the
 * client used. Requests and transfers are served by the data plane worker (dataplane.ts), so that no request
 * waits for this thread (SQLite commits, the API); this side keeps the allowlist, the metrics, the logs and the
 * timeline, from the worker's reports.
 */
export class TftpServer implements Service {
  readonly name = 'tftp';
  private plane: DataPlane | undefined;
  private ports: Record<string, number> = {};
  private readonly active = new Map<number, { info: TransferInfo; began: number }>();
  private state: ServiceHealth = { state: 'stopped' };
  private readonly lastWarn = new Map<string, { at: number; suppressed: number }>();
  private readonly backoff = new RestartBackoff();
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: ServerOptions,
    readonly files: FileTable,
    private readonly log: Logger,
    readonly metrics: TftpMetrics,
    readonly reporter: TransferReporter,
    /** Runs at start, before any socket is opened (the iPXE binaries are checked and registered here). */
    private readonly prepare: () => void = () => {},
  ) {
    files.watch((name, data) => this.plane?.post(data ? { t: 'file', name, data } : { t: 'file', name }));
  }

  async start(): Promise<void> {
    this.state = { state: 'starting' };
    try {
      this.prepare();
      await this.startPlane();
    } catch (err) {
      this.state = { state: 'failed', detail: (err as Error).message };
      throw err;
    }
    this.up();
  }

  private up(): void {
    this.backoff.up();
    this.state = { state: 'up', listening: Object.fromEntries(this.listening().map((l, i) => [i === 0 ? 'udp' : `udp${i}`, `${l.address}:${l.port}`])) };
  }

  async stop(): Promise<void> {
    clearTimeout(this.retry);
    this.retry = undefined;
    this.state = { state: 'stopping' };
    // The worker ends every transfer, tells each client, and reports each ending before it goes.
    await this.plane?.stop();
    this.plane = undefined;
    this.state = { state: 'stopped' };
  }

  health(): ServiceHealth {
    return { ...this.state, ...(this.state.state === 'up' ? { detail: `${this.active.size} active transfers, ${this.files.names().length} files` } : {}) };
  }

  /** Bound addresses and ports (the ports differ per address when tftp.port is 0). */
  listening(): { address: string; port: number }[] {
    return this.plane ? this.opts.addresses.map((address) => ({ address, port: this.ports[address]! })) : [];
  }

  private async startPlane(): Promise<void> {
    // The files go with the worker's start (shared memory, no copy), so it never listens without them.
    const files = Object.fromEntries(this.files.names().map((name) => [name, this.files.get(name)!]));
    const { priorityBoost, ...opts } = this.opts;
    const config: PlaneConfig = { ...opts, files };
    let started: { plane: DataPlane; ports: Record<string, number> };
    try {
      started = await DataPlane.start(config, priorityBoost, (m) => this.onPlane(m), (err) => this.onPlaneExit(err));
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { address?: string };
      if (e.address === undefined) throw err;
      throw bindFailure({ service: 'tftp', proto: 'UDP', address: e.address, port: this.opts.port, setting: 'tftp.port', disable: 'tftp.enabled', err });
    }
    this.plane = started.plane;
    this.ports = started.ports;
    const shortfall = priorityShortfall(PLANE_THREAD, priorityBoost);
    if (shortfall) this.log.warn({ setting: 'threads.packetPriority' }, `TFTP transfers run at normal priority: ${shortfall}`);
    // Names registered while the worker started.
    for (const name of this.files.names()) if (files[name] !== this.files.get(name)) started.plane.post({ t: 'file', name, data: this.files.get(name)! });
    for (const name of Object.keys(files)) if (!this.files.get(name)) started.plane.post({ t: 'file', name });
  }

  /**
   * The worker never throws out of its loop for anything a client sends; if it dies anyway, its transfers are
   * reported as ended (their clients start over), TFTP shows as failed in /healthz, and a new worker binds the
   * same addresses after a backoff (DataPlane closed the dead one's sockets).
   */
  private onPlaneExit(err: Error): void {
    this.plane = undefined;
    for (const id of [...this.active.keys()]) this.ended({ t: 'end', id, reason: 'stopped', detail: 'the data plane failed', bytes: 0 });
    const retryMs = this.backoff.next();
    this.metrics.restarts.inc();
    this.log.error({ err, retryMs }, 'TFTP data plane failed: TFTP is not answering until it restarts');
    this.state = { state: 'failed', detail: `data plane failed: ${err.message}; restarting in ${retryMs} ms` };
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.startPlane().then(
        () => {
          this.log.warn('TFTP data plane restarted: TFTP answers again');
          this.up();
        },
        (e: unknown) => this.onPlaneExit(e as Error),
      );
    }, retryMs);
  }

  private onPlane(m: Report): void {
    switch (m.t) {
      case 'open':
        this.active.set(m.id, { info: m.info, began: Date.now() });
        this.metrics.started.inc();
        this.metrics.active.set(this.active.size);
        this.reporter.started(m.info);
        return;
      case 'end':
        return this.ended(m);
      case 'events':
        if (m.retransmits > 0) this.metrics.retransmits.inc(m.retransmits);
        for (const [kind, n] of Object.entries(m.errors)) this.metrics.errors.inc({ kind }, n);
        for (const w of m.warnings) this.note(w.kind, w.fields, w.msg);
        return;
    }
  }

  private ended(m: Extract<Report, { t: 'end' }>): void {
    const known = this.active.get(m.id);
    if (!known) return;
    this.active.delete(m.id);
    this.metrics.active.set(this.active.size);
    // Counted once per transfer: a metric update per block would cost more than the block's syscall.
    this.metrics.bytes.inc(m.bytes);
    this.metrics.transfers.inc({ outcome: m.reason });
    if (m.reason === 'timeout') this.metrics.errors.inc({ kind: m.reason });
    this.reporter.ended(known.info, { reason: m.reason, ...(m.detail === undefined ? {} : { detail: m.detail }), bytes: m.bytes, ms: Date.now() - known.began });
  }

  /** At most one line per kind every 10 s: a flood of junk must not become a flood of logs. */
  private note(kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const last = this.lastWarn.get(kind);
    if (last && now - last.at < 10_000) {
      last.suppressed++;
      return;
    }
    this.lastWarn.set(kind, { at: now, suppressed: 0 });
    this.log.warn({ kind, ...fields, ...(last?.suppressed ? { suppressed: last.suppressed } : {}) }, msg);
  }
}
