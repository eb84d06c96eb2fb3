// Accepting waiting connections many per event-loop turn, as Node did before version 20.
// libuv 1.45 (Node 20) accepts one connection per event-loop turn and relies on the listening socket staying
// readable for the next one (libuv commit 6c692ad, "don't accept() connections in a loop"). A busy turn serves
// every ready socket, a few to tens of milliseconds' work in a boot storm, so accepts ran at one per turn:
// ~1000 connections sat established in the kernel's accept queue for 1–2 s, and that wait was nearly all of the
// machines' time on /ipxe and /config while the handlers themselves took under 40 ms (measured with `ss -ltn`).
// Here, each time Node accepts one, more of the queue is accepted too and handed to the same server.
import { Socket, type Server } from 'node:net';
import { constants } from 'node:os';
import koffi from 'koffi';
import { EINTR, loadSys, SOCK_CLOEXEC, SOCK_NONBLOCK } from '../net/syscalls.ts';

const { ECONNABORTED } = constants.errno;
/**
 * At most this many more per accept by Node, i.e. per turn. It was 64, measured when every request came on a
 * connection of its own; but iPXE keeps its connection alive (one per machine for /boot.ipxe, /ipxe, kernel and
 * initrd), and then requests on open connections were served turn after turn while new ones (a machine's first
 * request, Talos' config fetch) sat in the accept queue. Storms of 1000 with pooled connections: with 64,
 * /boot.ipxe and config p99 2.1–2.8 s (4 storms); with 256, worst step 1.17 and 1.39 s, peak RSS 284.5 and
 * 289.7 MiB; with 1024, worst step 1.03–1.42 s but peak RSS 288–293 MiB (6 storms): more connections accepted at
 * once is more requests in the heap at once.
 */
export const ACCEPT_BUDGET = 256;

/** What net.Server keeps for each connection it accepts, and the options it applies (Node 20's onconnection). */
interface ServerInternals {
  _handle?: { fd?: number } | null;
  _connections: number;
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
}

/**
 * Makes `server` accept up to ACCEPT_BUDGET more waiting connections whenever Node accepts one. Each gets the
 * treatment Node's own accept gives (no-delay, keep-alive, the server's connection count) and the server's
 * 'connection' listeners. A listener without a plain descriptor is left as it is.
 */
export function acceptEagerly(server: Server): void {
  const internals = server as unknown as ServerInternals;
  const sys = loadSys();
  let draining = false;
  server.on('connection', () => {
    // Our own 'connection' events come back here; the drain already in progress takes care of the queue.
    if (draining) return;
    // Read each time: once the server closes, its descriptor number may belong to something else.
    const fd = internals._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return;
    draining = true;
    try {
      for (let i = 0; i < ACCEPT_BUDGET; i++) {
        const conn = sys.accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn >= 0) {
          adopt(server, internals, conn, sys.close);
          continue;
        }
        const errno = koffi.errno();
        if (errno === EINTR || errno === ECONNABORTED) continue;
        // EAGAIN: the queue is empty. EMFILE and the rest: Node's own accept meets them next and sheds load.
        return;
      }
    } finally {
      draining = false;
    }
  });
}

function adopt(server: Server, internals: ServerInternals, fd: number, close: (fd: number) => number): void {
  let socket: Socket;
  try {
    socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: internals.allowHalfOpen ?? false });
  } catch {
    close(fd);
    return;
  }
  if (internals.noDelay) socket.setNoDelay(true);
  if (internals.keepAlive) socket.setKeepAlive(true, internals.keepAliveInitialDelay);
  // Node counts the connection against the server and decrements it when the socket closes (via _server).
  internals._connections++;
  Object.assign(socket, { server, _server: server });
  server.emit('connection', socket);
}
