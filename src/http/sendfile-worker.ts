// The sendfile(2) pump: one worker thread that moves file bytes to client sockets inside the kernel, as nginx does.
// It blocks in epoll_wait over the sockets that are waiting for room (EPOLLOUT, one-shot) and an eventfd the main
// thread writes when it posts a job or a cancel; nothing here touches JavaScript streams or copies a byte.
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import koffi from 'koffi';
import { addressOf, EAGAIN, EINTR, epollAdd, epollCreate, epollDel, epollMod, EPOLL_DATA_OFFSET, EPOLL_EVENT_SIZE, EPOLLONESHOT, EPOLLOUT, eventfdClear, loadSys } from '../net/syscalls.ts';
import type { PumpJob, PumpRequest, PumpResult } from './sendfile.ts';

const { port, wakeFd, idleMs } = (workerData as { data: { port: MessagePort; wakeFd: number; idleMs: number } }).data;

const sys = loadSys();
const MAX_EVENTS = 64;
/** One sendfile call moves at most this much, so a fast reader cannot keep the loop from the other sockets. */
const SLICE = 8 << 20;
/** The wake-up eventfd's event data; jobs are numbered from 1. */
const WAKE = 0;

interface Running extends PumpJob {
  offsetBuf: Buffer;
  end: number;
  registered: boolean;
  lastProgress: number;
}

const ep = epollCreate(sys);
const events = Buffer.alloc(EPOLL_EVENT_SIZE * MAX_EVENTS);
const jobs = new Map<number, Running>();

function finish(j: Running, result: Omit<PumpResult, 'id' | 'sent'>): void {
  jobs.delete(j.id);
  if (j.registered) epollDel(sys, ep, j.socketFd);
  sys.close(j.socketFd);
  const sent = Number(j.offsetBuf.readBigInt64LE(0)) - j.offset;
  parentPort!.postMessage({ id: j.id, sent, ...result } satisfies PumpResult);
}

/** Send until the file range is done or the socket is full; a full socket waits for EPOLLOUT. */
function pump(j: Running, now: number): void {
  for (;;) {
    const left = j.end - Number(j.offsetBuf.readBigInt64LE(0));
    if (left <= 0) return finish(j, { ok: true });
    const n = sys.sendfile(j.socketFd, j.fileFd, j.offsetBuf, Math.min(left, SLICE));
    if (n > 0) {
      j.lastProgress = now;
      continue;
    }
    if (n === 0) return finish(j, { ok: false, error: 'file ended before its recorded size' });
    const e = koffi.errno();
    if (e === EINTR) continue;
    if (e !== EAGAIN) return finish(j, { ok: false, error: `sendfile: errno ${e}` });
    try {
      (j.registered ? epollMod : epollAdd)(sys, ep, j.socketFd, EPOLLOUT | EPOLLONESHOT, j.id);
    } catch (err) {
      return finish(j, { ok: false, error: (err as Error).message });
    }
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

epollAdd(sys, ep, wakeFd, undefined, WAKE);
let running = true;
while (running) {
  // Wake at least once a second: to drop readers that stopped reading, and so that a process exiting without
  // stop() (which joins every worker) waits at most that long for this thread to notice.
  const n = sys.epoll_wait(ep, addressOf(events), MAX_EVENTS, 1000);
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const id = events.readInt32LE(i * EPOLL_EVENT_SIZE + EPOLL_DATA_OFFSET);
    if (id === WAKE) {
      eventfdClear(sys, wakeFd);
      running = take(now);
      continue;
    }
    const j = jobs.get(id);
    if (j) pump(j, now);
  }
  for (const j of jobs.values()) if (now - j.lastProgress > idleMs) finish(j, { ok: false, error: `client read nothing for ${idleMs / 1000} s` });
}
for (const j of [...jobs.values()]) finish(j, { ok: false, error: 'stopping' });
sys.close(ep);
