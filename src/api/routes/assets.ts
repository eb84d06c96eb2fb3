import type { FastifyInstance } from 'fastify';
import type { Context } from '../../context.ts';
import { notFound } from '../errors.ts';
import type { ImportJob, ImportJobs } from '../imports.ts';
import { iso } from '../json.ts';
import { errorSchema } from '../schemas.ts';
import { caller } from './machines.ts';

const jobSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    source: { type: 'string' },
    version: { type: ['string', 'null'] },
    state: { type: 'string', enum: ['running', 'done', 'failed'] },
    startedAt: { type: 'string' },
    finishedAt: { type: ['string', 'null'] },
    files: { type: 'object', additionalProperties: { type: 'object', properties: { done: { type: 'integer' }, total: { type: ['integer', 'null'] } } } },
    imported: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, arch: { type: 'string' }, kind: { type: 'string' }, size: { type: 'integer' }, sha512: { type: 'string' } } } },
    error: { type: ['string', 'null'] },
  },
} as const;

const jobJson = (j: ImportJob): Record<string, unknown> => ({
  ...j,
  startedAt: iso(j.startedAt),
  finishedAt: iso(j.finishedAt),
  imported: j.imported.map((a) => ({ name: a.name, arch: a.arch, kind: a.kind, size: a.size, sha512: a.id })),
});

export function assetRoutes(app: FastifyInstance, ctx: Context, jobs: ImportJobs): void {
  app.get('/api/v1/assets', {
    config: { scope: 'read' },
    schema: {
      summary: 'Imported boot assets (kernels, initramfs images)',
      tags: ['assets'],
      response: {
        200: {
          type: 'object',
          properties: {
            items: {
              type: 'array',
              items: { type: 'object', properties: { sha512: { type: 'string' }, name: { type: 'string' }, version: { type: 'string' }, arch: { type: 'string' }, kind: { type: 'string' }, size: { type: 'integer' }, importedAt: { type: 'string' } } },
            },
          },
        },
      },
    },
    handler: async () => {
      const rows = ctx.db.prepare('SELECT * FROM assets ORDER BY version, arch, name').all() as { id: string; name: string; version: string; arch: string; kind: string; size: number; imported_at: number }[];
      return { items: rows.map((r) => ({ sha512: r.id, name: r.name, version: r.version, arch: r.arch, kind: r.kind, size: r.size, importedAt: iso(r.imported_at) })) };
    },
  });

  app.post('/api/v1/assets/imports', {
    config: { scope: 'admin' },
    schema: {
      summary: "Import a Talos release's kernels and initramfs images from a URL, verified against its sha512sum.txt (runs in the background)",
      tags: ['assets'],
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['source'],
        properties: {
          // A URL only: a server-side path from the API would let a token holder read the daemon's disk.
          source: { type: 'string', pattern: '^https?://[^\\s]+$', maxLength: 2000, description: 'release URL, e.g. https://github.com/siderolabs/talos/releases/download/v1.13.9' },
          version: { type: 'string', pattern: '^v\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.]+)?$' },
          arches: { type: 'array', items: { type: 'string', enum: ['amd64', 'arm64'] }, uniqueItems: true },
        },
      },
      response: { 202: jobSchema },
    },
    handler: async (req, reply) => reply.code(202).send(jobJson(jobs.start(caller(req), req.body as { source: string; version?: string; arches?: string[] }))),
  });

  app.get('/api/v1/assets/imports', {
    config: { scope: 'read' },
    schema: { summary: 'Asset imports started from the API, newest first, with their progress', tags: ['assets'], response: { 200: { type: 'object', properties: { items: { type: 'array', items: jobSchema } } } } },
    handler: async () => ({ items: jobs.list().map(jobJson) }),
  });

  app.get('/api/v1/assets/imports/:id', {
    config: { scope: 'read' },
    schema: { summary: 'One asset import and its progress', tags: ['assets'], params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 32 } } }, response: { 200: jobSchema, 404: errorSchema } },
    handler: async (req) => {
      const job = jobs.get((req.params as { id: string }).id);
      if (!job) throw notFound('import');
      return jobJson(job);
    },
  });
}
