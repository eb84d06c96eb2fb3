// Large file responses through sendfile(2). Streaming a file through JavaScript costs a read into a fresh buffer, a
// copy into the socket and a garbage-collected megabyte per chunk; in a boot storm that was heph's main CPU cost
// and most of its memory (and made it 0.3–0.6× nginx). Here Node writes the status line, headers and the first
// bytes, as always, so keep-alive and framing stay Node's; the rest moves from page cache to socket inside the kernel,
// driven by one worker thread (sendfile-worker.ts). TLS sockets, and anything without a plain descriptor, stream.
import type { FileHandle } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { FastifyReply } from 'fastify';
import { errnoError, libc } from '../net/libc.ts';
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

interface Calls {
  eventfd(init: number, flags: number): number;
  write(fd: number, buf: Buffer, n: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
}
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const F_DUPFD_CLOEXEC = 1030;

export class FilePump {
  private port: MessagePort | undefined;
  private wakeFd = -1;
  private readonly pending = new Map<number, (r: PumpResult) => void>();
  private nextId = 0;
  private readonly one = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
  private calls: Calls | undefined;

  /** `idleMs`: a reader that takes nothing for this long loses its connection. */
  constructor(private readonly idleMs = IDLE_MS) {}

  private start(): Calls {
    if (this.calls) return this.calls;
    const lib = libc();
    const calls: Calls = {
      eventfd: lib.func('int eventfd(unsigned int, int)') as Calls['eventfd'],
      write: lib.func('intptr_t write(int, const void *, size_t)') as Calls['write'],
      fcntl: lib.func('int fcntl(int, int, int)') as Calls['fcntl'],
    };
    if (this.wakeFd < 0) this.wakeFd = calls.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (this.wakeFd < 0) throw errnoError('eventfd');
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    port1.unref();
    const worker = startWorker(new URL('./sendfile-worker.ts', import.meta.url), { port: port2, wakeFd: this.wakeFd, idleMs: this.idleMs }, [port2]);
    worker.on('message', (r: PumpResult) => {
      this.pending.get(r.id)?.(r);
      this.pending.delete(r.id);
    });
    worker.on('error', (err) => this.failAll(`sendfile worker failed: ${err.message}`));
    worker.on('exit', () => this.failAll('sendfile worker exited'));
    // The pump lives as long as the process, like libuv's thread pool: it must not hold a stopping daemon up.
    // (After the listeners: adding a 'message' listener refs the worker again.)
    worker.unref();
    this.calls = calls;
    return calls;
  }

  private failAll(error: string): void {
    for (const [id, done] of this.pending) done({ id, ok: false, sent: 0, error });
    this.pending.clear();
    this.calls = undefined;
  }

  private post(req: PumpRequest): void {
    this.port!.postMessage(req);
    this.start().write(this.wakeFd, this.one, 8);
  }

  /** Sends `length` bytes of `fileFd` from `offset` to the socket (a descriptor the caller keeps); `cancel` gives up early. */
  send(socketFd: number, fileFd: number, offset: number, length: number): { done: Promise<PumpResult>; cancel(): void } {
    const calls = this.start();
    // Our own descriptor: if Node closes the socket mid-transfer, its number can never be reused under us.
    const fd = calls.fcntl(socketFd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return { done: Promise.resolve({ id: 0, ok: false, sent: 0, error: errnoError('fcntl(F_DUPFD_CLOEXEC)').message }), cancel() {} };
    this.nextId = (this.nextId % 0xfffffffe) + 1; // 0 is the worker's wake-up event
    const id = this.nextId;
    const done = new Promise<PumpResult>((resolve) => this.pending.set(id, resolve));
    this.post({ kind: 'job', job: { id, socketFd: fd, fileFd, offset, length } });
    return { done, cancel: () => this.pending.has(id) && this.post({ kind: 'cancel', id }) };
  }
}

const pump = new FilePump();

/** The descriptor behind a plain TCP connection; undefined for TLS (bytes must pass through OpenSSL) or no socket. */
function plainFd(sock: Socket | null): number | undefined {
  if (!sock || sock instanceof TLSSocket) return undefined;
  // libuv's stream handle exposes its descriptor on Unix; there is no public accessor.
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Answers with bytes start..end (inclusive) of `file`, whose status and headers (content-length included) are already
 * set on `reply`. Takes ownership of `file` and closes it. Resolves when the response is over, whatever happened.
 */
export async function sendFileRange(reply: FastifyReply, file: FileHandle, start: number, end: number): Promise<void> {
  const fd = plainFd(reply.raw.socket);
  const length = end - start + 1;
  if (fd === undefined || length <= FIRST) {
    await reply.send(file.createReadStream({ start, end, highWaterMark: 1 << 20, autoClose: true }));
    return;
  }
  reply.hijack();
  const res = reply.raw;
  try {
    const head = Buffer.allocUnsafe(FIRST);
    const { bytesRead } = await file.read(head, 0, FIRST, start);
    if (bytesRead !== FIRST) throw new Error('file shorter than its recorded size');
    for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) res.setHeader(k, v);
    res.writeHead(reply.statusCode);
    const flushed = await new Promise<boolean>((resolve) => {
      res.once('close', () => resolve(false));
      res.write(head, (err) => resolve(!err));
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
    await file.close();
  }
}
