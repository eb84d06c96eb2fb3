import type { FastifyInstance } from 'fastify';
import type { Context } from '../../context.ts';
import { audit } from '../../inventory/audit.ts';
import { actor } from '../auth.ts';
import { notFound } from '../errors.ts';
import { iso } from '../json.ts';
import { errorSchema, pageQuery } from '../schemas.ts';
import { SCOPES, type ApiToken, type Scope, type Tokens } from '../tokens.ts';

export const tokenJson = (t: ApiToken): Record<string, unknown> => ({
  id: t.id,
  name: t.name,
  scope: t.scope,
  createdAt: iso(t.createdAt),
  lastUsedAt: iso(t.lastUsedAt),
  revokedAt: iso(t.revokedAt),
});
const tokenSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    scope: { type: 'string', enum: [...SCOPES] },
    createdAt: { type: 'string' },
    lastUsedAt: { type: ['string', 'null'] },
    revokedAt: { type: ['string', 'null'] },
  },
} as const;

/** API tokens and the audit trail: the admin's and the auditor's views. */
export function adminRoutes(app: FastifyInstance, ctx: Context, tokens: Tokens): void {
  app.get('/api/v1/tokens', {
    config: { scope: 'admin' },
    schema: { summary: 'List API tokens (never their secrets)', tags: ['tokens'], response: { 200: { type: 'object', properties: { items: { type: 'array', items: tokenSchema } } } } },
    handler: async () => ({ items: tokens.list().map(tokenJson) }),
  });
  app.post('/api/v1/tokens', {
    config: { scope: 'admin' },
    schema: {
      summary: 'Create an API token; the response is the only time its secret is shown',
      tags: ['tokens'],
      body: { type: 'object', additionalProperties: false, required: ['name', 'scope'], properties: { name: { type: 'string', minLength: 1, maxLength: 100 }, scope: { type: 'string', enum: [...SCOPES] } } },
      response: { 201: { type: 'object', properties: { token: { type: 'string' }, record: tokenSchema } } },
    },
    handler: async (req, reply) => {
      const body = req.body as { name: string; scope: Scope };
      const made = ctx.db.transaction(() => {
        const t = tokens.create(body.name, body.scope);
        audit(ctx.db, { actor: actor(req), action: 'token.create', ip: req.ip, detail: { id: t.record.id, name: body.name, scope: body.scope } });
        return t;
      }).immediate();
      return reply.code(201).header('cache-control', 'no-store').send({ token: made.token, record: tokenJson(made.record) });
    },
  });
  app.delete('/api/v1/tokens/:id', {
    config: { scope: 'admin' },
    schema: { summary: 'Revoke an API token (its web sessions end too)', tags: ['tokens'], params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } }, response: { 204: { type: 'null' }, 404: errorSchema } },
    handler: async (req, reply) => {
      const { id } = req.params as { id: string };
      const revoked = ctx.db.transaction(() => {
        if (!tokens.revoke(id)) return false;
        audit(ctx.db, { actor: actor(req), action: 'token.revoke', ip: req.ip, detail: { id } });
        return true;
      }).immediate();
      if (!revoked) throw notFound(`live token ${id}`);
      return reply.code(204).send();
    },
  });

  app.get('/api/v1/audit', {
    config: { scope: 'admin' },
    schema: {
      summary: 'The audit trail, newest first (read-only)',
      tags: ['audit'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { machine: { type: 'string', maxLength: 64 }, action: { type: 'string', maxLength: 64 }, actor: { type: 'string', maxLength: 64 }, before: { type: 'integer', minimum: 1 }, ...pageQuery },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            items: {
              type: 'array',
              items: {
                type: 'object',
                properties: { id: { type: 'integer' }, at: { type: 'string' }, actor: { type: 'string' }, action: { type: 'string' }, machineId: { type: ['string', 'null'] }, ip: { type: ['string', 'null'] }, detail: { type: 'object', additionalProperties: true } },
              },
            },
          },
        },
      },
    },
    handler: async (req) => {
      const q = req.query as { machine?: string; action?: string; actor?: string; before?: number; limit: number; offset: number };
      const rows = ctx.db
        .prepare(
          `SELECT * FROM audit WHERE (@machine IS NULL OR machine_id = @machine) AND (@action IS NULL OR action = @action) AND (@actor IS NULL OR actor = @actor)
           AND (@before IS NULL OR id < @before) ORDER BY id DESC LIMIT @limit OFFSET @offset`,
        )
        .all({ machine: q.machine ?? null, action: q.action ?? null, actor: q.actor ?? null, before: q.before ?? null, limit: q.limit, offset: q.offset }) as {
        id: number;
        at: number;
        actor: string;
        action: string;
        machine_id: string | null;
        ip: string | null;
        detail: string;
      }[];
      return { items: rows.map((r) => ({ id: r.id, at: iso(r.at), actor: r.actor, action: r.action, machineId: r.machine_id, ip: r.ip, detail: JSON.parse(r.detail) as unknown })) };
    },
  });
}
