import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { bindFailure } from '../errors.ts';
import { acceptEagerly } from './accept.ts';
import type { Logger } from '../log.ts';
import type { Registry } from '../metrics.ts';
import type { Service, ServiceHealth } from '../service.ts';

export interface HttpOptions {
  name: string;
  listen: string;
  port: number;
  /** Setting paths named in bind error messages. */
  portSetting: string;
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
