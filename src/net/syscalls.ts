// The libc calls heph's data planes make directly (koffi FFI): UDP sockets, epoll, eventfd, sendfile.
// Why not dgram / streams: in lock-step TFTP every block is a round trip, and Node's per-datagram path (a 64 KiB
// receive allocation, a JS callback through libuv, a send request object) cost about twice what dnsmasq spends per
// block; a file streamed through JavaScript costs a copy and a garbage-collected buffer per chunk (http/sendfile.ts).
// Each call here is one syscall plus ~0.15 us of FFI. All functions return the raw result; callers check < 0.
import koffi from 'koffi';
import { errnoError, libc } from './libc.ts';

export const AF_INET = 2;
const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const MSG_DONTWAIT = 0x40;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const SOL_UDP = 17;
/** UDP GSO (Linux 4.18): one send of several equal-size datagrams, split by the kernel (or the NIC). */
const UDP_SEGMENT = 103;
export const EPOLLIN = 1;
export const EPOLLOUT = 4;
export const EPOLLONESHOT = 1 << 30;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const F_DUPFD_CLOEXEC = 1030;
const EFD_NONBLOCK = 0o4000;
export const EAGAIN = 11;
export const EINTR = 4;

/** struct epoll_event: packed on x86-64 (12 bytes), naturally aligned elsewhere (16 bytes). */
export const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
export const EPOLL_DATA_OFFSET = process.arch === 'x64' ? 4 : 8;

export interface Sys {
  socket(domain: number, type: number, proto: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  getsockname(fd: number, addr: Buffer, len: Buffer): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  /** The hot calls take the msghdr's address as a number (see addressOf): koffi then skips its buffer checks. */
  recvmsg(fd: number, msgAt: number, flags: number): number;
  sendmsg(fd: number, msgAt: number, flags: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Buffer | null): number;
  epoll_wait(epfd: number, eventsAt: number, max: number, timeoutMs: number): number;
  eventfd(initval: number, flags: number): number;
  read(fd: number, buf: Buffer, len: number): number;
  write(fd: number, buf: Buffer, len: number): number;
  close(fd: number): number;
  /** offset: an 8-byte buffer holding the file position, advanced by the kernel. */
  sendfile(out: number, inFd: number, offset: Buffer, count: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  sched_yield(): number;
  /** addr and len may be null; flags SOCK_NONBLOCK | SOCK_CLOEXEC. */
  accept4(fd: number, addr: Buffer | null, len: Buffer | null, flags: number): number;
  /** 0 when there is no interface of that name (in this thread's network namespace). */
  if_nametoindex(name: string): number;
}

let sys: Sys | undefined;

/** The libc functions of this thread (koffi loads per thread). */
export function loadSys(): Sys {
  if (!sys) {
    const lib = libc();
    const f = <T>(decl: string): T => lib.func(decl) as T;
    sys = {
      socket: f('int socket(int, int, int)'),
      bind: f('int bind(int, const void *, uint32_t)'),
      getsockname: f('int getsockname(int, void *, void *)'),
      setsockopt: f('int setsockopt(int, int, int, const void *, uint32_t)'),
      // ssize_t as a JS number: koffi returns int64 as a number when it fits.
      recvmsg: f('long recvmsg(int, uintptr_t, int)'),
      sendmsg: f('long sendmsg(int, uintptr_t, int)'),
      sendto: f('long sendto(int, const void *, size_t, int, const void *, uint32_t)'),
      epoll_create1: f('int epoll_create1(int)'),
      epoll_ctl: f('int epoll_ctl(int, int, int, void *)'),
      epoll_wait: f('int epoll_wait(int, uintptr_t, int, int)'),
      eventfd: f('int eventfd(unsigned int, int)'),
      read: f('long read(int, void *, size_t)'),
      write: f('long write(int, const void *, size_t)'),
      close: f('int close(int)'),
      sendfile: f('long sendfile(int, int, void *, size_t)'),
      if_nametoindex: f('unsigned int if_nametoindex(const char *)'),
      fcntl: f('int fcntl(int, int, int)'),
      sched_yield: f('int sched_yield()'),
      accept4: f('int accept4(int, void *, void *, int)'),
    };
  }
  return sys;
}

/**
 * The address of a buffer's first byte, as a number (user-space addresses fit in 53 bits). The caller keeps the
 * buffer referenced for as long as the address is used: Node never moves a buffer's bytes.
 */
export function addressOf(b: Buffer): number {
  return b.length === 0 ? 0 : Number(koffi.address(b));
}

/** Writes a pointer-sized value (LP64) without BigInt arithmetic. */
export function writePointer(b: Buffer, at: number, value: number): void {
  b.writeUInt32LE(value % 0x1_0000_0000, at);
  b.writeUInt32LE(Math.floor(value / 0x1_0000_0000), at + 4);
}

/** struct msghdr (LP64): name, namelen, iov, iovlen, control, controllen, flags. */
export const MSGHDR_SIZE = 56;
export const MSGHDR_NAMELEN = 8;
export const MSGHDR_IOVLEN = 24;
export const IOVEC_SIZE = 16;

/** A msghdr over `iovCount` iovecs (in `iov`) to or from `name`; the caller fills the iovecs and iovlen. */
export function msghdr(name: Buffer, iov: Buffer): Buffer {
  const m = Buffer.alloc(MSGHDR_SIZE);
  writePointer(m, 0, addressOf(name));
  m.writeUInt32LE(name.length, MSGHDR_NAMELEN);
  writePointer(m, 16, addressOf(iov));
  return m;
}

/** A struct sockaddr_in for an IPv4 address and port. */
export function sockaddr(address: string, port: number): Buffer {
  const sa = Buffer.alloc(16);
  sa.writeUInt16LE(AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`not an IPv4 address: ${address}`);
  for (let i = 0; i < 4; i++) sa[4 + i] = parts[i]!;
  return sa;
}

export function sockaddrAddress(sa: Buffer): string {
  return `${sa[4]}.${sa[5]}.${sa[6]}.${sa[7]}`;
}

export function sockaddrPort(sa: Buffer): number {
  return sa.readUInt16BE(2);
}

/** A non-blocking UDP socket bound to address:port (0: a new TID). Throws an errno-coded error. */
export function boundUdpSocket(s: Sys, address: string, port = 0): { fd: number } {
  const fd = s.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw errnoError('socket');
  if (s.bind(fd, sockaddr(address, port), 16) < 0) {
    const err = errnoError('bind');
    s.close(fd);
    throw err;
  }
  return { fd };
}

/** The local port a socket is bound to. */
export function boundPort(s: Sys, fd: number): number {
  const sa = Buffer.alloc(16);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(16);
  if (s.getsockname(fd, sa, len) < 0) throw errnoError('getsockname');
  return sockaddrPort(sa);
}

/**
 * Asks for a receive buffer of `bytes`. FORCE passes net.core.rmem_max (root or CAP_NET_ADMIN); without that
 * privilege the capped size is still better than the default (~208 KiB, about 160 queued small datagrams).
 */
export function setReceiveBuffer(s: Sys, fd: number, bytes: number): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(bytes);
  if (s.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, v, 4) < 0) s.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, v, 4);
}

/** Sets the GSO segment size of a socket (0 turns it off); false when the kernel refuses. */
export function setGso(s: Sys, fd: number, segment: number): boolean {
  const v = Buffer.alloc(4);
  v.writeInt32LE(segment);
  return s.setsockopt(fd, SOL_UDP, UDP_SEGMENT, v, 4) === 0;
}

export function epollCreate(s: Sys): number {
  const fd = s.epoll_create1(SOCK_CLOEXEC);
  if (fd < 0) throw errnoError('epoll_create1');
  return fd;
}

/** Watches fd for `events` (input by default); the event carries `data` (the descriptor itself by default). */
export function epollAdd(s: Sys, epfd: number, fd: number, events = EPOLLIN, data = fd): void {
  if (s.epoll_ctl(epfd, EPOLL_CTL_ADD, fd, epollEvent(events, data)) < 0) throw errnoError('epoll_ctl');
}

/** Re-arms a watched fd (after an EPOLLONESHOT event). */
export function epollMod(s: Sys, epfd: number, fd: number, events: number, data: number): void {
  if (s.epoll_ctl(epfd, EPOLL_CTL_MOD, fd, epollEvent(events, data)) < 0) throw errnoError('epoll_ctl');
}

function epollEvent(events: number, data: number): Buffer {
  const ev = Buffer.alloc(EPOLL_EVENT_SIZE);
  ev.writeUInt32LE(events >>> 0, 0);
  ev.writeInt32LE(data, EPOLL_DATA_OFFSET);
  return ev;
}

/** A close-on-exec duplicate of fd, numbered 3 or above. */
export function dupFd(s: Sys, fd: number): number {
  const copy = s.fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) throw errnoError('fcntl(F_DUPFD_CLOEXEC)');
  return copy;
}

export function epollDel(s: Sys, epfd: number, fd: number): void {
  s.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, null);
}

export function eventfdCreate(s: Sys): number {
  const fd = s.eventfd(0, EFD_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) throw errnoError('eventfd');
  return fd;
}

const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
const drain = Buffer.alloc(8);

export function eventfdSignal(s: Sys, fd: number): void {
  s.write(fd, ONE, 8);
}

export function eventfdClear(s: Sys, fd: number): void {
  s.read(fd, drain, 8);
}
