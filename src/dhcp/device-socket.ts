// UDP sockets bound to one network interface (SO_BINDTODEVICE), which Node's dgram cannot make.
//
// Why: a PXE client has no address yet, so it broadcasts from 0.0.0.0:68 to 255.255.255.255:67. A socket must
// be bound to 0.0.0.0 to receive that, and then it receives it from EVERY interface; Node exposes neither
// IP_PKTINFO nor recvmsg, so the arrival interface is unknowable (dependencies.md). Answering on the wrong
// network is the one thing a proxy-DHCP must never do. So heph creates each socket itself through libc (koffi
// FFI): socket() + SO_REUSEADDR + SO_BROADCAST + SO_BINDTODEVICE(<iface>) + bind(0.0.0.0:port). The DHCP data plane
// does its own batched I/O on that descriptor (src/net/udp-batch.ts); the low-rate port-68 watch hands it to
// dgram with the public `bind({ fd })`. The kernel then delivers to that socket only what arrived
// on that interface (broadcast, unicast and relayed alike), and broadcasts sent from it leave through that
// interface even without a default route. This is the same socket a systemd `.socket` unit with
// BindToDevice= would pass in; no private Node handle is touched. Privileges: port 67 needs root or
// CAP_NET_BIND_SERVICE; kernels before 5.7 also want CAP_NET_RAW for SO_BINDTODEVICE.
import dgram from 'node:dgram';
import { errnoError } from '../net/libc.ts';
import { loadSys, setReceiveBuffer } from '../net/syscalls.ts';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_BROADCAST = 6;
const SO_BINDTODEVICE = 25;
/** Room for ~1k queued DISCOVERs (about the 2 s a PXE client waits, at a storm's rate): a boot storm must not be dropped by the kernel while the loop is busy. */
const RCVBUF = 1 << 20;

/**
 * The descriptor of a non-blocking udp4 socket on 0.0.0.0:port that sends and receives only through `iface`, for
 * a caller that does its own I/O (the DHCP data plane). Throws an errno-coded error.
 */
export function deviceFd(iface: string, port: number): number {
  const c = loadSys();
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw errnoError('socket');
  try {
    const one = Buffer.alloc(4);
    one.writeInt32LE(1);
    if (c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0) throw errnoError('setsockopt(SO_REUSEADDR)');
    if (c.setsockopt(fd, SOL_SOCKET, SO_BROADCAST, one, 4) < 0) throw errnoError('setsockopt(SO_BROADCAST)');
    setReceiveBuffer(c, fd, RCVBUF);
    const name = Buffer.from(`${iface}\0`);
    if (c.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length) < 0) throw errnoError(`setsockopt(SO_BINDTODEVICE ${iface})`);
    const sin = Buffer.alloc(16);
    sin.writeUInt16LE(AF_INET, 0);
    sin.writeUInt16BE(port, 2);
    if (c.bind(fd, sin, sin.length) < 0) throw errnoError('bind');
  } catch (err) {
    c.close(fd);
    throw err;
  }
  return fd;
}

/** The same socket handed to dgram, for low-rate listeners. */
export async function deviceSocket(iface: string, port: number): Promise<dgram.Socket> {
  const fd = deviceFd(iface, port);
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ fd }, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  return sock;
}
