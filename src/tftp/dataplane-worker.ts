// The TFTP data plane worker: one thread, one epoll set, every transfer's socket. Lock-step TFTP is a round-trip
// race, so the path from an ACK to the next DATA is kept to epoll_wait + recvmsg + sendmsg with no allocation and
// no copy: each transfer has a prepared msghdr whose iovecs point at a 4-byte header and straight into the file's
// bytes (the kernel copies them once, as it must), and a window of equal-size blocks leaves in one sendmsg through
// UDP GSO when the kernel allows it. Retransmission deadlines are the epoll_wait timeout. The protocol decisions
// stay in the pure Window (window.ts).
import koffi from 'koffi';
import { performance } from 'node:perf_hooks';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { errnoError } from '../net/libc.ts';
import { decode, encodeError, encodeOack, ErrorCode, Op, printable } from './codec.ts';
import type { FromWorker, PlaneConfig, Report, ToWorker, Warning } from './dataplane.ts';
import { ReplyLimiter } from './limiter.ts';
import { decide, requestKey } from './requests.ts';
import type { EndReason, TransferInfo } from './server.ts';
import {
  addressOf,
  boundPort,
  boundUdpSocket,
  EINTR,
  epollAdd,
  epollCreate,
  epollDel,
  EPOLL_DATA_OFFSET,
  EPOLL_EVENT_SIZE,
  eventfdClear,
  IOVEC_SIZE,
  loadSys,
  MSGHDR_IOVLEN,
  MSGHDR_NAMELEN,
  msghdr,
  MSG_DONTWAIT,
  setGso,
  setReceiveBuffer,
  sockaddrAddress,
  sockaddrPort,
  type Sys,
  writePointer,
} from '../net/syscalls.ts';
import { Window, type Step } from './window.ts';

const { port, wakeFd, config } = (workerData as { data: { port: MessagePort; wakeFd: number; config: PlaneConfig } }).data;
const sys = loadSys();
const epfd = epollCreate(sys);
const MAX_EVENTS = 64;
const events = Buffer.alloc(MAX_EVENTS * EPOLL_EVENT_SIZE);
const eventsAt = addressOf(events);
/** Largest UDP payload, and the most segments one GSO send may carry on every kernel that has GSO. */
const MAX_UDP = 65507;
const MAX_SEGMENTS = 64;
/** For the rare packets that are not DATA: the OACK, ERRORs. */
const scratch = Buffer.allocUnsafe(MAX_UDP);
/** Received datagrams: ACKs are 4 bytes; a longer ERROR message is cut here, which is all a log needs. */
const inbuf = Buffer.allocUnsafe(1024);
const from = Buffer.alloc(16);
const inIov = Buffer.alloc(IOVEC_SIZE);
writePointer(inIov, 0, addressOf(inbuf));
inIov.writeUInt32LE(inbuf.length, 8);
const inMsg = msghdr(from, inIov);
inMsg.writeUInt32LE(1, MSGHDR_IOVLEN);
const inMsg32 = words(inMsg);
const inMsgAt = addressOf(inMsg);
const fromWords = words(from);

/** A 32-bit view for hot-path writes (Buffer's write methods validate every call). */
function words(b: Buffer): Uint32Array {
  return new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
}

class Flow {
  deadline = 0;
  bytes = 0;
  /** GSO segment size set on the socket (0: off; -1: the kernel refused, send one by one). */
  gso = 0;
  /** Blocks one sendmsg may carry. */
  readonly perSend: number;
  /** DATA headers, 4 bytes per block of one send. */
  private readonly headers: Buffer;
  /** Two iovecs per block: its header, then its bytes inside the file. */
  private readonly iov: Buffer;
  private readonly iov32: Uint32Array;
  /** Held so that msgAt stays valid. */
  private readonly msg: Buffer;
  private readonly msgAt: number;
  private readonly msg32: Uint32Array;
  private readonly dataAt: number;
  /** The client's address and port as two words, compared with each datagram's source. */
  readonly peer0: number;
  readonly peer1: number;

  constructor(
    readonly id: number,
    readonly key: string,
    readonly client: string,
    readonly fd: number,
    readonly peer: Buffer,
    readonly data: Buffer,
    readonly window: Window,
    readonly timeoutMs: number,
    readonly oack: Buffer,
  ) {
    this.perSend = Math.max(1, Math.min(MAX_SEGMENTS, window.windowsize, Math.floor(MAX_UDP / (window.blksize + 4))));
    this.headers = Buffer.alloc(4 * this.perSend);
    this.iov = Buffer.alloc(2 * IOVEC_SIZE * this.perSend);
    const headersAt = addressOf(this.headers);
    for (let k = 0; k < this.perSend; k++) {
      this.headers[4 * k + 1] = Op.DATA;
      writePointer(this.iov, 2 * k * IOVEC_SIZE, headersAt + 4 * k);
      this.iov.writeUInt32LE(4, 2 * k * IOVEC_SIZE + 8);
    }
    this.iov32 = words(this.iov);
    this.msg = msghdr(peer, this.iov);
    this.msgAt = addressOf(this.msg);
    this.msg32 = words(this.msg);
    this.dataAt = addressOf(data);
    const peerWords = words(peer);
    this.peer0 = peerWords[0]!;
    this.peer1 = peerWords[1]!;
  }

  /** Points slot k of the next send at DATA block `blk`; returns its payload length. */
  put(k: number, blk: number): number {
    const { blksize } = this.window;
    const offset = (blk - 1) * blksize;
    const size = Math.max(0, Math.min(blksize, this.data.length - offset));
    this.headers[4 * k + 2] = (blk >> 8) & 0xff;
    this.headers[4 * k + 3] = blk & 0xff;
    const at = ((2 * k + 1) * IOVEC_SIZE) >> 2;
    const ptr = this.dataAt + offset;
    this.iov32[at] = ptr % 0x1_0000_0000;
    this.iov32[at + 1] = Math.floor(ptr / 0x1_0000_0000);
    this.iov32[at + 2] = size;
    return size;
  }

  /** Sends the first n slots in one sendmsg. */
  flush(n: number): number {
    this.msg32[MSGHDR_IOVLEN >> 2] = 2 * n;
    return sys.sendmsg(this.fd, this.msgAt, 0);
  }
}

const flows = new Map<number, Flow>();

// Reports are batched per wake-up: nothing is posted in the steady state of a transfer.
let retransmits = 0;
let errors: Record<string, number> = {};
let warnings: Warning[] = [];
let dirty = false;

function post(m: FromWorker): void {
  parentPort!.postMessage(m);
}

function count(kind: string, warning?: Omit<Warning, 'kind'>): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
  dirty = true;
  // One sample per kind per wake-up is plenty: the main thread rate-limits the log anyway.
  if (warning && !warnings.some((w) => w.kind === kind)) warnings.push({ kind, ...warning });
}

/** Reports for the main thread, sent as one message per wake-up: each message wakes that thread. */
let outbox: Report[] = [];

function report(r: Report): void {
  outbox.push(r);
}

function flush(): void {
  if (dirty) {
    outbox.push({ t: 'events', retransmits, errors, warnings });
    retransmits = 0;
    errors = {};
    warnings = [];
    dirty = false;
  }
  if (outbox.length === 0) return;
  post({ t: 'reports', reports: outbox });
  outbox = [];
}

// The request side: one socket per server address, answered here so that a request never waits for the main thread.
interface Listener {
  fd: number;
  address: string;
}
const listeners = new Map<number, Listener>();
/** The allowlist, mirrored from the main thread's FileTable (shared memory: no copies). */
const files = new Map<string, Buffer>();
const byKey = new Map<string, Flow>();
const perClient = new Map<string, number>();
/** ERROR replies per source address: a burst of 64, then 16 a second (security.md T6). */
const replies = new ReplyLimiter(64, 16);
let nextId = 1;

const state = {
  files,
  running: (key: string): boolean => byKey.has(key),
  get total(): number {
    return flows.size;
  },
  perClient: (ip: string): number => perClient.get(ip) ?? 0,
};

function request(l: Listener, now: number): void {
  inMsg32[MSGHDR_NAMELEN >> 2] = 16;
  const n = sys.recvmsg(l.fd, inMsgAt, MSG_DONTWAIT);
  if (n < 0) return;
  const ip = sockaddrAddress(from);
  const clientPort = sockaddrPort(from);
  const d = decide(inbuf.subarray(0, n), l.address, ip, clientPort, state, config);
  if (d.do === 'drop') return count(d.kind, { fields: d.fields, msg: d.msg });
  if (d.do === 'refuse') return refuse(l.fd, from, d.kind, d.code, d.message, d.fields);
  let fd = -1;
  try {
    fd = boundUdpSocket(sys, l.address).fd;
    epollAdd(sys, epfd, fd);
  } catch (err) {
    if (fd >= 0) sys.close(fd);
    return refuse(l.fd, from, 'socket_error', ErrorCode.UNDEFINED, 'Server error', { ip, err: (err as Error).message });
  }
  const { n: neg, data } = d;
  const oack = neg.oack.length > 0 ? encodeOack(neg.oack) : Buffer.alloc(0);
  const window = new Window(data.length, neg.blksize, neg.windowsize, oack.length > 0, config.retries);
  const key = requestKey(l.address, ip, clientPort);
  const f = new Flow(nextId++, key, ip, fd, Buffer.from(from), data, window, neg.timeoutMs, oack);
  flows.set(fd, f);
  byKey.set(key, f);
  perClient.set(ip, (perClient.get(ip) ?? 0) + 1);
  // The client first: the report waits for the end of this wake-up anyway.
  act(f, window.start(), now);
  const info: TransferInfo = { file: d.file, client: ip, port: clientPort, local: l.address, size: data.length, blksize: neg.blksize, windowsize: neg.windowsize, options: Object.fromEntries(neg.oack) };
  report({ t: 'open', id: f.id, info, fd });
}

function refuse(fd: number, to: Buffer, kind: string, code: number, message: string, fields: Record<string, unknown>): void {
  count(kind, { fields, msg: `TFTP request refused: ${message}` });
  // The source may be spoofed: past its burst it gets no more replies, so refusals cannot be used to reflect.
  if (!replies.take(sockaddrAddress(to), Date.now())) return count('reply_rate_limited');
  const err = encodeError(code, message);
  err.copy(scratch, 0);
  sys.sendto(fd, scratch, err.length, 0, to, 16);
}

function act(f: Flow, step: Step, now: number): void {
  switch (step.do) {
    case 'send':
      send(f, step.from, step.to, now);
      return;
    case 'done':
      end(f, 'done', undefined, false);
      return;
    case 'give-up':
      end(f, 'timeout', 'no ACK after all retransmissions', false);
      return;
    case 'ignore':
      return;
  }
}

function sendto(f: Flow, len: number): void {
  if (sys.sendto(f.fd, scratch, len, 0, f.peer, 16) < 0) count('send_error', { fields: { err: errnoError('sendto').code }, msg: 'TFTP send failed; the retransmission timeout recovers' });
}

/** Sends blocks from..to (0..0 is the OACK); up to perSend consecutive blocks leave in one sendmsg (GSO). */
function send(f: Flow, from: number, to: number, now: number): void {
  f.deadline = now + f.timeoutMs;
  if (from === 0) {
    f.oack.copy(scratch, 0);
    gso(f, 0);
    sendto(f, f.oack.length);
    return;
  }
  const { blksize } = f.window;
  let b = from;
  while (b <= to) {
    // Only the last segment of a GSO send may be short: TFTP's short block is the last one anyway.
    const n = f.gso < 0 ? 1 : Math.min(f.perSend, to - b + 1);
    let bytes = 0;
    for (let k = 0; k < n; k++) bytes += f.put(k, b + k);
    if (n > 1) {
      gso(f, blksize + 4);
      if (f.gso < 0) continue;
    }
    if (f.flush(n) < 0) {
      const err = errnoError('sendmsg');
      // A route without checksum offload refuses GSO (EIO): this transfer goes on one block per send.
      if (n > 1 && (err.code === 'EIO' || err.code === 'EINVAL' || err.code === 'EOPNOTSUPP')) {
        f.gso = -1;
        continue;
      }
      count('send_error', { fields: { err: err.code }, msg: 'TFTP send failed; the retransmission timeout recovers' });
    } else f.bytes += bytes;
    b += n;
  }
}

/** Sets the socket's GSO segment size when it differs (a packet longer than it would be split). */
function gso(f: Flow, size: number): void {
  if (f.gso < 0 || f.gso === size) return;
  f.gso = setGso(sys, f.fd, size) ? size : -1;
}

function receive(f: Flow, now: number): void {
  inMsg32[MSGHDR_NAMELEN >> 2] = 16;
  const n = sys.recvmsg(f.fd, inMsgAt, MSG_DONTWAIT);
  if (n < 0) return;
  if (fromWords[0] !== f.peer0 || fromWords[1] !== f.peer1) {
    // RFC 1350 §4: tell the stranger, and carry on with the real client.
    const err = encodeError(ErrorCode.UNKNOWN_TID, 'Unknown transfer ID');
    err.copy(scratch, 0);
    gso(f, 0);
    sys.sendto(f.fd, scratch, err.length, 0, from, 16);
    count('unknown_tid', { fields: { ip: sockaddrAddress(from), port: sockaddrPort(from) }, msg: 'TFTP packet from an unknown transfer ID' });
    return;
  }
  if (n >= 4 && inbuf[0] === 0 && inbuf[1] === Op.ACK) {
    const step = f.window.ack((inbuf[2]! << 8) | inbuf[3]!);
    if (step.do === 'ignore') count(step.why === 'duplicate' ? 'duplicate_ack' : 'unexpected_ack');
    else act(f, step, now);
    return;
  }
  const p = decode(inbuf.subarray(0, n));
  // EDK2 asks for tsize and then aborts with ERROR 8 on purpose: an ERROR from the client is an ending.
  if (p.op === Op.ERROR) end(f, 'client-ended', `client sent ERROR ${p.code}: ${p.message}`, false);
  else count(p.op === 'malformed' ? 'short_packet' : 'stray_packet', { fields: { ip: sockaddrAddress(from), bytes: n }, msg: 'TFTP packet not expected in a transfer, dropped' });
}

function end(f: Flow, reason: EndReason, detail: string | undefined, tellClient: boolean): void {
  if (tellClient) {
    const err = encodeError(ErrorCode.UNDEFINED, printable(detail ?? 'Transfer ended'));
    err.copy(scratch, 0);
    gso(f, 0);
    sendto(f, err.length);
  }
  flows.delete(f.fd);
  byKey.delete(f.key);
  const left = (perClient.get(f.client) ?? 1) - 1;
  if (left > 0) perClient.set(f.client, left);
  else perClient.delete(f.client);
  epollDel(sys, epfd, f.fd);
  sys.close(f.fd);
  report({ t: 'end', id: f.id, reason, ...(detail === undefined ? {} : { detail }), bytes: f.bytes });
}

/** Retransmits (or gives up) what is due; returns the milliseconds to the next deadline, -1 (forever) with none. */
function expire(now: number): number {
  let next = Infinity;
  for (const f of flows.values()) {
    if (f.deadline <= now) {
      const step = f.window.timeout();
      if (step.do === 'send') {
        retransmits += step.to - step.from + 1;
        dirty = true;
      }
      act(f, step, now);
      if (!flows.has(f.fd)) continue;
    }
    if (f.deadline < next) next = f.deadline;
  }
  return next === Infinity ? -1 : Math.max(0, Math.ceil(next - now));
}

/** Takes the main thread's messages; false once told to stop. */
function inbox(): boolean {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const msg = m.message as ToWorker;
    if (msg.t === 'file') {
      if (msg.data) files.set(msg.name, Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
      else files.delete(msg.name);
    } else {
      for (const f of [...flows.values()]) end(f, 'stopped', 'heph is stopping', true);
      return false;
    }
  }
  return true;
}

// Busy-polling: measured with our own client pinned to one CPU and the server to the other (as on two machines),
// lock-step 1 MiB took 70 ms with epoll_wait sleeping and 24-29 ms polling for 50 us, at no more server CPU: a
// sleeping thread pays a cross-CPU wake-up per ACK. Yielding between polls leaves the CPU to anything else runnable
// on it (the client itself, when the scheduler put both on one CPU). A poll that found nothing (a far client, a
// lost ACK) turns polling off for the next few waits, so a slow network costs a fraction of a CPU, not all of it.
// With many transfers at once the thread is rarely idle and throughput, not one client's round trip, is what
// counts: polling is for the few-transfers case only.
const POLL_BACKOFF = 8;
const POLL_MAX_FLOWS = 8;
let pollBackoff = 0;

function waitForEvents(timeoutMs: number): number {
  if (config.busyPollMicros > 0 && flows.size > 0 && flows.size <= POLL_MAX_FLOWS && timeoutMs !== 0) {
    if (pollBackoff > 0) pollBackoff--;
    else {
      const until = performance.now() + config.busyPollMicros / 1000;
      do {
        const n = sys.epoll_wait(epfd, eventsAt, MAX_EVENTS, 0);
        if (n !== 0) return n;
        sys.sched_yield();
      } while (performance.now() < until);
      pollBackoff = POLL_BACKOFF;
    }
  }
  return sys.epoll_wait(epfd, eventsAt, MAX_EVENTS, timeoutMs);
}

function loop(): void {
  let wait = -1;
  for (;;) {
    const n = waitForEvents(wait);
    const now = performance.now();
    // EINTR: no events this time, but deadlines still count.
    if (n < 0 && koffi.errno() !== EINTR) throw errnoError('epoll_wait');
    // The main thread's messages first: a file registered just before a request for it must be there.
    for (let i = 0; i < n; i++) {
      if (events.readInt32LE(i * EPOLL_EVENT_SIZE + EPOLL_DATA_OFFSET) !== wakeFd) continue;
      eventfdClear(sys, wakeFd);
      if (!inbox()) return;
    }
    for (let i = 0; i < n; i++) {
      const fd = events.readInt32LE(i * EPOLL_EVENT_SIZE + EPOLL_DATA_OFFSET);
      try {
        const f = flows.get(fd);
        if (f) receive(f, now);
        else {
          const l = listeners.get(fd);
          if (l) request(l, now);
        }
      } catch (err) {
        // One bad datagram must never take the other transfers down.
        count('internal', { fields: { err: (err as Error).message }, msg: 'TFTP handler failed' });
      }
    }
    wait = expire(now);
    flush();
  }
}

/**
 * A rack powered on at once sends its RRQs together, and the default buffer holds ~160: the rest would be dropped
 * and each of those machines would wait out its firmware's retransmit timeout (seconds). 4 MiB holds thousands.
 */
const LISTEN_RCVBUF = 4 << 20;

/** One socket per server address on the TFTP port; the ports bound, or why not. */
function listen(s: Sys): FromWorker {
  for (const address of config.addresses) {
    let fd = -1;
    try {
      fd = boundUdpSocket(s, address, config.port).fd;
      setReceiveBuffer(s, fd, LISTEN_RCVBUF);
      listeners.set(fd, { fd, address });
      epollAdd(s, epfd, fd);
    } catch (err) {
      if (fd >= 0 && !listeners.has(fd)) s.close(fd);
      for (const l of listeners.values()) s.close(l.fd);
      const e = err as NodeJS.ErrnoException;
      return { t: 'bind-failed', address, code: e.code ?? 'unknown', message: e.message };
    }
  }
  const ports: Record<string, number> = {};
  for (const l of listeners.values()) ports[l.address] = boundPort(s, l.fd);
  return { t: 'ready', ports, fds: [...listeners.keys(), epfd] };
}

for (const [name, data] of Object.entries(config.files)) files.set(name, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
epollAdd(sys, epfd, wakeFd);
const ready = listen(sys);
post(ready);
if (ready.t === 'ready') {
  loop();
  flush();
  for (const l of listeners.values()) sys.close(l.fd);
}
sys.close(epfd);
post({ t: 'stopped' });
port.close();
