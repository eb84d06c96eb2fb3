// The Talos event sink's transport, on a thread of its own. grpc-js, HTTP/2 and the calls' framing cost heph's main
// thread more than recording the events does (`npm run bench -- events`: about half of ~250 µs per event), and every
// boot request waits behind that thread. Here calls are taken and answered; the calls of one turn go to the main
// thread in one message (on a port of their own, which the main thread also reads between requests), which records
// them and sends back each call's status: a call is answered only once its event is recorded, as when the server ran
// on the main thread.
import * as grpc from '@grpc/grpc-js';
import { createServer } from 'node:net';
import { format } from 'node:util';
import { parentPort, workerData } from 'node:worker_threads';
import { acceptEagerly } from '../http/accept.ts';
import { peerIp, SERVICE, type FromSink, type SinkCall, type SinkWorkerInit, type ToSink } from './sink-wire.ts';

const init = (workerData as { data: SinkWorkerInit }).data;
const port = parentPort!;
const post = (m: FromSink): void => port.postMessage(m);

// grpc-js writes its own errors to stderr; they go to heph's log on the main thread instead.
grpc.setLogger({ error: (...args: unknown[]) => post({ kind: 'log', text: `grpc-js: ${format(...args)}` }) });

const waiting = new Map<number, grpc.sendUnaryData<unknown>>();
let batch: SinkCall[] = [];
let nextId = 0;

function flush(): void {
  const calls = batch;
  batch = [];
  init.calls.postMessage(calls);
}

// Channelz (grpc-js's introspection, which heph does not serve) would keep per-session trackers for every machine.
const server = new grpc.Server({ 'grpc.enable_channelz': 0 });
server.addService(SERVICE, {
  Publish: (call: grpc.ServerUnaryCall<Buffer, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    const id = ++nextId;
    waiting.set(id, callback);
    if (batch.length === 0) setImmediate(flush);
    batch.push({ id, ip: peerIp(call.getPeer()), bytes: call.request });
  },
});

port.on('message', (m: ToSink) => {
  if (m.kind === 'answers') {
    for (const [id, code, details] of m.answers) {
      const callback = waiting.get(id);
      waiting.delete(id);
      if (code === 0) callback?.(null, {});
      else callback?.({ code, details });
    }
    return;
  }
  // Calls in flight finish; connections Talos keeps open are closed after a second.
  listener.close();
  const force = setTimeout(() => (server.forceShutdown(), post({ kind: 'stopped' })), 1000);
  server.tryShutdown(() => (clearTimeout(force), post({ kind: 'stopped' })));
});

// heph listens itself and hands each connection to grpc-js, whose own listener has Node's backlog (511) and takes
// one connection per event-loop turn: a rack's machines reaching their events at once overflowed that queue (47
// connections dropped in a storm of 1000 with 0.5 + 2 MiB assets), and each dropped machine waited a second for its
// SYN to be sent again (events p99 1.05–1.15 s in 4 such storms). The HTTP server listens the same way.
const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
const listener = createServer({ noDelay: true }, (socket) => injector.injectConnection(socket));
let listening = false;
// After listening, Node reports a failed accept (EMFILE…) here too; that costs one connection, not the sink.
listener.on('error', (err: NodeJS.ErrnoException) =>
  post(listening ? { kind: 'log', text: `the sink's listener: ${err.message}` } : { kind: 'bind-failed', message: err.message, code: err.code }),
);
listener.listen({ host: init.listen, port: init.port, backlog: 4096 }, () => {
  listening = true;
  acceptEagerly(listener);
  const address = listener.address();
  post({ kind: 'bound', port: typeof address === 'object' && address ? address.port : init.port });
});
