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

/**
 * Writes `raw` (one or more HTTP/1.1 requests) on `sock` and reads `count` responses, each framed by its
 * Content-Length; bytes after the last are dropped. The socket stays open.
 */
export function httpExchange(sock: net.Socket, raw: string, count: number): Promise<{ head: string; body: Buffer }[]> {
  let data = Buffer.alloc(0);
  const responses: { head: string; body: Buffer }[] = [];
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      sock.off('data', onData).off('error', done);
      if (err) reject(err);
      else resolve(responses);
    };
    const onData = (d: Buffer): void => {
      data = Buffer.concat([data, d]);
      for (;;) {
        const split = data.indexOf('\r\n\r\n');
        if (split < 0) return;
        const head = data.subarray(0, split).toString();
        const m = /content-length: (\d+)/i.exec(head);
        if (!m) return done(new Error(`a response without Content-Length: ${head}`));
        const length = Number(m[1]);
        if (data.length < split + 4 + length) return;
        responses.push({ head, body: data.subarray(split + 4, split + 4 + length) });
        data = data.subarray(split + 4 + length);
        if (responses.length === count) return done();
      }
    };
    sock.on('data', onData).on('error', done);
    sock.write(raw);
  });
}
