import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { bindFailure } from '../errors.ts';
import { acceptEagerly } from './accept.ts';
import type { Logger } from '../log.ts';
import type { Registry } from '../metrics.ts';
import type { Service, ServiceHealth } from '../service.ts';

/**
 * How long the machine-facing servers (HTTP and HTTPS) keep an idle connection open. A machine's requests on one
 * connection follow each other within milliseconds (iPXE's script, kernel and initrd; UEFI HTTP Boot's HEAD, then
 * GET); one idle for seconds belongs to a machine that has moved on, into its kernel or Talos, and every one held costs
 * heph a socket, a parser and their buffers. With Fastify's default of 72 s a steady stream of booting machines held
 * ~7000 of them in the boot-storm bench (1000 machines in flight, a warm-up of 10,000; the bench's iPXE drops its
 * pooled connection after 10 s), and heph's peak RSS was 295.9 and 294.6 MiB; at 5 s, 280.4 and 276.4 MiB (both
 * with the inventory's 2 MB page cache). A client that comes back later opens a new connection, as iPXE does when its
 * pooled one was closed.
 */
export const MACHINE_KEEP_ALIVE_MS = 5000;

export interface HttpOptions {
  name: string;
  listen: string;
  port: number;
  /** Setting paths named in bind error messages. */
  portSetting: string;
  /**
   * How long an idle keep-alive connection stays open. Default: Fastify's 72 s, longer than a load balancer's usual
   * 60 s, so that a proxy in front of the admin listener never reuses a connection heph is closing.
   */
  keepAliveMs?: number;
  log: Logger;
  /** Told of every error a route throws (the daemon watches for disk errors there: /healthz). */
  onError?: (err: Error) => void;
}

/**
 * A fastify instance wrapped as a Service. Other modules add their routes to `app` while the daemon is being
 * composed, before start() makes it listen.
 */
export class HttpService implements Service {
  readonly app: FastifyInstance;
  readonly name: string;
  private state: ServiceHealth = { state: 'stopped' };

  constructor(private readonly opts: HttpOptions) {
    this.name = opts.name;
    this.app = Fastify({
      loggerInstance: opts.log.child({ svc: opts.name }) as FastifyBaseLogger,
      // Each module logs what a request meant (machine, decision); a generic access log line adds only noise.
      logController: new LogController({ disableRequestLogging: true }),
      // Machines reach us directly; never believe X-Forwarded-For, or one header would impersonate any machine.
      trustProxy: false,
      return503OnClosing: true,
      forceCloseConnections: true,
      ...(opts.keepAliveMs === undefined ? {} : { keepAliveTimeout: opts.keepAliveMs }),
    });
    const onError = opts.onError;
    if (onError) this.app.addHook('onError', async (_req, _reply, err) => onError(err));
  }

  /** The bound TCP port (useful when the settings asked for port 0). */
  get port(): number {
    const addr = this.app.server.address();
    return typeof addr === 'object' && addr ? addr.port : 0;
  }

  async start(): Promise<void> {
    this.state = { state: 'starting' };
    try {
      // A rack powering on opens connections faster than one event loop accepts them; Node's default backlog is 511.
      await this.app.listen({ host: this.opts.listen, port: this.opts.port, backlog: 4096 });
      acceptEagerly(this.app.server);
    } catch (err) {
      this.state = { state: 'failed', detail: (err as Error).message };
      await this.app.close().catch(() => {});
      throw bindFailure({ service: this.name, proto: 'TCP', address: this.opts.listen, port: this.opts.port, setting: this.opts.portSetting, err });
    }
    this.state = { state: 'up', listening: { tcp: `${this.opts.listen}:${this.port}` } };
  }

  async stop(): Promise<void> {
    this.state = { state: 'stopping' };
    await this.app.close();
    this.state = { state: 'stopped' };
  }

  health(): ServiceHealth {
    return this.state;
  }
}

/** /healthz and /metrics on the machine-facing server: load balancers and Prometheus need no token. */
export function registerOpsRoutes(app: FastifyInstance, registry: Registry, health: () => { ok: boolean; body: unknown }): void {
  app.get('/healthz', async (_req, reply) => {
    const h = health();
    return reply.code(h.ok ? 200 : 503).header('cache-control', 'no-store').send(h.body);
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await registry.metrics();
    return reply.header('content-type', registry.contentType).header('cache-control', 'no-store').send(text);
  });
}
