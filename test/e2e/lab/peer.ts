// A stand-in for heph's machine-facing side, for the payload test that runs before (and independent of) heph:
// serves one Talos config over HTTP (the first request gets a 503, so the payload's retry is exercised), accepts
// Talos events on a real gRPC server (@grpc/grpc-js, h2c) and kernel-log JSON lines over TCP. Each thing it sees
// is printed as one JSON line on stdout. Run inside the lab's heph namespace:
//   node --import tsx test/e2e/lab/peer.ts LISTEN_IP CONFIG_FILE
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { PEER_PORTS } from './lab.ts';

const [listen, configFile] = process.argv.slice(2);
if (!listen || !configFile) {
  console.error('usage: peer.ts LISTEN_IP CONFIG_FILE');
  process.exit(2);
}
const config = readFileSync(configFile);
const emit = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);

let configRequests = 0;
const http = createHttpServer((req, res) => {
  const ip = req.socket.remoteAddress;
  let status = 404;
  if (req.method === 'GET' && req.url === '/config') status = ++configRequests === 1 ? 503 : 200;
  emit({ kind: 'http', method: req.method, url: req.url, ip, status });
  res.writeHead(status, { 'content-length': status === 200 ? config.length : 0 });
  res.end(status === 200 ? config : undefined);
});
http.listen(PEER_PORTS.http, listen);

// The bytes are kept raw: the test decodes them with protoc, an implementation independent of this server.
const raw = (b: Buffer): Buffer => b;
const sink: grpc.ServiceDefinition = {
  Publish: {
    path: '/events.EventSinkService/Publish',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: () => Buffer.alloc(0),
    responseDeserialize: () => ({}),
  },
};
const server = new grpc.Server();
server.addService(sink, {
  Publish: (call: grpc.ServerUnaryCall<Buffer, unknown>, cb: grpc.sendUnaryData<unknown>) => {
    emit({ kind: 'event', peer: call.getPeer(), body: call.request.toString('base64') });
    cb(null, {});
  },
});
server.bindAsync(`${listen}:${PEER_PORTS.grpc}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  emit({ kind: 'ready' });
});

const klog = createTcpServer((sock) => {
  let buf = '';
  sock.on('data', (d) => {
    buf += d.toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      emit({ kind: 'klog', ip: sock.remoteAddress, line: buf.slice(0, i) });
      buf = buf.slice(i + 1);
    }
  });
  sock.on('error', () => undefined);
});
klog.listen(PEER_PORTS.kernelLog, listen);

process.on('SIGTERM', () => process.exit(0));
