import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, errorBody } from './errors.ts';
import { allowedHosts, checkHost, checkOrigin } from './guard.ts';
import { csrfMatches, readCookie, SESSION_COOKIE, type Session, type Sessions } from './sessions.ts';
import { scopeAllows, type Scope, type Tokens } from './tokens.ts';

/** Who is calling: a token presented as a Bearer header, or a web-page session bought with one. */
export interface Identity {
  tokenId: string;
  name: string;
  scope: Scope;
  session?: Session;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Least scope a route needs; 'public' routes need no identity (login, the page's static files). */
    scope?: Scope | 'public';
  }
  interface FastifyRequest {
    identity: Identity | null;
  }
}

export function actor(req: FastifyRequest): string {
  return req.identity ? `token:${req.identity.tokenId}` : 'anonymous';
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Every request on the admin listener passes, in order: the Host check (421), the cross-site check (403),
 * then, unless the route is public, authentication (401), the CSRF token for cookie sessions (403) and the
 * route's scope (403).
 */
export function installGuards(app: FastifyInstance, opts: { tokens: Tokens; sessions: Sessions; listen: string; hosts: readonly string[] }): void {
  const hosts = allowedHosts(opts.listen, opts.hosts);
  app.decorateRequest('identity', null);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const refusal =
      checkHost(req.headers.host, hosts) ??
      checkOrigin({
        method: req.method,
        host: req.headers.host ?? '',
        origin: req.headers.origin,
        fetchSite: header(req, 'sec-fetch-site'),
        fetchMode: header(req, 'sec-fetch-mode'),
        page: !req.url.startsWith('/api/'),
      });
    if (refusal) return reply.code(refusal.status).send(errorBody(refusal.code, refusal.message));
    const scope = req.routeOptions.config.scope;
    if (scope === undefined || scope === 'public') return;
    req.identity = identify(req, opts.tokens, opts.sessions);
    if (!req.identity) {
      return reply.code(401).header('www-authenticate', 'Bearer realm="heph"').send(errorBody('unauthorized', 'a valid API token is required (Authorization: Bearer heph_…)'));
    }
    if (req.identity.session && UNSAFE.has(req.method) && !csrfMatches(req.identity.session, header(req, 'x-csrf-token'))) {
      return reply.code(403).send(errorBody('csrf', 'missing or wrong X-CSRF-Token for this session'));
    }
    if (!scopeAllows(req.identity.scope, scope)) {
      return reply.code(403).send(errorBody('forbidden', `this needs the ${scope} scope; the token has ${req.identity.scope}`));
    }
  });
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function identify(req: FastifyRequest, tokens: Tokens, sessions: Sessions): Identity | null {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    const t = m ? tokens.verify(m[1]!) : undefined;
    return t ? { tokenId: t.id, name: t.name, scope: t.scope } : null;
  }
  const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
  const s = cookie ? sessions.find(cookie) : undefined;
  return s ? { tokenId: s.tokenId, name: s.tokenName, scope: s.scope, session: s } : null;
}

export function requireIdentity(req: FastifyRequest): Identity {
  if (!req.identity) throw new ApiError(401, 'unauthorized', 'not logged in');
  return req.identity;
}
