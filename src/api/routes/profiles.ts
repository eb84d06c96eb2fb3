import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseProfile, parseSelector } from '../../boot/profiles.ts';
import type { Context } from '../../context.ts';
import { audit } from '../../inventory/audit.ts';
import { actor } from '../auth.ts';
import { profileExists } from '../operations.ts';
import { ApiError, notFound } from '../errors.ts';
import { iso } from '../json.ts';
import { errorSchema, labelsSchema, nameParams, nameSchema } from '../schemas.ts';

interface ProfileRow {
  name: string;
  spec: string;
  source: string;
  created_at: number;
  updated_at: number;
}
interface SelectorRow {
  name: string;
  profile: string;
  match: string;
  auto_accept: number;
  source: string;
  created_at: number;
  updated_at: number;
}

/**
 * A profile's base config and inline patches may carry cluster secrets (Talos CA keys, bootstrap tokens): only
 * admin tokens see them; everyone else sees their size.
 */
export function redactSpec(spec: Record<string, unknown>): Record<string, unknown> {
  const out = { ...spec };
  const hide = (v: unknown): string => `[redacted: ${(typeof v === 'string' ? v : JSON.stringify(v)).length} bytes]`;
  if (out.baseInline !== undefined) out.baseInline = hide(out.baseInline);
  if (Array.isArray(out.patches)) out.patches = out.patches.map((p: unknown) => (p && typeof p === 'object' && 'inline' in p ? { inline: hide((p as { inline: unknown }).inline) } : p));
  return out;
}

const profileJson = (r: ProfileRow, full: boolean): Record<string, unknown> => {
  const spec = JSON.parse(r.spec) as Record<string, unknown>;
  return { name: r.name, spec: full ? spec : redactSpec(spec), source: r.source, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at) };
};
const selectorJson = (r: SelectorRow): Record<string, unknown> => ({
  name: r.name,
  profile: r.profile,
  match: JSON.parse(r.match) as unknown,
  autoAccept: r.auto_accept !== 0,
  source: r.source,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

const profileSchema = {
  type: 'object',
  properties: { name: { type: 'string' }, spec: { type: 'object', additionalProperties: true }, source: { type: 'string' }, createdAt: { type: 'string' }, updatedAt: { type: 'string' } },
} as const;
const profileBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'spec'],
  properties: {
    name: nameSchema,
    spec: {
      type: 'object',
      description: 'what to install: talosVersion, arch, kernelArgs, base (a file in profiles.dir) or baseInline, patches, install (see the profiles documentation)',
      additionalProperties: true,
    },
  },
} as const;

// One value or a list of values (any of which may match); src/boot checks and normalises each value.
const oneOrMany = { type: ['string', 'array'], items: { type: 'string', maxLength: 253 }, maxLength: 253, maxItems: 1024 } as const;
const matchSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'every given key must match (a list matches any of its values); an empty match selects every machine',
  properties: { mac: oneOrMany, uuid: oneOrMany, serial: oneOrMany, arch: oneOrMany, hostname: oneOrMany, labels: labelsSchema },
} as const;
const selectorSchema = {
  type: 'object',
  properties: { name: { type: 'string' }, profile: { type: 'string' }, match: { type: 'object', additionalProperties: true }, autoAccept: { type: 'boolean' }, source: { type: 'string' }, createdAt: { type: 'string' }, updatedAt: { type: 'string' } },
} as const;
const selectorBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'profile'],
  properties: { name: nameSchema, profile: nameSchema, match: matchSchema, autoAccept: { type: 'boolean', default: false } },
} as const;
interface SelectorBody {
  name: string;
  profile: string;
  match?: Record<string, unknown>;
  autoAccept: boolean;
}

const full = (req: FastifyRequest): boolean => req.identity?.scope === 'admin';

const validation = { type: 'object', properties: { valid: { type: 'boolean' }, problems: { type: 'array', items: { type: 'string' } } } } as const;

export function profileRoutes(app: FastifyInstance, ctx: Context): void {
  const getProfile = (name: string): ProfileRow => {
    const r = ctx.db.prepare<[string], ProfileRow>('SELECT * FROM profiles WHERE name = ?').get(name);
    if (!r) throw notFound(`profile ${name}`);
    return r;
  };
  const getSelector = (name: string): SelectorRow => {
    const r = ctx.db.prepare<[string], SelectorRow>('SELECT * FROM selectors WHERE name = ?').get(name);
    if (!r) throw notFound(`selector ${name}`);
    return r;
  };
  const mutate = (req: FastifyRequest, action: string, detail: Record<string, unknown>, write: () => void): void => {
    ctx.db.transaction(() => {
      audit(ctx.db, { actor: actor(req), action, ip: req.ip, detail });
      write();
    }).immediate();
  };
  const dir = ctx.settings.profiles.dir || undefined;
  // The boot module owns what a valid profile or selector is; these only translate its verdict.
  const profileProblems = (body: { name: string; spec: Record<string, unknown> }): string[] => {
    try {
      parseProfile({ ...body.spec, kind: 'Profile', name: body.name }, 'api', dir);
      return [];
    } catch (err) {
      return [`spec: ${(err as Error).message}`];
    }
  };
  const checkSelector = (body: SelectorBody): { match: object; problems: string[] } => {
    let match: object = {};
    const problems: string[] = [];
    try {
      match = parseSelector({ kind: 'Selector', name: body.name, profile: body.profile, match: body.match ?? {}, autoAccept: body.autoAccept }, 'api').match;
    } catch (err) {
      problems.push(`match: ${(err as Error).message}`);
    }
    if (!profileExists(ctx, body.profile)) problems.push(`profile: no profile named ${JSON.stringify(body.profile)}`);
    return { match, problems };
  };
  const refuse = (problems: string[]): void => {
    if (problems.length) throw new ApiError(400, 'bad_request', problems.join('; '));
  };

  app.get('/api/v1/profiles', {
    config: { scope: 'read' },
    schema: { summary: 'List profiles', tags: ['profiles'], response: { 200: { type: 'object', properties: { items: { type: 'array', items: profileSchema } } } } },
    handler: async (req) => ({ items: ctx.db.prepare<[], ProfileRow>('SELECT * FROM profiles ORDER BY name').all().map((r) => profileJson(r, full(req))) }),
  });
  app.get('/api/v1/profiles/:name', {
    config: { scope: 'read' },
    schema: { summary: 'One profile', tags: ['profiles'], params: nameParams, response: { 200: profileSchema, 404: errorSchema } },
    handler: async (req) => profileJson(getProfile((req.params as { name: string }).name), full(req)),
  });
  app.post('/api/v1/profiles/validate', {
    config: { scope: 'read' },
    schema: { summary: 'Check a profile without storing it', tags: ['profiles'], body: profileBody, response: { 200: validation } },
    handler: async (req) => {
      const problems = profileProblems(req.body as { name: string; spec: Record<string, unknown> });
      return { valid: problems.length === 0, problems };
    },
  });
  app.post('/api/v1/profiles', {
    config: { scope: 'operator' },
    schema: { summary: 'Create a profile', tags: ['profiles'], body: profileBody, response: { 201: profileSchema, 400: errorSchema, 409: errorSchema } },
    handler: async (req, reply) => {
      const body = req.body as { name: string; spec: Record<string, unknown> };
      refuse(profileProblems(body));
      if (ctx.db.prepare('SELECT 1 FROM profiles WHERE name = ?').get(body.name)) throw new ApiError(409, 'conflict', `profile ${body.name} already exists`);
      const now = Date.now();
      mutate(req, 'profile.create', { name: body.name }, () =>
        ctx.db.prepare("INSERT INTO profiles (name, spec, source, created_at, updated_at) VALUES (?, ?, 'api', ?, ?)").run(body.name, JSON.stringify(body.spec), now, now),
      );
      return reply.code(201).send(profileJson(getProfile(body.name), full(req)));
    },
  });
  app.put('/api/v1/profiles/:name', {
    config: { scope: 'operator' },
    schema: { summary: 'Replace a profile', tags: ['profiles'], params: nameParams, body: profileBody, response: { 200: profileSchema, 400: errorSchema, 404: errorSchema } },
    handler: async (req) => {
      const { name } = req.params as { name: string };
      const body = req.body as { name: string; spec: Record<string, unknown> };
      if (body.name !== name) throw new ApiError(400, 'bad_request', `name: must be ${JSON.stringify(name)} (profiles are not renamed)`);
      getProfile(name);
      refuse(profileProblems(body));
      mutate(req, 'profile.update', { name }, () => ctx.db.prepare("UPDATE profiles SET spec = ?, source = 'api', updated_at = ? WHERE name = ?").run(JSON.stringify(body.spec), Date.now(), name));
      return profileJson(getProfile(name), full(req));
    },
  });
  app.delete('/api/v1/profiles/:name', {
    config: { scope: 'operator' },
    schema: { summary: 'Delete a profile no selector or machine uses', tags: ['profiles'], params: nameParams, response: { 204: { type: 'null' }, 404: errorSchema, 409: errorSchema } },
    handler: async (req, reply) => {
      const { name } = req.params as { name: string };
      getProfile(name);
      const selectors = ctx.db.prepare('SELECT name FROM selectors WHERE profile = ?').pluck().all(name) as string[];
      const machines = (ctx.db.prepare('SELECT count(*) FROM machines WHERE profile = ?').pluck().get(name) as number) ?? 0;
      if (selectors.length || machines) {
        throw new ApiError(409, 'in_use', `profile ${name} is used by ${selectors.length ? `selectors ${selectors.join(', ')}` : ''}${selectors.length && machines ? ' and ' : ''}${machines ? `${machines} machine(s)` : ''}`);
      }
      mutate(req, 'profile.delete', { name }, () => ctx.db.prepare('DELETE FROM profiles WHERE name = ?').run(name));
      return reply.code(204).send();
    },
  });

  app.get('/api/v1/selectors', {
    config: { scope: 'read' },
    schema: { summary: 'List selectors', tags: ['selectors'], response: { 200: { type: 'object', properties: { items: { type: 'array', items: selectorSchema } } } } },
    handler: async () => ({ items: ctx.db.prepare<[], SelectorRow>('SELECT * FROM selectors ORDER BY name').all().map(selectorJson) }),
  });
  app.get('/api/v1/selectors/:name', {
    config: { scope: 'read' },
    schema: { summary: 'One selector', tags: ['selectors'], params: nameParams, response: { 200: selectorSchema, 404: errorSchema } },
    handler: async (req) => selectorJson(getSelector((req.params as { name: string }).name)),
  });
  app.post('/api/v1/selectors/validate', {
    config: { scope: 'read' },
    schema: { summary: 'Check a selector without storing it', tags: ['selectors'], body: selectorBody, response: { 200: validation } },
    handler: async (req) => {
      const { problems } = checkSelector(req.body as SelectorBody);
      return { valid: problems.length === 0, problems };
    },
  });
  const writeSelector = (name: string, body: { profile: string; match: object; autoAccept: boolean }, created: number): void => {
    ctx.db
      .prepare(
        `INSERT INTO selectors (name, profile, match, auto_accept, source, created_at, updated_at) VALUES (@name, @profile, @match, @auto, 'api', @created, @now)
         ON CONFLICT (name) DO UPDATE SET profile = @profile, match = @match, auto_accept = @auto, source = 'api', updated_at = @now`,
      )
      .run({ name, profile: body.profile, match: JSON.stringify(body.match), auto: body.autoAccept ? 1 : 0, created, now: Date.now() });
  };
  app.post('/api/v1/selectors', {
    config: { scope: 'operator' },
    schema: { summary: 'Create a selector', tags: ['selectors'], body: selectorBody, response: { 201: selectorSchema, 400: errorSchema, 409: errorSchema } },
    handler: async (req, reply) => {
      const body = req.body as SelectorBody;
      const { match, problems } = checkSelector(body);
      refuse(problems);
      if (ctx.db.prepare('SELECT 1 FROM selectors WHERE name = ?').get(body.name)) throw new ApiError(409, 'conflict', `selector ${body.name} already exists`);
      mutate(req, 'selector.create', { name: body.name, profile: body.profile, match, autoAccept: body.autoAccept }, () => writeSelector(body.name, { ...body, match }, Date.now()));
      return reply.code(201).send(selectorJson(getSelector(body.name)));
    },
  });
  app.put('/api/v1/selectors/:name', {
    config: { scope: 'operator' },
    schema: { summary: 'Replace a selector', tags: ['selectors'], params: nameParams, body: selectorBody, response: { 200: selectorSchema, 400: errorSchema, 404: errorSchema } },
    handler: async (req) => {
      const { name } = req.params as { name: string };
      const body = req.body as SelectorBody;
      if (body.name !== name) throw new ApiError(400, 'bad_request', `name: must be ${JSON.stringify(name)} (selectors are not renamed)`);
      const prior = getSelector(name);
      const { match, problems } = checkSelector(body);
      refuse(problems);
      mutate(req, 'selector.update', { name, profile: body.profile, match, autoAccept: body.autoAccept }, () => writeSelector(name, { ...body, match }, prior.created_at));
      return selectorJson(getSelector(name));
    },
  });
  app.delete('/api/v1/selectors/:name', {
    config: { scope: 'operator' },
    schema: { summary: 'Delete a selector', tags: ['selectors'], params: nameParams, response: { 204: { type: 'null' }, 404: errorSchema } },
    handler: async (req, reply) => {
      const { name } = req.params as { name: string };
      getSelector(name);
      mutate(req, 'selector.delete', { name }, () => ctx.db.prepare('DELETE FROM selectors WHERE name = ?').run(name));
      return reply.code(204).send();
    },
  });
}
