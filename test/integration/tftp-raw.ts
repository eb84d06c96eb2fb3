// A hand-driven TFTP peer for tests: sends exactly the bytes a test wants and records every datagram it gets,
// so tests can prove what the server did NOT send (no resend on a duplicate ACK, no DATA before ACK 0).
import { execFile, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { promisify } from 'node:util';
import { decode, encodeRequest, Op, type Malformed, type Packet } from '../../src/tftp/codec.ts';
import { TftpServer } from '../../src/tftp/index.ts';
import type { Daemon } from '../../src/daemon.ts';

export const run = promisify(execFile);

export interface Got {
  p: Packet | Malformed;
  port: number;
  address: string;
  raw: Buffer;
}

export class RawPeer {
  private queue: Got[] = [];
  private waiting: ((g: Got) => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('message', (raw, r) => {
      const g = { p: decode(raw), port: r.port, address: r.address, raw };
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(g);
      } else this.queue.push(g);
    });
  }

  static async open(address = '127.0.0.1'): Promise<RawPeer> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, address, r));
    return new RawPeer(s);
  }

  send(buf: Buffer, port: number, address = '127.0.0.1'): void {
    this.socket.send(buf, port, address);
  }

  rrq(port: number, file: string, options: [string, string][] = [], mode = 'octet', address = '127.0.0.1'): void {
    this.send(encodeRequest(Op.RRQ, file, mode, options), port, address);
  }

  /** The next datagram, or a rejection after `ms`. */
  next(ms = 3000): Promise<Got> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no datagram within ${ms} ms`));
      }, ms);
      this.waiting = (g) => {
        clearTimeout(t);
        resolve(g);
      };
    });
  }

  /** Everything that arrives within `ms`. */
  async collect(ms: number): Promise<Got[]> {
    await new Promise((r) => setTimeout(r, ms));
    const out = this.queue;
    this.queue = [];
    return out;
  }

  /** Closes after datagrams already handed to send() have left (send resolves the address asynchronously). */
  async close(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    this.socket.close();
  }
}

/**
 * A curl download whose output the test drains at about `rate` bytes/s, so it lasts the same time however fast heph
 * is (curl's --limit-rate does not pace TFTP). When the test stops reading, the pipe fills, curl blocks and stops
 * ACKing; each pause is kept well under the retransmission timeout.
 */
export function pacedCurl(url: string, args: string[], rate: number, maxPauseMs = 100): Promise<Buffer> {
  const p = spawn('curl', ['-sS', '--max-time', '120', ...args, '-o', '-', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let got = 0;
  let err = '';
  const t0 = Date.now();
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  p.stdout.on('data', (d: Buffer) => {
    chunks.push(d);
    got += d.length;
    const ahead = (got / rate) * 1000 - (Date.now() - t0);
    if (ahead > 0) {
      p.stdout.pause();
      setTimeout(() => p.stdout.resume(), Math.min(ahead, maxPauseMs));
    }
  });
  return new Promise((resolve, reject) => p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`curl exited ${code}: ${err.trim()}`)))));
}

export function ack(block: number): Buffer {
  return Buffer.from([0, Op.ACK, (block >> 8) & 0xff, block & 0xff]);
}

export function tftpOf(daemon: Daemon): TftpServer {
  const t = daemon.services.find((s) => s instanceof TftpServer);
  if (!(t instanceof TftpServer)) throw new Error('tftp is not enabled');
  return t;
}

/** The value of one sample in a Prometheus text exposition, 0 when absent. */
export function sample(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}
