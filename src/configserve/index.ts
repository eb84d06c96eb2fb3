import type { FastifyInstance } from 'fastify';
import { parseMac, parseUuid, peerAddress } from '../ipxe/identity.ts';
import type { Logger } from '../log.ts';
import type { ConfigDelivery, Delivery } from './delivery.ts';

/**
 * GET /config/<token>: the talos.config URL of an install script. Anything else under /config (a uuid or mac
 * without a token) is refused and audited. Errors are 5xx, never an empty 200: Talos retries a 5xx for 3 hours but
 * treats an empty body as a broken config.
 */
export function registerConfigRoutes(app: FastifyInstance, delivery: ConfigDelivery, log: Logger): void {
  app.get<{ Params: { token: string } }>('/config/:token', { exposeHeadRoute: false }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    let d: Delivery;
    try {
      d = await delivery.deliver(req.params.token, peerAddress(req.socket.remoteAddress));
    } catch (err) {
      // Handled here, not by fastify: its error log line would carry the request URL, and the URL is the secret.
      log.error({ err, ip: peerAddress(req.socket.remoteAddress) }, 'config request failed; answered 500 so Talos retries');
      return reply.code(500).header('retry-after', '10').send({ error: { code: 'internal', message: 'the config cannot be produced right now; retry later' } });
    }
    if (d.status === 200) {
      return reply.code(200).header('content-type', 'application/yaml').header('content-length', String(Buffer.byteLength(d.body))).send(d.body);
    }
    const code = d.status === 403 ? 'forbidden' : 'unavailable';
    const message = d.status === 403 ? 'no config for this request' : 'the config cannot be produced right now; retry later';
    if (d.status !== 403) reply.header('retry-after', '10');
    return reply.code(d.status).send({ error: { code, message } });
  });
  app.get<{ Querystring: Record<string, unknown> }>('/config', { exposeHeadRoute: false }, async (req, reply) => {
    // Record which identity was claimed, but only in validated form: request bytes never reach the audit log raw.
    const claimed: Record<string, string> = {};
    const q = req.query;
    if (typeof q.mac === 'string' && parseMac(q.mac)) claimed.mac = parseMac(q.mac)!;
    if (typeof q.uuid === 'string') {
      const u = parseUuid(q.uuid);
      if (u.ok && u.uuid) claimed.uuid = u.uuid;
    }
    delivery.refuseTokenless(peerAddress(req.socket.remoteAddress), claimed);
    return reply.code(403).header('cache-control', 'no-store').send({ error: { code: 'forbidden', message: 'a config needs the token from this machine\'s boot script' } });
  });
}
