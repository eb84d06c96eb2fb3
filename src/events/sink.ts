import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { bindFailure } from '../errors.ts';
import type { Logger } from '../log.ts';
import { plainIp } from './kmsg.ts';

export const PUBLISH_PATH = '/events.EventSinkService/Publish';

/**
 * The method table grpc-js needs, with the request left as bytes: decoding happens in the handler, where a
 * malformed request can be counted and answered INVALID_ARGUMENT instead of vanishing inside the library.
 * EventResponse is empty, so its encoding is zero bytes.
 */
const SERVICE: grpc.ServiceDefinition<grpc.UntypedServiceImplementation> = {
  Publish: {
    path: PUBLISH_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: () => Buffer.alloc(0),
    responseDeserialize: () => ({}),
  },
};

/** Returns the status to answer with: OK, or INVALID_ARGUMENT with a message. */
export type PublishHandler = (ip: string, bytes: Buffer) => { ok: true } | { ok: false; message: string };

/** `host:port` as grpc-js reports the peer (IPv6 without brackets, possibly IPv4-mapped) → the bare IP. */
export function peerIp(peer: string): string {
  const host = peer.startsWith('[') ? peer.slice(1, peer.indexOf(']')) : peer.lastIndexOf(':') > -1 ? peer.slice(0, peer.lastIndexOf(':')) : peer;
  return plainIp(host.replace(/^ipv[46]:/, ''));
}

/** The Talos event sink: plaintext HTTP/2 gRPC (Talos dials it with insecure credentials), one unary method. */
export class EventSinkServer {
  private server: grpc.Server | undefined;
  port = 0;

  constructor(
    private readonly opts: { listen: string; port: number },
    private readonly handle: PublishHandler,
    log: Logger,
  ) {
    // grpc-js writes its own errors to stderr; send them to heph's log instead (the library keeps one logger).
    grpc.setLogger({ error: (...args: unknown[]) => log.warn({ svc: 'events' }, `grpc-js: ${format(...args)}`) });
  }

  async start(): Promise<void> {
    const server = new grpc.Server();
    server.addService(SERVICE, {
      Publish: (call: grpc.ServerUnaryCall<Buffer, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const r = this.handle(peerIp(call.getPeer()), call.request);
        if (r.ok) callback(null, {});
        else callback({ code: grpc.status.INVALID_ARGUMENT, details: r.message });
      },
    });
    const { listen, port } = this.opts;
    try {
      this.port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(`${listen}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
    } catch (err) {
      server.forceShutdown();
      // grpc-js folds the errno into its message; recover it so the operator gets the usual advice.
      const code = /EADDRINUSE|EACCES|EADDRNOTAVAIL/.exec((err as Error).message)?.[0];
      throw bindFailure({ service: 'events', proto: 'TCP', address: listen, port, setting: 'grpc.port', err: Object.assign(err as Error, code ? { code } : {}) });
    }
    this.server = server;
  }

  /** Lets calls in flight finish; connections Talos keeps open are closed after a second. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => (server.forceShutdown(), resolve()), 1000);
      server.tryShutdown(() => (clearTimeout(force), resolve()));
    });
  }
}
