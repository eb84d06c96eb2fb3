import net from 'node:net';

/**
 * `n` connections to 127.0.0.1:port, established by the kernel while this thread is kept busy, so all of them
 * are waiting in the server's accept queue when the event loop next runs (the server is in this process).
 */
export function queuedConnections(port: number, n: number): net.Socket[] {
  const socks = Array.from({ length: n }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
  const until = Date.now() + 150;
  while (Date.now() < until);
  return socks;
}
