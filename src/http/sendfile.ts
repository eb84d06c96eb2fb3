// Large file responses through sendfile(2). Streaming a file through JavaScript costs a read into a fresh buffer, a
// copy into the socket and a garbage-collected megabyte per chunk; in a boot storm that was heph's main CPU cost
// and most of its memory (and made it 0.3–0.6× nginx). Here Node writes the status line, headers and the first
// bytes, as always, so keep-alive and framing stay Node's; the rest moves from page cache to socket inside the kernel,
// driven by one worker thread (sendfile-worker.ts). TLS sockets, and anything without a plain descriptor, stream.
import type { FileHandle } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { finished } from 'node:stream';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { FastifyReply } from 'fastify';
import { dupFd, eventfdCreate, eventfdSignal, loadSys, type Sys } from '../net/syscalls.ts';
import { startWorker } from '../threads.ts';

export interface PumpJob {
  id: number;
  socketFd: number;
  fileFd: number;
  offset: number;
  length: number;
}
export type PumpRequest = { kind: 'job'; job: PumpJob } | { kind: 'cancel'; id: number } | { kind: 'stop' };
export interface PumpResult {
  id: number;
  ok: boolean;
  sent: number;
  error?: string;
}

/** A reader that takes nothing for this long loses its connection (Node's own timeouts do not see these bytes). */
const IDLE_MS = 60_000;
/** Sent the ordinary way, so the head has reached the kernel before the pump writes behind it. */
const FIRST = 64 * 1024;

export class FilePump {
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  private wakeFd = -1;
  private readonly pending = new Map<number, (r: PumpResult) => void>();
  private nextId = 0;
  private sys: Sys | undefined;
  private wakeQueued = false;

  /** `idleMs`: a reader that takes nothing for this long loses its connection. */
  constructor(private readonly idleMs = IDLE_MS) {}

  private start(): Sys {
    if (this.sys) return this.sys;
    const sys = loadSys();
    if (this.wakeFd < 0) this.wakeFd = eventfdCreate(sys);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    port1.unref();
    const worker = startWorker('heph-sendfile', new URL('./sendfile-worker.ts', import.meta.url), { port: port2, wakeFd: this.wakeFd, idleMs: this.idleMs }, [port2]);
    worker.on('message', (r: PumpResult) => {
      this.pending.get(r.id)?.(r);
      this.pending.delete(r.id);
    });
    worker.on('error', (err) => this.failAll(`sendfile worker failed: ${err.message}`));
    worker.on('exit', () => this.failAll('sendfile worker exited'));
    // The pump lives as long as the process, like libuv's thread pool: it must not hold a stopping daemon up.
    // (After the listeners: adding a 'message' listener refs the worker again.)
    worker.unref();
    this.worker = worker;
    this.sys = sys;
    return sys;
  }

  private failAll(error: string): void {
    for (const [id, done] of this.pending) done({ id, ok: false, sent: 0, error });
    this.pending.clear();
    this.sys = undefined;
    this.worker = undefined;
  }

  /**
   * Queues the request and wakes the worker once per turn of the event loop, not per request: in a storm each
   * wake-up made the two threads trade the CPU, and the worker takes every queued request per wake anyway.
   */
  private post(req: PumpRequest): void {
    const sys = this.start();
    this.port!.postMessage(req);
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      eventfdSignal(sys, this.wakeFd);
    });
  }

  /**
   * Starts the worker now rather than at the first large response: starting it means bundling its module (a
   * synchronous esbuild run on the main thread) and booting an isolate, ~0.1 s of CPU that a boot storm paid in its
   * first second, while TFTP, the step that then had the least headroom, was moving the iPXE binaries.
   */
  async warm(): Promise<void> {
    if (this.worker) return;
    this.start();
    await once(this.worker!, 'online');
  }

  /**
   * Ends the worker (transfers in flight fail, their connections are closed); the next send starts a new one.
   * Needed before the process exits: a thread blocked in epoll_wait cannot be interrupted, and Node joins every
   * worker at exit.
   */
  async stop(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    const exited = once(w, 'exit');
    w.ref(); // or the event loop could run dry (and the process end) before the exit arrives
    this.post({ kind: 'stop' });
    await exited;
  }

  /** Sends `length` bytes of `fileFd` from `offset` to the socket (a descriptor the caller keeps); `cancel` gives up early. */
  send(socketFd: number, fileFd: number, offset: number, length: number): { done: Promise<PumpResult>; cancel(): void } {
    let fd: number;
    try {
      // Our own descriptor: if Node closes the socket mid-transfer, its number can never be reused under us.
      fd = dupFd(this.start(), socketFd);
    } catch (err) {
      return { done: Promise.resolve({ id: 0, ok: false, sent: 0, error: (err as Error).message }), cancel() {} };
    }
    this.nextId = (this.nextId % 0x7ffffffe) + 1; // 0 is the worker's wake-up event
    const id = this.nextId;
    const done = new Promise<PumpResult>((resolve) => this.pending.set(id, resolve));
    this.post({ kind: 'job', job: { id, socketFd: fd, fileFd, offset, length } });
    return { done, cancel: () => this.pending.has(id) && this.post({ kind: 'cancel', id }) };
  }
}

const pump = new FilePump();

/** Starts the shared pump ahead of the first large response (the daemon, when it starts). */
export function startFilePump(): Promise<void> {
  return pump.warm();
}

/** Stops the shared pump (the daemon, when it stops). */
export function stopFilePump(): Promise<void> {
  return pump.stop();
}

/** The descriptor behind a plain TCP connection; undefined for TLS (bytes must pass through OpenSSL) or no socket. */
function plainFd(sock: Socket | null): number | undefined {
  if (!sock || sock instanceof TLSSocket) return undefined;
  // libuv's stream handle exposes its descriptor on Unix; there is no public accessor.
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Answers with bytes start..end (inclusive) of `file`, whose status and headers (content-length included) are already
 * set on `reply`. Reads are positional, so other responses may share `file`. `release` (closing `file` unless the
 * caller says otherwise) runs once the response is over, whatever happened; so does the returned promise.
 * `head`, the file's first bytes when the caller keeps them, spares a response from byte 0 its own read.
 */
export async function sendFileRange(reply: FastifyReply, file: FileHandle, start: number, end: number, release: () => Promise<void> = () => file.close(), head?: Buffer): Promise<void> {
  const length = end - start + 1;
  const res = reply.raw;
  const sock = length > FIRST ? await ownSocket(res, reply.request.raw.socket) : res.socket;
  if (sock === undefined) {
    // The connection closed while this response waited its turn: nobody to answer.
    reply.hijack();
    await release();
    return;
  }
  const fd = plainFd(sock);
  if (fd === undefined || length <= FIRST) {
    // autoClose: false (the handle may be shared) also turns autoDestroy off, so 'close' comes only from an error or
    // an abort; finished() also sees the end.
    const stream = file.createReadStream({ start, end, highWaterMark: 1 << 20, autoClose: false });
    finished(stream, () => void release().catch(() => {}));
    await reply.send(stream);
    return;
  }
  reply.hijack();
  try {
    const first = start === 0 && head && head.length >= FIRST ? head.subarray(0, FIRST) : await readFirst(file, start);
    for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) res.setHeader(k, v);
    res.writeHead(reply.statusCode);
    const flushed = await new Promise<boolean>((resolve) => {
      res.once('close', () => resolve(false));
      res.write(first, (err) => resolve(!err));
    });
    if (!flushed || res.destroyed) return;
    const job = pump.send(fd, file.fd, start + FIRST, length - FIRST);
    const onClose = (): void => job.cancel();
    res.once('close', onClose);
    const r = await job.done;
    res.off('close', onClose);
    if (r.ok) res.end();
    else res.destroy();
  } catch {
    res.destroy();
  } finally {
    await release();
  }
}

/**
 * The connection, once this response has it. A request that arrives while the previous response on its connection is
 * still going (pipelined, or a client that read the last byte the pump sent before the main thread heard the pump was
 * done) gets a response that Node queues without a socket; without waiting it would lose sendfile and be streamed
 * through 1 MiB buffers on the main thread. Undefined when the connection closes first.
 */
function ownSocket(res: ServerResponse, conn: Socket): Promise<Socket | undefined> | Socket | undefined {
  if (res.socket) return res.socket as Socket;
  if (conn.destroyed) return undefined;
  return new Promise((resolve) => {
    const assigned = (s: Socket): void => {
      conn.off('close', closed);
      resolve(s);
    };
    const closed = (): void => {
      res.off('socket', assigned);
      resolve(undefined);
    };
    res.once('socket', assigned);
    conn.once('close', closed);
  });
}

async function readFirst(file: FileHandle, start: number): Promise<Buffer> {
  const first = Buffer.allocUnsafe(FIRST);
  const { bytesRead } = await file.read(first, 0, FIRST, start);
  if (bytesRead !== FIRST) throw new Error('file shorter than its recorded size');
  return first;
}
