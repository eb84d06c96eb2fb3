import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type Options } from 'ajv';
import type { FastifyInstance } from 'fastify';
import type { Context } from '../context.ts';
import { HttpService } from '../http/server.ts';
import { audit } from '../inventory/audit.ts';
import { counter, gauge } from '../metrics.ts';
import { disabledService, type Service } from '../service.ts';
import { PAGE_CSP, loadUi, uiRoutes } from '../ui/static.ts';
import { installGuards } from './auth.ts';
import { AdminGrpcService } from './grpc.ts';
import { installErrorHandlers } from './errors.ts';
import { buildOpenApi, routeDoc, type RouteDoc } from './openapi.ts';
import { ImportJobs } from './imports.ts';
import { adminRoutes } from './routes/admin.ts';
import { assetRoutes } from './routes/assets.ts';
import { eventRoutes } from './routes/events.ts';
import { machineRoutes } from './routes/machines.ts';
import { profileRoutes } from './routes/profiles.ts';
import { sessionRoutes } from './routes/session.ts';
import { Sessions } from './sessions.ts';
import { Tokens } from './tokens.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
export const INITIAL_TOKEN_FILE = 'initial-admin-token';

/** The admin listener: REST /api/v1, its OpenAPI document, and the web page. Apart from the machine-facing server. */
export function createApiService(ctx: Context): Service {
  const s = ctx.settings.api;
  if (!s.enabled) return disabledService('api', 'api.enabled is false');
  const svc = new HttpService({ name: 'api', listen: s.listen, port: s.port, portSetting: 'api.port', log: ctx.log, onError: (err) => ctx.writer.noteInlineFailure(err) });
  const tokens = new Tokens(ctx.db);
  const ttlMs = s.sessionHours * 3_600_000;
  const sessions = new Sessions(ctx.db, ttlMs);
  // On start, not now: a daemon that fails to start must not mint a token.
  svc.app.addHook('onReady', async () => bootstrapAdminToken(ctx, tokens));
  composeApi(svc.app, ctx, tokens, sessions, ttlMs);
  return svc;
}

/** The admin gRPC service (mutual TLS); off with the admin listener or on its own. */
export function createAdminGrpcService(ctx: Context): Service {
  if (!ctx.settings.api.enabled || !ctx.settings.api.grpc.enabled) return disabledService('admin-grpc', 'api.enabled or api.grpc.enabled is false');
  return new AdminGrpcService(ctx);
}

export function composeApi(app: FastifyInstance, ctx: Context, tokens: Tokens, sessions: Sessions, ttlMs: number): void {
  useStrictValidation(app);
  installErrorHandlers(app);
  const docs: RouteDoc[] = [];
  app.addHook('onRoute', (r) => {
    // Deny by default: a route that forgot to say who may call it must not start public.
    if (r.config?.scope === undefined && r.method !== 'HEAD') throw new Error(`admin route ${String(r.method)} ${r.url} declares no scope`);
    docs.push(...routeDoc(r));
  });
  // Admin writes commit on their own at synchronous=FULL, as an operator expects of a 2xx: a boot request's shared
  // transaction (inventory/durable.ts) still open in this turn is committed first, and one that a handler's writes
  // joined after an await is committed and synced before the answer leaves.
  app.addHook('onRequest', async () => ctx.durable.settle());
  app.addHook('onSend', async (req, reply) => {
    ctx.durable.settle({ sync: true });
    reply.header('x-content-type-options', 'nosniff').header('x-frame-options', 'DENY').header('referrer-policy', 'no-referrer');
    reply.header('content-security-policy', req.url.startsWith('/api/') ? "default-src 'none'; frame-ancestors 'none'" : PAGE_CSP);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });
  installGuards(app, { tokens, sessions, listen: ctx.settings.api.listen, hosts: ctx.settings.api.hosts });

  const streams = gauge(ctx.metrics, 'heph_api_event_streams', 'Open Server-Sent Event streams (web pages watching).');
  const loginFailures = counter(ctx.metrics, 'heph_api_login_failures_total', 'Web page logins refused for a bad token.');
  sessionRoutes(app, ctx, tokens, sessions, loginFailures, ttlMs);
  machineRoutes(app, ctx);
  profileRoutes(app, ctx);
  eventRoutes(app, ctx, streams);
  adminRoutes(app, ctx, tokens);
  assetRoutes(app, ctx, new ImportJobs(ctx));
  uiRoutes(app, loadUi());
  let doc: unknown;
  app.get('/api/v1/openapi.json', { config: { scope: 'public' }, schema: { summary: 'This document', tags: ['meta'] } }, async (_req, reply) =>
    reply.header('cache-control', 'no-cache').send((doc ??= buildOpenApi(docs, { version: VERSION }))),
  );
}

/**
 * Unknown fields are refused (400), never silently dropped: a client that misspells a field must hear about it.
 * Query strings and path parameters are text, so only they are coerced (and a single value becomes a list).
 */
function useStrictValidation(app: FastifyInstance): void {
  const base: Options = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false };
  const bodies = new Ajv({ ...base, coerceTypes: false });
  const text = new Ajv({ ...base, coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodies : text).compile(schema));
}

/**
 * On the very first start there is no way in: make one admin token and leave it in a 0600 file in the data
 * directory (never in the log, which is shipped and kept). The operator reads it once and deletes the file.
 */
function bootstrapAdminToken(ctx: Context, tokens: Tokens): void {
  if (tokens.any()) return;
  const file = join(ctx.dataDir, INITIAL_TOKEN_FILE);
  // A leftover from an inventory that was since replaced holds a token that no longer exists.
  rmSync(file, { force: true });
  ctx.db.transaction(() => {
    const { token, record } = tokens.create('initial-admin', 'admin');
    audit(ctx.db, { actor: 'system', action: 'token.create', detail: { id: record.id, name: record.name, scope: 'admin', file } });
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  }).immediate();
  ctx.log.warn({ file }, 'first start: an admin API token was written to this file (mode 0600). Log in with it, make your own tokens (heph tokens create), then delete the file');
}
