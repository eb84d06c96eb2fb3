import type { FastifyInstance } from 'fastify';
import type { Context } from '../../context.ts';
import { audit } from '../../inventory/audit.ts';
import type { Counter } from '../../metrics.ts';
import { requireIdentity } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { iso } from '../json.ts';
import { errorSchema } from '../schemas.ts';
import { readCookie, SESSION_COOKIE, type Sessions } from '../sessions.ts';
import type { Tokens } from '../tokens.ts';

const sessionSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    scope: { type: 'string' },
    csrfToken: { type: ['string', 'null'], description: 'echo it in X-CSRF-Token on every POST, PATCH, PUT and DELETE made with the session cookie' },
    expiresAt: { type: ['string', 'null'] },
  },
} as const;

/** Web-page login: an API token buys an HttpOnly, SameSite=Strict session cookie and a CSRF token. */
export function sessionRoutes(app: FastifyInstance, ctx: Context, tokens: Tokens, sessions: Sessions, failures: Counter, ttlMs: number): void {
  const cookie = (value: string, maxAge: number): string => `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}`;

  app.post('/api/v1/session', {
    config: { scope: 'public' },
    schema: {
      summary: 'Log in with an API token; sets the session cookie',
      tags: ['session'],
      body: { type: 'object', additionalProperties: false, required: ['token'], properties: { token: { type: 'string', minLength: 1, maxLength: 200 } } },
      response: { 200: sessionSchema, 401: errorSchema },
    },
    handler: async (req, reply) => {
      const t = tokens.verify((req.body as { token: string }).token);
      if (!t) {
        failures.inc();
        throw new ApiError(401, 'unauthorized', 'that token is not valid (unknown, mistyped or revoked)');
      }
      const opened = ctx.db.transaction(() => {
        audit(ctx.db, { actor: `token:${t.id}`, action: 'session.login', ip: req.ip, detail: { name: t.name } });
        return sessions.open(t);
      }).immediate();
      return reply
        .header('set-cookie', cookie(opened.cookie, Math.floor(ttlMs / 1000)))
        .header('cache-control', 'no-store')
        .send({ name: t.name, scope: t.scope, csrfToken: opened.session.csrf, expiresAt: iso(opened.session.expiresAt) });
    },
  });

  app.get('/api/v1/session', {
    config: { scope: 'read' },
    schema: { summary: 'Who am I (and the CSRF token of a cookie session)', tags: ['session'], response: { 200: sessionSchema } },
    handler: async (req, reply) => {
      const id = requireIdentity(req);
      return reply.header('cache-control', 'no-store').send({ name: id.name, scope: id.scope, csrfToken: id.session?.csrf ?? null, expiresAt: id.session ? iso(id.session.expiresAt) : null });
    },
  });

  app.delete('/api/v1/session', {
    config: { scope: 'read' },
    schema: { summary: 'Log out: ends this cookie session', tags: ['session'], response: { 204: { type: 'null' } } },
    handler: async (req, reply) => {
      const value = readCookie(req.headers.cookie, SESSION_COOKIE);
      if (value) sessions.close(value);
      return reply.code(204).header('set-cookie', cookie('', 0)).send();
    },
  });
}
