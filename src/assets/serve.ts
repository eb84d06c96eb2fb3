import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendFileRange } from '../http/sendfile.ts';
import { peerAddress } from '../ipxe/identity.ts';
import type { Asset, AssetStore } from './store.ts';

export type ByteRange = { start: number; end: number } | 'unsatisfiable' | undefined;

/**
 * One `bytes=` range (RFC 9110 §14.1.2). Several ranges, other units or garbage: undefined, i.e. the whole file,
 * which the RFC allows and which keeps a 10k-part Range header from costing anything.
 */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || (m[2] !== '' && Number(m[2]) < start)) return 'unsatisfiable';
  return { start, end };
}

export interface AssetRouteHooks {
  /** Called once per download that starts at byte 0 (not for HEAD, not for later ranges). */
  onFetch(asset: Asset, ip: string): void;
  onRefused(asset: Asset, ip: string, problem: string): void;
}

/**
 * GET/HEAD /assets/<first 64 hex of the sha512>/<name>. Only ids recorded in the inventory resolve (no path is ever joined from the
 * request); bytes go from the verified descriptor to the socket by sendfile (see http/sendfile.ts).
 */
export function registerAssetRoutes(app: FastifyInstance, store: AssetStore, hooks: AssetRouteHooks): void {
  const handler = async (req: FastifyRequest<{ Params: { id: string; name: string } }>, reply: FastifyReply): Promise<FastifyReply> => {
    const { id, name } = req.params;
    const asset = store.byUrl(id, name);
    if (!asset) return reply.code(404).send({ error: { code: 'not_found', message: 'no such asset' } });
    const ip = peerAddress(req.socket.remoteAddress);
    const opened = await store.open(asset);
    if (!opened.ok) {
      hooks.onRefused(asset, ip, opened.problem);
      return reply.code(503).header('retry-after', '30').send({ error: { code: 'asset_unverified', message: `${asset.name} failed verification; heph will not serve it` } });
    }
    const { fh, size, head, release } = opened;
    const range = parseRange(req.headers.range, size);
    reply.header('accept-ranges', 'bytes').header('content-type', 'application/octet-stream').header('etag', `"${asset.id.slice(0, 32)}"`).header('cache-control', 'no-cache');
    if (range === 'unsatisfiable') {
      await release();
      return reply.code(416).header('content-range', `bytes */${size}`).send();
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
    reply.header('content-length', String(end - start + 1));
    if (req.method === 'HEAD' || size === 0) {
      await release();
      return reply.send();
    }
    if (start === 0) hooks.onFetch(asset, ip);
    await sendFileRange(reply, fh, start, end, release, head);
    return reply;
  };
  app.route({ method: ['GET', 'HEAD'], url: '/assets/:id/:name', exposeHeadRoute: false, handler });
}

/**
 * The file behind an asset URL path (`/assets/<id>/<name>`), for its signature at `<url>.sig`; undefined unless the
 * asset is known and its bytes still match its SHA-512 (a signature is never made over bytes heph refuses to serve).
 */
export async function assetFile(store: AssetStore, dataDir: string, path: string): Promise<{ file: string } | undefined> {
  const m = /^\/assets\/([^/]+)\/([^/]+)$/.exec(path);
  const asset = m ? store.byUrl(m[1]!, m[2]!) : undefined;
  if (!asset || (await store.problem(asset)) !== undefined) return undefined;
  return { file: join(dataDir, asset.path) };
}
