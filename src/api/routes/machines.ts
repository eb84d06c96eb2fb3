import type { FastifyInstance, FastifyRequest } from 'fastify';
import { loadCatalog } from '../../boot/profiles.ts';
import type { Context } from '../../context.ts';
import { audit } from '../../inventory/audit.ts';
import { MACHINE_STATES, type Machine } from '../../inventory/machines.ts';
import { actor } from '../auth.ts';
import { badRequest, notFound } from '../errors.ts';
import { eventJson, iso, machineJson } from '../json.ts';
import { buildMachineQuery, parseLabelFilter, SORTS, type Sort } from '../machine-query.ts';
import { errorSchema, eventSchema, idParams, labelsSchema, machineSchema, pageQuery } from '../schemas.ts';

const HOSTNAME = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$';

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { type: 'string', enum: [...MACHINE_STATES] },
    acceptance: { type: 'string', enum: ['pending', 'accepted', 'rejected'] },
    profile: { type: 'string', maxLength: 63, description: 'profile name; empty: machines with no profile assigned' },
    label: { type: 'array', items: { type: 'string', pattern: '^[^=]+=.*$', maxLength: 300 }, maxItems: 8, description: 'key=value, repeatable' },
    q: { type: 'string', maxLength: 100, description: 'substring of id, hostname, UUID, serial, IP or MAC' },
    sort: { type: 'string', enum: Object.keys(SORTS) },
    order: { type: 'string', enum: ['asc', 'desc'], default: 'asc' },
    ...pageQuery,
  },
} as const;

interface ListQuery {
  state?: string;
  acceptance?: string;
  profile?: string;
  label?: string[];
  q?: string;
  sort?: Sort;
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

const patchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    hostname: { type: ['string', 'null'], pattern: HOSTNAME, maxLength: 253 },
    profile: { type: ['string', 'null'], maxLength: 63 },
    labels: labelsSchema,
  },
} as const;

const reasonBody = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 500 } },
} as const;

const machineResponse = { 200: machineSchema, 404: errorSchema };

export function machineRoutes(app: FastifyInstance, ctx: Context): void {
  const get = (id: string): Machine => {
    const m = ctx.machines.get(id);
    if (!m) throw notFound(`machine ${id}`);
    return m;
  };
  // A change an operator made shows on the machine's timeline (and live on the page), and in the audit.
  const record = (req: FastifyRequest, m: Machine, action: string, message: string, detail: Record<string, unknown> = {}): void => {
    ctx.db.transaction(() => {
      audit(ctx.db, { actor: actor(req), action, machineId: m.id, ip: req.ip, detail });
      ctx.timeline.appendNow({ machineId: m.id, kind: action, source: 'api', message, ip: req.ip, data: { by: req.identity?.name ?? null, ...detail } });
    }).immediate();
  };

  app.get('/api/v1/machines', {
    config: { scope: 'read' },
    schema: {
      summary: 'List machines, filtered and paged',
      tags: ['machines'],
      querystring: listQuery,
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: machineSchema }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } } } },
    },
    handler: async (req) => {
      const q = req.query as ListQuery;
      const labels = (q.label ?? []).map((l) => parseLabelFilter(l)!);
      const built = buildMachineQuery({ state: q.state, acceptance: q.acceptance, profile: q.profile, labels, q: q.q, sort: q.sort, desc: q.order === 'desc', limit: q.limit, offset: q.offset });
      const total = (ctx.db.prepare(`SELECT count(*) AS n FROM machines m ${built.where}`).get(built.params) as { n: number }).n;
      const ids = ctx.db
        .prepare(`SELECT m.id FROM machines m ${built.where} ORDER BY ${built.order} LIMIT @limit OFFSET @offset`)
        .pluck()
        .all({ ...built.params, limit: q.limit, offset: q.offset }) as string[];
      const items = ids.flatMap((id) => {
        const m = ctx.machines.get(id);
        return m ? [machineJson(m)] : [];
      });
      return { items, total, limit: q.limit, offset: q.offset };
    },
  });

  app.get('/api/v1/machines/:id', {
    config: { scope: 'read' },
    schema: {
      summary: 'One machine with its NICs, hardware facts, timeline and kernel log',
      tags: ['machines'],
      params: idParams,
      response: {
        200: {
          type: 'object',
          properties: {
            machine: machineSchema,
            nics: { type: 'array', items: { type: 'object', properties: { mac: { type: 'string' }, ip: { type: ['string', 'null'] }, firstSeen: { type: 'string' }, lastSeen: { type: 'string' } } } },
            timeline: { type: 'array', items: eventSchema },
            kernelLog: { type: 'array', items: { type: 'object', additionalProperties: true } },
          },
        },
        404: errorSchema,
      },
    },
    handler: async (req) => {
      const m = get((req.params as { id: string }).id);
      const nics = ctx.db
        .prepare<[string], { mac: string; last_ip: string | null; first_seen: number; last_seen: number }>('SELECT * FROM nics WHERE machine_id = ? ORDER BY first_seen, mac')
        .all(m.id)
        .map((n) => ({ mac: n.mac, ip: n.last_ip, firstSeen: iso(n.first_seen), lastSeen: iso(n.last_seen) }));
      ctx.writer.flush();
      return { machine: machineJson(m), nics, timeline: ctx.timeline.list(m.id, { limit: 2000 }).map(eventJson), kernelLog: kernelLog(ctx, m.id) };
    },
  });

  app.patch('/api/v1/machines/:id', {
    config: { scope: 'operator' },
    schema: { summary: 'Change hostname, profile or labels', tags: ['machines'], params: idParams, body: patchBody, response: machineResponse },
    handler: async (req) => {
      const m = get((req.params as { id: string }).id);
      const body = req.body as { hostname?: string | null; profile?: string | null; labels?: Record<string, string> };
      if (typeof body.profile === 'string' && !loadCatalog(ctx.settings.profiles.dir || undefined, ctx.db).profiles.has(body.profile)) {
        throw badRequest('profile', `no profile named ${JSON.stringify(body.profile)}`);
      }
      const changed = Object.keys(body).join(', ');
      record(req, m, 'machine.update', `${changed} changed`, { changes: body });
      // update() skips undefined fields, and null clears a column.
      return machineJson(ctx.machines.update(m.id, body as Parameters<typeof ctx.machines.update>[1])!);
    },
  });

  const decision = (path: string, summary: string, action: string, message: string, patch: Parameters<typeof ctx.machines.update>[1]): void => {
    app.post(`/api/v1/machines/:id/${path}`, {
      config: { scope: 'operator' },
      schema: { summary, tags: ['machines'], params: idParams, body: reasonBody, response: machineResponse },
      // The reason is optional, and so is the body that carries it.
      preValidation: async (req) => {
        req.body ??= {};
      },
      handler: async (req) => {
        const m = get((req.params as { id: string }).id);
        const reason = (req.body as { reason?: string } | undefined)?.reason;
        record(req, m, action, reason ? `${message}: ${reason}` : message, reason ? { reason } : {});
        return machineJson(ctx.machines.update(m.id, patch)!);
      },
    });
  };
  decision('accept', 'Accept the machine: it may be installed and be served its config', 'machine.accept', 'accepted by an operator', { acceptance: 'accepted' });
  decision('reject', 'Reject the machine: it is never installed', 'machine.reject', 'rejected by an operator', { acceptance: 'rejected', reprovision: false });
  decision('reprovision', 'Install the machine again on its next netboot', 'machine.reprovision', 'reprovision requested', { reprovision: true });

  app.delete('/api/v1/machines/:id', {
    config: { scope: 'operator' },
    schema: { summary: 'Forget a machine (its NICs and timeline go with it; the audit stays)', tags: ['machines'], params: idParams, response: { 204: { type: 'null' }, 404: errorSchema } },
    handler: async (req, reply) => {
      const m = get((req.params as { id: string }).id);
      ctx.writer.flush();
      ctx.db.transaction(() => {
        audit(ctx.db, { actor: actor(req), action: 'machine.delete', machineId: m.id, ip: req.ip, detail: { hostname: m.hostname, macs: m.macs, uuid: m.uuid } });
        ctx.machines.delete(m.id);
      }).immediate();
      return reply.code(204).send();
    },
  });
}

/** The machine's kernel log, if the events module keeps one (its table may not exist in this build). */
function kernelLog(ctx: Context, id: string): Record<string, unknown>[] {
  const table = ctx.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('kernel_log', 'kernel_logs', 'kmsg') LIMIT 1").pluck().get() as string | undefined;
  if (!table) return [];
  const rows = ctx.db.prepare(`SELECT * FROM ${table} WHERE machine_id = ? ORDER BY rowid DESC LIMIT 500`).all(id) as Record<string, unknown>[];
  return rows.reverse().map((r) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = k === 'at' && typeof v === 'number' ? iso(v) : v;
    return out;
  });
}
