// The Talos side of bench/events.bench.ts, in its own process so that its CPU is not heph's: `sessions` gRPC
// channels, each sending its share of prebuilt events.EventRequest messages one unary call at a time, as Talos does.
// Prints the wall time in ms, or exits non-zero at the first call that fails.
//   node --import tsx bench/events-client.ts <host:port> <sessions> <requests.json: hex strings>
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { PUBLISH_PATH } from '../src/events/sink.ts';

const [target, sessions, file] = process.argv.slice(2);
const requests = (JSON.parse(readFileSync(file!, 'utf8')) as string[]).map((h) => Buffer.from(h, 'hex'));
const n = Number(sessions);
const bytes = (b: Buffer): Buffer => b;

const started = performance.now();
await Promise.all(
  Array.from({ length: n }, async (_, s) => {
    const client = new grpc.Client(target!, grpc.credentials.createInsecure());
    try {
      for (let i = s; i < requests.length; i += n) {
        await new Promise<void>((resolve, reject) => client.makeUnaryRequest(PUBLISH_PATH, bytes, bytes, requests[i]!, (err) => (err ? reject(err) : resolve())));
      }
    } finally {
      client.close();
    }
  }),
);
console.log((performance.now() - started).toFixed(1));
