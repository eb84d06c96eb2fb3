// Batched UDP I/O on a raw IPv4 datagram socket: recvmmsg/sendmmsg over slots in native memory, through koffi.
//
// Why: Node's dgram pays for every datagram (a libuv callback, a Buffer, a SendWrap, a nextTick, one syscall
// each way); under a DHCP storm that was most of heph's time. Here one syscall moves up to `count` datagrams and
// nothing is allocated per datagram: the slots (mmsghdr, iovec, sockaddr_in, payload) live in one native region
// that JS reads and writes through a Buffer view. Blocking calls are meant for a worker thread; the sockets stay
// non-blocking and the caller waits with poll().
import koffi from 'koffi';
import { errnoError, libc } from './libc.ts';

const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
const EAGAIN = 11;
const EINTR = 4;
export const POLLIN = 1;

// x86_64 and aarch64 Linux (LP64): struct msghdr is 56 bytes, struct mmsghdr 64.
const MMSGHDR = 64;
const IOVEC = 16;
const SOCKADDR_IN = 16;
const AF_INET = 2;

interface Calls {
  recvmmsg(fd: number, msgs: bigint, n: number, flags: number, timeout: null): number;
  sendmmsg(fd: number, msgs: bigint, n: number, flags: number): number;
  poll(fds: bigint, n: number, timeoutMs: number): number;
}

let calls: Calls | undefined;
function load(): Calls {
  if (!calls) {
    const lib = libc();
    calls = {
      recvmmsg: lib.func('int recvmmsg(int, void *, unsigned int, int, void *)') as Calls['recvmmsg'],
      sendmmsg: lib.func('int sendmmsg(int, void *, unsigned int, int)') as Calls['sendmmsg'],
      poll: lib.func('int poll(void *, unsigned long, int)') as Calls['poll'],
    };
  }
  return calls;
}

/** Native memory that stays put, with a Buffer view over it and its address. Never freed: owners live as long as their thread. */
function nativeRegion(bytes: number): { view: Buffer; address: bigint } {
  const ptr: unknown = koffi.alloc('uint8_t', bytes);
  const view = Buffer.from(koffi.view(ptr, bytes));
  view.fill(0);
  return { view, address: koffi.address(ptr) };
}

/** `count` datagram slots of `slotBytes` each: the receive side or the send side of a socket loop. */
export class DatagramSlots {
  private readonly mem: Buffer;
  private readonly base: bigint;
  private readonly iovs: number;
  private readonly names: number;
  private readonly data: number;
  private readonly c = load();

  constructor(
    readonly count: number,
    readonly slotBytes: number,
  ) {
    const iovs = count * MMSGHDR;
    this.iovs = iovs;
    this.names = iovs + count * IOVEC;
    this.data = this.names + count * SOCKADDR_IN;
    const region = nativeRegion(this.data + count * slotBytes);
    this.mem = region.view;
    this.base = region.address;
    for (let i = 0; i < count; i++) {
      const h = i * MMSGHDR;
      this.mem.writeBigUInt64LE(this.base + BigInt(this.names + i * SOCKADDR_IN), h); // msg_name
      this.mem.writeUInt32LE(SOCKADDR_IN, h + 8); // msg_namelen
      this.mem.writeBigUInt64LE(this.base + BigInt(iovs + i * IOVEC), h + 16); // msg_iov
      this.mem.writeBigUInt64LE(1n, h + 24); // msg_iovlen
      this.mem.writeBigUInt64LE(this.base + BigInt(this.data + i * slotBytes), iovs + i * IOVEC); // iov_base
      this.mem.writeBigUInt64LE(BigInt(slotBytes), iovs + i * IOVEC + 8); // iov_len
    }
  }

  /** Receives what is queued, up to `count` datagrams, without waiting: 0 when nothing is. Throws on socket errors. */
  receive(fd: number): number {
    for (let i = 0; i < this.count; i++) this.mem.writeUInt32LE(SOCKADDR_IN, i * MMSGHDR + 8);
    const n = this.c.recvmmsg(fd, this.base, this.count, MSG_DONTWAIT, null);
    if (n >= 0) return n;
    const errno = koffi.errno();
    if (errno === EAGAIN || errno === EINTR) return 0;
    throw errnoError('recvmmsg');
  }

  /** Received datagram i (a view, valid until the next receive()). */
  datagram(i: number): Buffer {
    const start = this.data + i * this.slotBytes;
    return this.mem.subarray(start, start + this.mem.readUInt32LE(i * MMSGHDR + 56));
  }

  /** The datagram was longer than a slot and was cut. */
  truncated(i: number): boolean {
    return (this.mem.readInt32LE(i * MMSGHDR + 48) & MSG_TRUNC) !== 0;
  }

  /** The peer of slot i as a 32-bit IPv4 address: the source after receive(), the destination after prepare(). */
  address(i: number): number {
    return this.mem.readUInt32BE(this.names + i * SOCKADDR_IN + 4);
  }

  port(i: number): number {
    return this.mem.readUInt16BE(this.names + i * SOCKADDR_IN + 2);
  }

  /** A view of slot i's payload area to build a datagram in place; pass its length to prepare(). */
  slot(i: number): Buffer {
    const start = this.data + i * this.slotBytes;
    return this.mem.subarray(start, start + this.slotBytes);
  }

  /** Makes slot i a datagram of `length` bytes (already written into slot(i)) to address:port. */
  prepare(i: number, length: number, address: number, port: number): void {
    const h = i * MMSGHDR;
    this.mem.writeUInt32LE(SOCKADDR_IN, h + 8);
    const iovLen = this.iovs + i * IOVEC + 8;
    this.mem.writeUInt32LE(length, iovLen);
    this.mem.writeUInt32LE(0, iovLen + 4);
    const a = this.names + i * SOCKADDR_IN;
    this.mem.writeUInt16LE(AF_INET, a);
    this.mem.writeUInt16BE(port, a + 2);
    this.mem.writeUInt32BE(address >>> 0, a + 4);
  }

  /**
   * Sends slots 0..n-1 with as few syscalls as the kernel allows. A datagram the kernel refuses is skipped and
   * reported (errno, slot); the rest still go out.
   */
  send(fd: number, n: number, onError: (errno: number, slot: number) => void): void {
    let i = 0;
    while (i < n) {
      const r = this.c.sendmmsg(fd, this.base + BigInt(i * MMSGHDR), n - i, 0);
      if (r > 0) {
        i += r;
        continue;
      }
      const errno = koffi.errno();
      if (errno === EINTR) continue;
      onError(errno, i);
      i++;
    }
  }
}

/**
 * poll(2) over a fixed set of descriptors, each asking for input. wait() returns the number ready (0 on timeout
 * or a signal); ready(i) says whether descriptor i has input.
 */
export class Poller {
  private readonly mem: Buffer;
  private readonly address: bigint;
  private readonly c = load();

  constructor(readonly fds: readonly number[]) {
    const region = nativeRegion(fds.length * 8);
    this.mem = region.view;
    this.address = region.address;
    fds.forEach((fd, i) => {
      this.mem.writeInt32LE(fd, i * 8);
      this.mem.writeInt16LE(POLLIN, i * 8 + 4);
    });
  }

  /** timeoutMs −1: until something is ready. */
  wait(timeoutMs: number): number {
    for (let i = 0; i < this.fds.length; i++) this.mem.writeInt16LE(0, i * 8 + 6);
    const n = this.c.poll(this.address, this.fds.length, timeoutMs);
    if (n >= 0) return n;
    if (koffi.errno() === EINTR) return 0;
    throw errnoError('poll');
  }

  /** Descriptor i has input, or an error or hang-up that a read will report. */
  ready(i: number): boolean {
    return this.mem.readInt16LE(i * 8 + 6) !== 0;
  }
}
