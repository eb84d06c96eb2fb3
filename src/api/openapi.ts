import type { RouteOptions } from 'fastify';

type Schema = Record<string, unknown>;

export interface RouteDoc {
  method: string;
  url: string;
  scope: string;
  schema: Schema;
}

const ERROR = { $ref: '#/components/schemas/Error' };

/** `/api/v1/machines/:id` → `/api/v1/machines/{id}` */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** Remembers what a route says about itself; only /api/ routes are documented. */
export function routeDoc(r: RouteOptions): RouteDoc[] {
  if (!r.url.startsWith('/api/')) return [];
  const methods = (Array.isArray(r.method) ? r.method : [r.method]).filter((m) => m !== 'HEAD');
  return methods.map((method) => ({ method: method.toLowerCase(), url: r.url, scope: String(r.config?.scope ?? 'admin'), schema: (r.schema ?? {}) as Schema }));
}

function parameters(where: 'path' | 'query', schema: unknown): Schema[] {
  if (!schema || typeof schema !== 'object') return [];
  const s = schema as { properties?: Record<string, Schema & { description?: string }>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, p]) => {
    const { description, ...rest } = p;
    const out: Schema = { name, in: where, required: where === 'path' || (s.required ?? []).includes(name), schema: rest };
    if (description) out.description = description;
    if (rest.type === 'array') Object.assign(out, { style: 'form', explode: true });
    return out;
  });
}

/** The OpenAPI 3.1 document, built from the same JSON schemas fastify validates with, so the two never drift. */
export function buildOpenApi(routes: RouteDoc[], info: { version: string }): Schema {
  const paths: Record<string, Record<string, Schema>> = {};
  for (const r of routes) {
    const s = r.schema;
    const responses: Record<string, Schema> = {};
    for (const [code, body] of Object.entries((s.response ?? {}) as Record<string, Schema>)) {
      const ok = Number(code) < 300;
      responses[code] =
        body.type === 'null'
          ? { description: 'no content' }
          : { description: ok ? 'success' : 'error', content: { 'application/json': { schema: ok ? body : ERROR } } };
    }
    if (Array.isArray(s.produces)) responses['200'] = { description: 'stream', content: Object.fromEntries((s.produces as string[]).map((t) => [t, { schema: { type: 'string' } }])) };
    responses['400'] ??= { description: 'bad request: the message names the field', content: { 'application/json': { schema: ERROR } } };
    if (r.scope !== 'public') {
      responses['401'] = { description: 'no valid token or session', content: { 'application/json': { schema: ERROR } } };
      responses['403'] = { description: `the token lacks the ${r.scope} scope, or a cross-site request`, content: { 'application/json': { schema: ERROR } } };
    }
    const op: Schema = {
      operationId: `${r.method}${openApiPath(r.url)
        .replace(/^\/api\/v1/, '')
        .split(/[/{}-]+/)
        .filter(Boolean)
        .map((w) => w[0]!.toUpperCase() + w.slice(1))
        .join('')}`,
      summary: s.summary ?? '',
      tags: s.tags ?? [],
      'x-required-scope': r.scope,
      parameters: [...parameters('path', s.params), ...parameters('query', s.querystring)],
      responses,
      security: r.scope === 'public' ? [] : [{ bearer: [] }, { session: [] }],
    };
    if (s.body) op.requestBody = { required: true, content: { 'application/json': { schema: s.body } } };
    (paths[openApiPath(r.url)] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'heph admin API',
      version: info.version,
      description:
        'Inventory, profiles, selectors, events, audit and API tokens of heph. Authenticate with `Authorization: Bearer heph_…` (scopes read < operator < admin), or with the web page session cookie plus `X-CSRF-Token`. Errors are `{"error": {"code", "message"}}`.',
    },
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas: { Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } } } },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API token: heph_<id>_<secret>' },
        session: { type: 'apiKey', in: 'cookie', name: 'heph_session', description: 'web page session (POST /api/v1/session)' },
      },
    },
  };
}

declare module 'fastify' {
  interface FastifySchema {
    /** Documentation only: copied into the OpenAPI document. */
    summary?: string;
    tags?: string[];
    produces?: string[];
  }
}
