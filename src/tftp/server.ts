import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { bindFailure } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Service, ServiceHealth } from '../service.ts';
import { dataHeader, decode, encodeError, encodeOack, ErrorCode, Op, printable, type Request } from './codec.ts';
import { normaliseName, type FileTable } from './files.ts';
import type { TftpMetrics } from './metrics.ts';
import { negotiate, type Limits } from './options.ts';
import { Window, type Step } from './window.ts';

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

/**
 * The read-only TFTP server: one listening socket per local address, and for each transfer a new socket bound to
 * the address the request arrived on (a new TID, RFC 1350 §4), so a multi-homed host answers from the address the
 * client used. Every datagram handler catches everything: one bad packet must never stop the daemon.
 */
export class TftpServer implements Service {
  readonly name = 'tftp';
  private listeners: { address: string; socket: Socket }[] = [];
  private readonly transfers = new Map<string, Transfer>();
  private readonly perClient = new Map<string, number>();
  private state: ServiceHealth = { state: 'stopped' };
  private readonly lastWarn = new Map<string, { at: number; suppressed: number }>();

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
      this.state = { state: 'failed', detail: (err as Error).message };
      throw err;
    }
    this.state = { state: 'up', listening: Object.fromEntries(this.listening().map((l, i) => [i === 0 ? 'udp' : `udp${i}`, `${l.address}:${l.port}`])) };
  }

  async stop(): Promise<void> {
    this.state = { state: 'stopping' };
    for (const l of this.listeners) l.socket.close();
    this.listeners = [];
    for (const t of [...this.transfers.values()]) t.end('stopped', 'heph is stopping', true);
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

  /** At most one line per kind every 10 s: a flood of junk must not become a flood of logs. */
  warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    this.metrics.errors.inc({ kind });
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
    socket.send(encodeError(code, message), rinfo.port, rinfo.address);
  }

  private async onRequest(local: string, socket: Socket, msg: Buffer, rinfo: RemoteInfo): Promise<void> {
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
    await this.begin(key, local, socket, file, data, p, rinfo);
  }

  private async begin(key: string, local: string, listener: Socket, file: string, data: Buffer, req: Request, rinfo: RemoteInfo): Promise<void> {
    // The slot is taken before the first await, so a burst of requests cannot overshoot the limits.
    const t = new Transfer(this, key, rinfo, local);
    this.transfers.set(key, t);
    this.perClient.set(rinfo.address, (this.perClient.get(rinfo.address) ?? 0) + 1);
    this.metrics.active.set(this.transfers.size);
    const n = negotiate(req.options, data.length, this.opts);
    const info: TransferInfo = {
      file,
      client: rinfo.address,
      port: rinfo.port,
      local,
      size: data.length,
      blksize: n.blksize,
      windowsize: n.windowsize,
      options: Object.fromEntries(n.oack),
    };
    try {
      await t.open(info, data, new Window(data.length, n.blksize, n.windowsize, n.oack.length > 0, this.opts.retries), n.timeoutMs, encodeOack(n.oack));
    } catch (err) {
      this.release(t);
      return this.refuse(listener, rinfo, 'socket_error', ErrorCode.UNDEFINED, 'Server error', { err });
    }
  }

  /** Called once by each transfer as it ends. */
  release(t: Transfer): void {
    if (this.transfers.get(t.key) !== t) return;
    this.transfers.delete(t.key);
    const left = (this.perClient.get(t.peer.address) ?? 1) - 1;
    if (left > 0) this.perClient.set(t.peer.address, left);
    else this.perClient.delete(t.peer.address);
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

/** One read transfer on its own socket. */
class Transfer {
  private socket: Socket | undefined;
  private strangers: Socket | undefined;
  private info: TransferInfo | undefined;
  private data: Buffer = Buffer.alloc(0);
  private window: Window | undefined;
  private oack: Buffer = Buffer.alloc(0);
  private timer: NodeJS.Timeout | undefined;
  private bytes = 0;
  private readonly began = Date.now();
  private ended = false;

  constructor(
    private readonly server: TftpServer,
    readonly key: string,
    readonly peer: RemoteInfo,
    private readonly local: string,
  ) {}

  async open(info: TransferInfo, data: Buffer, window: Window, timeoutMs: number, oack: Buffer): Promise<void> {
    // The transfer socket is connected to the client: the kernel then hands it only the client's datagrams, and a
    // send skips the per-datagram address lookup (lock-step speed is all per-packet cost). A second, unconnected
    // socket on the same port gets what anyone else sends to this TID, so strangers still get ERROR 5. (With
    // SO_REUSEADDR two transfers may share a port number; their connected sockets still tell the clients apart.)
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    const strangers = createSocket({ type: 'udp4', reuseAddr: true });
    for (const s of [socket, strangers]) s.on('error', (err) => this.server.warn('socket_error', { err, ip: this.peer.address }, 'TFTP transfer socket error'));
    try {
      await bind(socket, this.local, 0);
      await bind(strangers, this.local, socket.address().port);
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.connect(this.peer.port, this.peer.address, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      strangers.close();
      throw err;
    }
    this.socket = socket;
    this.strangers = strangers;
    this.info = info;
    this.data = data;
    this.window = window;
    this.oack = oack;
    if (this.ended) return this.close();
    socket.on('message', (msg) => {
      try {
        this.onPacket(msg);
      } catch (err) {
        this.server.warn('internal', { err }, 'TFTP transfer handler failed');
      }
    });
    strangers.on('message', (_msg, rinfo) => {
      // RFC 1350 §4: tell the stranger, and carry on with the real client.
      this.server.warn('unknown_tid', { ip: rinfo.address, port: rinfo.port }, 'TFTP packet from an unknown transfer ID');
      strangers.send(encodeError(ErrorCode.UNKNOWN_TID, 'Unknown transfer ID'), rinfo.port, rinfo.address);
    });
    this.timer = setTimeout(() => this.onTimeout(), timeoutMs);
    this.server.metrics.started.inc();
    this.server.reporter.started(info);
    this.act(window.start());
  }

  private onPacket(msg: Buffer): void {
    if (this.ended) return;
    const p = decode(msg);
    if (p.op === Op.ACK) {
      const step = this.window!.ack(p.block);
      if (step.do === 'ignore') this.server.metrics.errors.inc({ kind: step.why === 'duplicate' ? 'duplicate_ack' : 'unexpected_ack' });
      else this.act(step);
    } else if (p.op === Op.ERROR) {
      // EDK2 asks for tsize and then aborts with ERROR 8 on purpose: an ERROR from the client is an ending.
      this.end('client-ended', `client sent ERROR ${p.code}: ${p.message}`, false);
    } else {
      this.server.warn(p.op === 'malformed' ? 'short_packet' : 'stray_packet', { ip: this.peer.address, bytes: msg.length }, 'TFTP packet not expected in a transfer, dropped');
    }
  }

  private onTimeout(): void {
    if (this.ended) return;
    const step = this.window!.timeout();
    if (step.do === 'send') this.server.metrics.retransmits.inc(step.blocks.length);
    this.act(step);
  }

  private act(step: Step): void {
    switch (step.do) {
      case 'send':
        this.send(step.blocks);
        return;
      case 'done':
        this.end('done', undefined, false);
        return;
      case 'give-up':
        this.end('timeout', 'no ACK after all retransmissions', false);
        return;
      case 'ignore':
        return;
    }
  }

  private send(blocks: number[]): void {
    const { socket, data, window } = this;
    for (const b of blocks) {
      if (b === 0) {
        socket!.send(this.oack);
        continue;
      }
      const { offset, length } = window!.range(b);
      const payload = data.subarray(offset, offset + length);
      socket!.send([dataHeader(b), payload]);
      this.bytes += payload.length;
    }
    this.timer?.refresh();
  }

  end(reason: EndReason, detail: string | undefined, tellClient: boolean): void {
    if (this.ended) return;
    this.ended = true;
    if (tellClient && this.socket) this.socket.send(encodeError(ErrorCode.UNDEFINED, detail ?? 'Transfer ended'));
    this.close();
    if (!this.info) return;
    const ms = Date.now() - this.began;
    // Counted once per transfer: a metric update per block costs more than the block's syscall.
    this.server.metrics.bytes.inc(this.bytes);
    this.server.metrics.transfers.inc({ outcome: reason });
    if (reason === 'timeout') this.server.metrics.errors.inc({ kind: reason });
    this.server.reporter.ended(this.info, { reason, ...(detail === undefined ? {} : { detail }), bytes: this.bytes, ms });
  }

  private close(): void {
    clearTimeout(this.timer);
    this.ended = true;
    this.server.release(this);
    // Let queued datagrams (the final ERROR) leave before the socket goes.
    const { socket, strangers } = this;
    if (socket) setImmediate(() => (socket.close(), strangers?.close()));
  }
}
