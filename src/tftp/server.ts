import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { bindFailure } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Service, ServiceHealth } from '../service.ts';
import { decode, encodeError, encodeOack, ErrorCode, Op, printable, type Request } from './codec.ts';
import { DataPlane, type FromWorker } from './dataplane.ts';
import { normaliseName, type FileTable } from './files.ts';
import type { TftpMetrics } from './metrics.ts';
import { ReplyLimiter } from './limiter.ts';
import { negotiate, type Limits } from './options.ts';

export interface ServerOptions extends Limits {
  addresses: string[];
  port: number;
  maxTransfers: number;
  maxTransfersPerClient: number;
  retries: number;
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

/** A transfer as the main thread knows it; its packets are the data plane's business. */
interface Transfer {
  id: number;
  key: string;
  listener: Socket;
  rinfo: RemoteInfo;
  info: TransferInfo;
  began: number;
  opened: boolean;
}

/**
 * The read-only TFTP server: one listening socket per local address, and for each transfer a new socket bound to
 * the address the request arrived on (a new TID, RFC 1350 §4), so a multi-homed host answers from the address the
 * client used. Requests are checked here; the transfers run in the data plane worker (dataplane.ts). Every
 * datagram handler catches everything: one bad packet must never stop the daemon.
 */
export class TftpServer implements Service {
  readonly name = 'tftp';
  private listeners: { address: string; socket: Socket }[] = [];
  private readonly transfers = new Map<string, Transfer>();
  private readonly byId = new Map<number, Transfer>();
  private nextId = 1;
  private plane: DataPlane | undefined;
  private readonly perClient = new Map<string, number>();
  private state: ServiceHealth = { state: 'stopped' };
  private readonly lastWarn = new Map<string, { at: number; suppressed: number }>();
  /** ERROR replies per source address: a burst of 64, then 16 a second (security.md T6). */
  private readonly replies = new ReplyLimiter(64, 16);

  constructor(
    private readonly opts: ServerOptions,
    readonly files: FileTable,
    private readonly log: Logger,
    readonly metrics: TftpMetrics,
    readonly reporter: TransferReporter,
    /** Runs at start, before any socket is opened (the iPXE binaries are checked and registered here). */
    private readonly prepare: () => void = () => {},
  ) {}

  async start(): Promise<void> {
    this.state = { state: 'starting' };
    try {
      this.prepare();
      this.plane = await this.startPlane();
      for (const address of this.opts.addresses) {
        const socket = createSocket({ type: 'udp4' });
        socket.on('message', (msg, rinfo) => this.guard(() => this.onRequest(address, socket, msg, rinfo)));
        socket.on('error', (err) => this.warn('socket_error', { err, address }, 'TFTP listening socket error'));
        try {
          await bind(socket, address, this.opts.port);
        } catch (err) {
          socket.close();
          throw bindFailure({ service: 'tftp', proto: 'UDP', address, port: this.opts.port, setting: 'tftp.port', disable: 'tftp.enabled', err });
        }
        this.listeners.push({ address, socket });
      }
    } catch (err) {
      for (const l of this.listeners) l.socket.close();
      this.listeners = [];
      await this.plane?.stop();
      this.plane = undefined;
      this.state = { state: 'failed', detail: (err as Error).message };
      throw err;
    }
    this.state = { state: 'up', listening: Object.fromEntries(this.listening().map((l, i) => [i === 0 ? 'udp' : `udp${i}`, `${l.address}:${l.port}`])) };
  }

  async stop(): Promise<void> {
    this.state = { state: 'stopping' };
    for (const l of this.listeners) l.socket.close();
    this.listeners = [];
    // The worker ends every transfer, tells each client, and reports each ending before it goes.
    await this.plane?.stop();
    this.plane = undefined;
    this.state = { state: 'stopped' };
  }

  health(): ServiceHealth {
    return { ...this.state, ...(this.state.state === 'up' ? { detail: `${this.transfers.size} active transfers, ${this.files.names().length} files` } : {}) };
  }

  /** Bound addresses and ports (the ports differ per address when tftp.port is 0). */
  listening(): { address: string; port: number }[] {
    return this.listeners.map((l) => ({ address: l.address, port: l.socket.address().port }));
  }

  private guard(fn: () => void | Promise<void>): void {
    try {
      const p = fn();
      if (p) p.catch((err: unknown) => this.warn('internal', { err }, 'TFTP handler failed'));
    } catch (err) {
      this.warn('internal', { err }, 'TFTP handler failed');
    }
  }

  private startPlane(): Promise<DataPlane> {
    return DataPlane.start(
      (m) => this.onPlane(m),
      (err) => {
        // Its transfers died with it: report them, and start a new one for the next requests.
        this.log.error({ err }, 'TFTP data plane failed; restarting it');
        this.plane = undefined;
        for (const t of [...this.transfers.values()]) this.ended(t, 'stopped', 'the data plane failed', 0);
        if (this.state.state !== 'up') return;
        this.startPlane().then(
          (p) => (this.state.state === 'up' ? (this.plane = p) : void p.stop()),
          (e: unknown) => this.log.error({ err: e }, 'TFTP data plane cannot restart'),
        );
      },
    );
  }

  private onPlane(m: FromWorker): void {
    switch (m.t) {
      case 'open': {
        const t = this.byId.get(m.id);
        if (!t) return;
        t.opened = true;
        this.metrics.started.inc();
        this.reporter.started(t.info);
        return;
      }
      case 'fail': {
        const t = this.byId.get(m.id);
        if (!t) return;
        this.release(t);
        this.refuse(t.listener, t.rinfo, 'socket_error', ErrorCode.UNDEFINED, 'Server error', { err: m.message });
        return;
      }
      case 'end': {
        const t = this.byId.get(m.id);
        if (t) this.ended(t, m.reason, m.detail, m.bytes);
        return;
      }
      case 'events':
        if (m.retransmits > 0) this.metrics.retransmits.inc(m.retransmits);
        for (const [kind, n] of Object.entries(m.errors)) this.metrics.errors.inc({ kind }, n);
        for (const w of m.warnings) this.note(w.kind, w.fields, w.msg);
        return;
      default:
        return;
    }
  }

  private ended(t: Transfer, reason: EndReason, detail: string | undefined, bytes: number): void {
    this.release(t);
    if (!t.opened) return;
    // Counted once per transfer: a metric update per block would cost more than the block's syscall.
    this.metrics.bytes.inc(bytes);
    this.metrics.transfers.inc({ outcome: reason });
    if (reason === 'timeout') this.metrics.errors.inc({ kind: reason });
    this.reporter.ended(t.info, { reason, ...(detail === undefined ? {} : { detail }), bytes, ms: Date.now() - t.began });
  }

  /** Counts an error kind and logs it, rate-limited. */
  warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    this.metrics.errors.inc({ kind });
    this.note(kind, fields, msg);
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

  private refuse(socket: Socket, rinfo: RemoteInfo, kind: string, code: number, message: string, fields: Record<string, unknown> = {}): void {
    this.warn(kind, { ip: rinfo.address, port: rinfo.port, ...fields }, `TFTP request refused: ${message}`);
    // The source may be spoofed: past its burst it gets no more replies, so refusals cannot be used to reflect.
    if (this.replies.take(rinfo.address, Date.now())) socket.send(encodeError(code, message), rinfo.port, rinfo.address);
    else this.metrics.errors.inc({ kind: 'reply_rate_limited' });
  }

  private onRequest(local: string, socket: Socket, msg: Buffer, rinfo: RemoteInfo): void {
    const p = decode(msg);
    // Only requests are answered here: a reply to a stray ACK, DATA or ERROR would make port 69 a reflector.
    const isRequest = p.op === Op.RRQ || p.op === Op.WRQ || (p.op === 'malformed' && (p.opcode === Op.RRQ || p.opcode === Op.WRQ));
    if (!isRequest) return this.warn(p.op === 'malformed' && p.why === 'short' ? 'short_packet' : 'stray_packet', { ip: rinfo.address, bytes: msg.length }, 'TFTP packet on the request port that is not a request, dropped');
    if (p.op === 'malformed') return this.refuse(socket, rinfo, 'malformed', ErrorCode.ILLEGAL_OPERATION, 'Malformed request', { why: p.why });
    if (p.op === Op.WRQ) return this.refuse(socket, rinfo, 'write_request', ErrorCode.ACCESS_VIOLATION, 'Read-only server', { file: printable(p.filename) });
    if (p.mode !== 'octet') return this.refuse(socket, rinfo, 'bad_mode', ErrorCode.ILLEGAL_OPERATION, 'Only octet mode is supported', { mode: printable(p.mode) });
    const file = normaliseName(p.filename);
    const data = this.files.get(file);
    if (!data) return this.refuse(socket, rinfo, 'not_found', ErrorCode.NOT_FOUND, 'File not found', { file: printable(p.filename) });
    const key = `${local}|${rinfo.address}:${rinfo.port}`;
    // A client that resends its RRQ before our first answer arrives must not get a second transfer.
    if (this.transfers.has(key)) return this.warn('duplicate_request', { ip: rinfo.address }, 'TFTP request repeated, ignored');
    if (this.transfers.size >= this.opts.maxTransfers) return this.refuse(socket, rinfo, 'busy', ErrorCode.UNDEFINED, 'Server busy, try again later', { limit: 'tftp.maxTransfers' });
    const mine = this.perClient.get(rinfo.address) ?? 0;
    if (mine >= this.opts.maxTransfersPerClient) return this.refuse(socket, rinfo, 'busy', ErrorCode.UNDEFINED, 'Too many transfers from this client', { limit: 'tftp.maxTransfersPerClient' });
    this.begin(key, local, socket, file, data, p, rinfo);
  }

  private begin(key: string, local: string, listener: Socket, file: string, data: Buffer, req: Request, rinfo: RemoteInfo): void {
    const plane = this.plane;
    if (!plane) return this.refuse(listener, rinfo, 'busy', ErrorCode.UNDEFINED, 'Server busy, try again later', { why: 'data plane restarting' });
    const n = negotiate(req.options, data.length, this.opts);
    const t: Transfer = {
      id: this.nextId++,
      key,
      listener,
      rinfo,
      began: Date.now(),
      opened: false,
      info: { file, client: rinfo.address, port: rinfo.port, local, size: data.length, blksize: n.blksize, windowsize: n.windowsize, options: Object.fromEntries(n.oack) },
    };
    this.transfers.set(key, t);
    this.byId.set(t.id, t);
    this.perClient.set(rinfo.address, (this.perClient.get(rinfo.address) ?? 0) + 1);
    this.metrics.active.set(this.transfers.size);
    plane.post({
      t: 'start',
      id: t.id,
      local,
      address: rinfo.address,
      port: rinfo.port,
      data,
      blksize: n.blksize,
      windowsize: n.windowsize,
      timeoutMs: n.timeoutMs,
      retries: this.opts.retries,
      oack: n.oack.length > 0 ? encodeOack(n.oack) : new Uint8Array(0),
    });
  }

  private release(t: Transfer): void {
    if (this.byId.get(t.id) !== t) return;
    this.byId.delete(t.id);
    this.transfers.delete(t.key);
    const left = (this.perClient.get(t.rinfo.address) ?? 1) - 1;
    if (left > 0) this.perClient.set(t.rinfo.address, left);
    else this.perClient.delete(t.rinfo.address);
    this.metrics.active.set(this.transfers.size);
  }
}

function bind(socket: Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}
