import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { bindFailure } from '../errors.ts';

/** One Talos kernel log line (protocols.md §2.6), fields checked; absent or mistyped optional fields are null. */
export interface KmsgLine {
  msg: string;
  seq: number | null;
  clock: number | null;
  facility: string | null;
  priority: string | null;
  talosTime: string | null;
  service: string | null;
}

/** A longer line is not a kernel message: it is dropped (TCP: up to its newline) and counted. */
export const MAX_LINE_BYTES = 64 * 1024;
const MAX_CONNECTIONS = 4096;

/** Parses one JSON line; anything but an object with a string `msg` is an error naming why. */
export function parseKmsgLine(text: string): KmsgLine | { error: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { error: 'not_json' };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { error: 'not_object' };
  const o = v as Record<string, unknown>;
  if (typeof o.msg !== 'string') return { error: 'no_msg' };
  const int = (x: unknown): number | null => (typeof x === 'number' && Number.isSafeInteger(x) ? x : null);
  const str = (x: unknown): string | null => (typeof x === 'string' ? x : null);
  return {
    // Talos keeps the kernel's trailing newline.
    msg: o.msg.replace(/\r?\n$/, ''),
    seq: int(o.seq),
    clock: int(o.clock),
    facility: str(o.facility),
    priority: str(o.priority),
    talosTime: str(o['talos-time']),
    service: str(o['talos-service']),
  };
}

/**
 * Splits a TCP byte stream into lines, bounded: a line longer than `max` bytes is reported once as too long and
 * skipped up to its newline, so one endless line cannot grow memory.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onTooLong: () => void,
    private readonly max = MAX_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      if (this.size + piece.length > this.max) {
        this.reset();
        this.onTooLong();
        continue;
      }
      const line = this.size === 0 ? piece : Buffer.concat([...this.parts, piece]);
      this.reset();
      const text = line.toString('utf8').replace(/\r$/, '');
      if (text.trim() !== '') this.onLine(text);
    }
    const rest = chunk.subarray(start);
    if (this.skipping || rest.length === 0) return;
    if (this.size + rest.length > this.max) {
      this.reset();
      this.skipping = true;
      this.onTooLong();
      return;
    }
    this.parts.push(Buffer.from(rest));
    this.size += rest.length;
  }

  /** Bytes of an unfinished line at the end of the stream: Talos drops a partly written event, so do we. */
  get pending(): number {
    return this.size;
  }

  private reset(): void {
    this.parts = [];
    this.size = 0;
  }
}

export interface KmsgSink {
  line(ip: string, proto: 'tcp' | 'udp', line: KmsgLine | { error: string }): void;
  dropped(proto: 'tcp' | 'udp', reason: string): void;
}

/** Strips the IPv4-mapped IPv6 prefix so one machine has one IP whichever socket family it reached. */
export function plainIp(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Talos kernel logs as JSON lines: TCP (one object per line, connection kept open) and UDP (one per datagram). */
export class KmsgReceiver {
  private tcp: Server | undefined;
  private udp: UdpSocket | undefined;
  private readonly conns = new Set<Socket>();

  constructor(
    private readonly opts: { listen: string; port: number },
    private readonly sink: KmsgSink,
  ) {}

  get tcpPort(): number {
    const a = this.tcp?.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  get udpPort(): number {
    return this.udp ? this.udp.address().port : 0;
  }

  async start(): Promise<void> {
    const { listen, port } = this.opts;
    const tcp = createServer((sock) => this.accept(sock));
    // One connection per machine is the norm; this only stops a flood from exhausting file descriptors.
    tcp.maxConnections = MAX_CONNECTIONS;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: listen, port }, () => (tcp.off('error', reject), resolve()));
      });
    } catch (err) {
      throw bindFailure({ service: 'events', proto: 'TCP', address: listen, port, setting: 'kmsg.port', err });
    }
    this.tcp = tcp;
    const udp = createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: listen, port }, () => (udp.off('error', reject), resolve()));
      });
    } catch (err) {
      udp.close();
      await this.stop();
      throw bindFailure({ service: 'events', proto: 'UDP', address: listen, port, setting: 'kmsg.port', err });
    }
    // A receive error on a datagram socket is about one packet; it must not stop the process.
    udp.on('error', () => this.sink.dropped('udp', 'socket_error'));
    udp.on('message', (msg, rinfo) => {
      const ip = plainIp(rinfo.address);
      if (msg.length > MAX_LINE_BYTES) return this.sink.dropped('udp', 'too_long');
      // Talos sends one object per datagram; a sender that batches lines into one is understood too.
      for (const text of msg.toString('utf8').split('\n')) if (text.trim() !== '') this.sink.line(ip, 'udp', parseKmsgLine(text.trim()));
    });
    this.udp = udp;
  }

  private accept(sock: Socket): void {
    const ip = plainIp(sock.remoteAddress ?? '');
    this.conns.add(sock);
    const split = new LineSplitter(
      (text) => this.sink.line(ip, 'tcp', parseKmsgLine(text)),
      () => this.sink.dropped('tcp', 'too_long'),
    );
    sock.on('data', (chunk: Buffer) => split.push(chunk));
    sock.on('error', () => {});
    sock.on('close', () => {
      this.conns.delete(sock);
      if (split.pending > 0) this.sink.dropped('tcp', 'truncated');
    });
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
      new Promise<void>((r) => (this.udp ? this.udp.close(() => r()) : r())),
    ]);
    this.tcp = undefined;
    this.udp = undefined;
  }
}
