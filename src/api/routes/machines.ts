import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Context } from '../../context.ts';
import { MACHINE_STATES } from '../../inventory/machines.ts';
import { actor } from '../auth.ts';
import { eventJson, iso, machineJson } from '../json.ts';
import { parseLabelFilter, SORTS, type Sort } from '../machine-query.ts';
import { actOnMachine, deleteMachine, explainProfile, getMachine, listMachines, MACHINE_ACTIONS, updateMachine, type Caller, type MachineAction, type MachinePatch } from '../operations.ts';
import { errorSchema, eventSchema, idParams, labelsSchema, machineSchema, pageQuery } from '../schemas.ts';

const HOSTNAME = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$';

export const listQuery = {
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

export const patchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    hostname: { type: ['string', 'null'], pattern: HOSTNAME, maxLength: 253 },
    profile: { type: ['string', 'null'], maxLength: 63 },
    labels: labelsSchema,
  },
} as const;

export const reasonBody = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 500 } },
} as const;

const machineResponse = { 200: machineSchema, 404: errorSchema };

export function caller(req: FastifyRequest): Caller {
  return { actor: actor(req), name: req.identity?.name ?? null, ip: req.ip };
}

export function machineRoutes(app: FastifyInstance, ctx: Context): void {
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
      const { machines, total } = listMachines(ctx, { state: q.state, acceptance: q.acceptance, profile: q.profile, labels, q: q.q, sort: q.sort, desc: q.order === 'desc', limit: q.limit, offset: q.offset });
      return { items: machines.map(machineJson), total, limit: q.limit, offset: q.offset };
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
      const m = getMachine(ctx, (req.params as { id: string }).id);
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
    handler: async (req) => machineJson(updateMachine(ctx, caller(req), (req.params as { id: string }).id, req.body as MachinePatch)),
  });

  const summaries: Record<MachineAction, string> = {
    accept: 'Accept the machine: it may be installed and be served its config',
    reject: 'Reject the machine: it is never installed',
    reprovision: 'Install the machine again on its next netboot',
  };
  for (const what of Object.keys(MACHINE_ACTIONS) as MachineAction[]) {
    app.post(`/api/v1/machines/:id/${what}`, {
      config: { scope: 'operator' },
      schema: { summary: summaries[what], tags: ['machines'], params: idParams, body: reasonBody, response: machineResponse },
      // The reason is optional, and so is the body that carries it.
      preValidation: async (req) => {
        req.body ??= {};
      },
      handler: async (req) => machineJson(actOnMachine(ctx, caller(req), (req.params as { id: string }).id, what, (req.body as { reason?: string }).reason)),
    });
  }

  app.delete('/api/v1/machines/:id', {
    config: { scope: 'operator' },
    schema: { summary: 'Forget a machine (its NICs and timeline go with it; the audit stays)', tags: ['machines'], params: idParams, response: { 204: { type: 'null' }, 404: errorSchema } },
    handler: async (req, reply) => {
      deleteMachine(ctx, caller(req), (req.params as { id: string }).id);
      return reply.code(204).send();
    },
  });

  app.get('/api/v1/machines/:id/profile', {
    config: { scope: 'read' },
    schema: {
      summary: 'Which profile this machine would get, and why (assignment, or the winning selector)',
      tags: ['machines', 'selectors'],
      params: idParams,
      response: {
        200: {
          type: 'object',
          properties: {
            profile: { type: ['string', 'null'] },
            via: { type: ['string', 'null'], enum: ['assignment', 'selector', null] },
            selector: { type: ['string', 'null'] },
            reason: { type: 'string' },
            autoAccept: { type: 'boolean' },
            profileExists: { type: 'boolean' },
            catalogErrors: { type: 'array', items: { type: 'string' } },
          },
        },
        404: errorSchema,
      },
    },
    handler: async (req) => explainProfile(ctx, (req.params as { id: string }).id),
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
