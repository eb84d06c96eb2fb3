// The sendfile(2) pump: one worker thread that moves file bytes to client sockets inside the kernel, as nginx does.
// It blocks in epoll_wait over the sockets that are waiting for room (EPOLLOUT, one-shot) and an eventfd the main
// thread writes when it posts a job or a cancel; nothing here touches JavaScript streams or copies a byte.
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import koffi from 'koffi';
import { libc } from '../net/libc.ts';
import type { PumpJob, PumpRequest, PumpResult } from './sendfile.ts';

const { port, wakeFd, idleMs } = (workerData as { data: { port: MessagePort; wakeFd: number; idleMs: number } }).data;

const lib = libc();
const epollCreate = lib.func('int epoll_create1(int)') as (flags: number) => number;
const epollCtl = lib.func('int epoll_ctl(int, int, int, void *)') as (ep: number, op: number, fd: number, ev: Buffer | null) => number;
const epollWait = lib.func('int epoll_wait(int, void *, int, int)') as (ep: number, evs: Buffer, max: number, timeoutMs: number) => number;
const sendfile = lib.func('intptr_t sendfile(int, int, void *, size_t)') as (out: number, inFd: number, offset: Buffer, count: number) => number;
const read = lib.func('intptr_t read(int, void *, size_t)') as (fd: number, buf: Buffer, n: number) => number;
const close = lib.func('int close(int)') as (fd: number) => number;
const errno = (): number => koffi.errno();

const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLLONESHOT = 1 << 30;
const EAGAIN = 11;
const EINTR = 4;
// struct epoll_event is packed on x86-64 (12 bytes, data at 4) and naturally aligned elsewhere (16 bytes, data at 8).
const EV_SIZE = process.arch === 'x64' ? 12 : 16;
const EV_DATA = process.arch === 'x64' ? 4 : 8;
const MAX_EVENTS = 64;
/** One sendfile call moves at most this much, so a fast reader cannot keep the loop from the other sockets. */
const SLICE = 8 << 20;

interface Running extends PumpJob {
  offsetBuf: Buffer;
  end: number;
  registered: boolean;
  lastProgress: number;
}

const ep = epollCreate(EPOLL_CLOEXEC);
const events = Buffer.alloc(EV_SIZE * MAX_EVENTS);
const ev = Buffer.alloc(EV_SIZE);
const jobs = new Map<number, Running>();
const wakeBuf = Buffer.alloc(8);

function ctl(op: number, fd: number, mask: number, data: number): number {
  ev.fill(0);
  ev.writeUInt32LE(mask, 0);
  ev.writeUInt32LE(data, EV_DATA);
  return epollCtl(ep, op, fd, ev);
}

function finish(j: Running, result: Omit<PumpResult, 'id' | 'sent'>): void {
  jobs.delete(j.id);
  if (j.registered) ctl(EPOLL_CTL_DEL, j.socketFd, 0, 0);
  close(j.socketFd);
  const sent = Number(j.offsetBuf.readBigInt64LE(0)) - j.offset;
  parentPort!.postMessage({ id: j.id, sent, ...result } satisfies PumpResult);
}

/** Send until the file range is done or the socket is full; a full socket waits for EPOLLOUT. */
function pump(j: Running, now: number): void {
  for (;;) {
    const left = j.end - Number(j.offsetBuf.readBigInt64LE(0));
    if (left <= 0) return finish(j, { ok: true });
    const n = sendfile(j.socketFd, j.fileFd, j.offsetBuf, Math.min(left, SLICE));
    if (n > 0) {
      j.lastProgress = now;
      continue;
    }
    if (n === 0) return finish(j, { ok: false, error: 'file ended before its recorded size' });
    const e = errno();
    if (e === EINTR) continue;
    if (e !== EAGAIN) return finish(j, { ok: false, error: `sendfile: errno ${e}` });
    const mask = EPOLLOUT | EPOLLONESHOT;
    if (ctl(j.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, j.socketFd, mask, j.id) < 0) return finish(j, { ok: false, error: `epoll_ctl: errno ${errno()}` });
    j.registered = true;
    return;
  }
}

function take(now: number): boolean {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const req = m.message as PumpRequest;
    if (req.kind === 'stop') return false;
    if (req.kind === 'cancel') {
      const j = jobs.get(req.id);
      if (j) finish(j, { ok: false, error: 'cancelled' });
      continue;
    }
    const offsetBuf = Buffer.alloc(8);
    offsetBuf.writeBigInt64LE(BigInt(req.job.offset));
    const j: Running = { ...req.job, offsetBuf, end: req.job.offset + req.job.length, registered: false, lastProgress: now };
    jobs.set(j.id, j);
    pump(j, now);
  }
  return true;
}

ctl(EPOLL_CTL_ADD, wakeFd, EPOLLIN, 0);
let running = true;
while (running) {
  // Wake at least once a second while sockets wait, to drop readers that stopped reading.
  const n = epollWait(ep, events, MAX_EVENTS, jobs.size ? 1000 : -1);
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const id = events.readUInt32LE(i * EV_SIZE + EV_DATA);
    if (id === 0) {
      read(wakeFd, wakeBuf, 8);
      running = take(now);
      continue;
    }
    const j = jobs.get(id);
    if (j) pump(j, now);
  }
  for (const j of jobs.values()) if (now - j.lastProgress > idleMs) finish(j, { ok: false, error: `client read nothing for ${idleMs / 1000} s` });
}
for (const j of [...jobs.values()]) finish(j, { ok: false, error: 'stopping' });
close(ep);
