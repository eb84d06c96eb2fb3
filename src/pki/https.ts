import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { bindFailure } from '../errors.ts';
import { acceptEagerly } from '../http/accept.ts';
import { MACHINE_KEEP_ALIVE_MS } from '../http/server.ts';
import type { Logger } from '../log.ts';
import type { Service, ServiceHealth } from '../service.ts';
import { issueServerCert, type CA } from './ca.ts';

export interface HttpsOptions {
  /** The machine-facing fastify app: the HTTPS listener serves exactly its routes. */
  app: FastifyInstance;
  ca: CA;
  listen: string;
  port: number;
  advertise: string;
  ipAddresses: string[];
  dnsNames: string[];
  log: Logger;
}

/** The IP SANs the server certificate needs: where machines are sent, plus a specific listen address. */
export function serverCertAddresses(o: Pick<HttpsOptions, 'listen' | 'advertise' | 'ipAddresses'>): string[] {
  const ips = [o.advertise, ...(o.listen === '0.0.0.0' ? [] : [o.listen]), ...o.ipAddresses].filter((ip) => ip !== '' && ip !== '0.0.0.0');
  return [...new Set(ips)];
}

/**
 * A TLS listener in front of the same fastify app as the HTTP one (fastify's `routing` is its request handler),
 * so every route, hook and signature is served identically over both. The server certificate is issued from
 * heph's CA at each start, for the advertise address.
 */
export class HttpsService implements Service {
  readonly name = 'https';
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private state: ServiceHealth = { state: 'stopped' };

  constructor(private readonly opts: HttpsOptions) {}

  get port(): number {
    const addr = this.server?.address();
    return typeof addr === 'object' && addr ? addr.port : 0;
  }

  async start(): Promise<void> {
    this.state = { state: 'starting' };
    const o = this.opts;
    const ipAddresses = serverCertAddresses(o);
    const cert = await issueServerCert(o.ca, { commonName: o.advertise || o.dnsNames[0] || 'heph', ipAddresses, dnsNames: o.dnsNames });
    await o.app.ready();
    // The root goes out with the leaf: iPXE trusts roots by fingerprint and finds them only among the
    // certificates it is sent (a leaf alone fails with 0216eb3c), other clients ignore the extra certificate.
    const server = createServer({ key: cert.keyPem, cert: cert.chainPem, minVersion: 'TLSv1.2', keepAliveTimeout: MACHINE_KEEP_ALIVE_MS, headersTimeout: 30_000 }, (req, res) => o.app.routing(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    // A failed handshake (a client that does not trust the CA) is the client's problem, not an error of ours.
    server.on('tlsClientError', (err) => o.log.debug({ err: err.message }, 'TLS handshake failed'));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.port, o.listen, () => (server.off('error', reject), resolve()));
      });
    } catch (err) {
      this.state = { state: 'failed', detail: (err as Error).message };
      throw bindFailure({ service: this.name, proto: 'TCP', address: o.listen, port: o.port, setting: 'tls.port', disable: 'tls.enabled', err });
    }
    this.server = server;
    acceptEagerly(server);
    this.state = { state: 'up', listening: { tcp: `${o.listen}:${this.port}` } };
    o.log.info({ ipAddresses, dnsNames: o.dnsNames, notAfter: cert.notAfter.toISOString(), caFingerprint: o.ca.fingerprint }, 'HTTPS listening with a certificate from heph CA');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.state = { state: 'stopping' };
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      for (const s of this.sockets) s.destroy();
    });
    this.server = undefined;
    this.state = { state: 'stopped' };
  }

  health(): ServiceHealth {
    return this.state;
  }
}
