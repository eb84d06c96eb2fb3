import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const UI_DIR = fileURLToPath(new URL('../../assets/ui/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/**
 * The page's policy: only our own scripts, styles and connections; no inline script or style, no framing, no
 * plugins, forms post only here. A hostname like `<script>` that slipped past escaping still could not run.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** The page's files, read once at start (a handful of small files): no path from a request ever reaches the disk. */
export function loadUi(dir = UI_DIR): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return files;
}

export function uiRoutes(app: FastifyInstance, files: Map<string, StaticFile>): void {
  const send = (name: string, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const f = files.get(name);
    if (!f) return reply.code(404).send({ error: { code: 'not_found', message: `no file ${name}` } });
    reply.header('content-type', f.type).header('etag', f.etag).header('cache-control', 'no-cache');
    if (req.headers['if-none-match'] === f.etag) return reply.code(304).send();
    return reply.send(f.body);
  };
  app.get('/', { config: { scope: 'public' } }, async (req, reply) => send('index.html', req, reply));
  app.get('/docs', { config: { scope: 'public' } }, async (req, reply) => send('docs.html', req, reply));
  app.get(
    '/ui/:file',
    { config: { scope: 'public' }, schema: { params: { type: 'object', required: ['file'], properties: { file: { type: 'string', pattern: '^[a-z0-9-]+\\.(js|css|html|svg|ico)$' } } } } },
    async (req, reply) => send((req.params as { file: string }).file, req, reply),
  );
}
