import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from '../log.ts';
import { counter, type Registry } from '../metrics.ts';
import type { Signer } from './sign.ts';

/** What a `<url>.sig` is a signature of: a file on disk (an asset) or fixed bytes. */
export type SignedContent = { file: string } | { body: Buffer | string };

/**
 * Maps the URL path of a signed resource (`/assets/v1.13.9/amd64/vmlinuz`, without `.sig` and the query) to
 * its content, or undefined when there is no such resource. Only for content that is the same on every fetch:
 * scripts are signed as they are sent (see below).
 */
export type ContentResolver = (path: string, req: FastifyRequest) => SignedContent | undefined | Promise<SignedContent | undefined>;

export interface SignatureOptions {
  signer: Signer;
  resolve?: ContentResolver;
  log: Logger;
  metrics: Registry;
  /** How long a script's signature stays fetchable after the script was sent. */
  scriptTtlMs?: number;
  /** At most this many script signatures are kept (the oldest go first). */
  maxScripts?: number;
}

const SIG = '.sig';
const IPXE_MAGIC = Buffer.from('#!ipxe');

/**
 * Serves `<url>.sig` (DER CMS, detached) for everything iPXE loads, on the given fastify instance:
 *
 * - Every iPXE script heph sends (a 200 whose body starts with `#!ipxe`) is signed as it leaves, and its
 *   signature is kept for that client and that exact URL. Per-machine scripts carry a freshly minted one-time
 *   token, so rendering the script again for the `.sig` request would give different bytes: the script is
 *   fetched first (`imgfetch`), then its signature (`imgverify`), by the same machine.
 * - Anything else comes from `resolve` (assets): files are hashed as a stream, and the signature is cached
 *   until the file's size, mtime or inode changes.
 *
 * No route has to know about signatures; a `.sig` path never reaches the other routes.
 */
export function registerSignatureRoutes(app: FastifyInstance, opts: SignatureOptions): void {
  const ttl = opts.scriptTtlMs ?? 10 * 60_000;
  const max = opts.maxScripts ?? 20_000;
  const scripts = new Map<string, { sig: Buffer; expires: number }>();
  const files = new Map<string, { stamp: string; sig: Promise<Buffer> }>();
  // The entry script (boot.ipxe) is the same for every machine: one RSA operation for a boot storm, not one each.
  const byContent = new Map<string, Buffer>();
  const served = counter(opts.metrics, 'heph_signatures_served_total', 'Signatures served at <url>.sig, by what was signed.', ['kind']);
  const missing = counter(opts.metrics, 'heph_signatures_missing_total', 'Requests for a <url>.sig that heph could not answer (expired, never fetched, or no such resource).');
  const signed = counter(opts.metrics, 'heph_scripts_signed_total', 'iPXE scripts signed as they were sent (identical scripts are signed once).');

  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode !== 200 || req.method !== 'GET') return payload;
    const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.isBuffer(payload) ? payload : undefined;
    if (!body || !body.subarray(0, IPXE_MAGIC.length).equals(IPXE_MAGIC)) return payload;
    const now = Date.now();
    if (scripts.size >= max) {
      for (const [k, v] of scripts) if (v.expires <= now || scripts.size >= max) scripts.delete(k);
    }
    const digest = createHash('sha256').update(body).digest('hex');
    let sig = byContent.get(digest);
    if (!sig) {
      sig = opts.signer.signBuffer(body);
      if (byContent.size >= 256) byContent.delete(byContent.keys().next().value!);
      byContent.set(digest, sig);
      signed.inc();
    }
    scripts.set(scriptKey(req.ip, req.url), { sig, expires: now + ttl });
    return payload;
  });

  app.addHook('onRequest', async (req, reply) => {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    if (!path.endsWith(SIG) || (req.method !== 'GET' && req.method !== 'HEAD')) return;
    const target = path.slice(0, -SIG.length) + (q < 0 ? '' : req.url.slice(q));
    const send = (sig: Buffer, kind: string): unknown => {
      served.inc({ kind });
      return reply.code(200).header('content-type', 'application/pkcs7-signature').header('cache-control', 'no-store').send(sig);
    };
    const script = scripts.get(scriptKey(req.ip, target));
    if (script && script.expires > Date.now()) return send(script.sig, 'script');
    const content = opts.resolve ? await opts.resolve(path.slice(0, -SIG.length), req) : undefined;
    if (content && 'body' in content) return send(opts.signer.signBuffer(typeof content.body === 'string' ? Buffer.from(content.body) : content.body), 'static');
    if (content) {
      try {
        return send(await fileSignature(content.file), 'file');
      } catch (err) {
        opts.log.error({ err, file: content.file }, 'cannot sign a boot artefact');
        return reply.code(503).send({ error: { code: 'signature_unavailable', message: 'the signature cannot be made right now' } });
      }
    }
    missing.inc();
    return reply.code(404).send({ error: { code: 'not_found', message: 'no signature here: fetch the resource itself first, from this address' } });
  });

  async function fileSignature(file: string): Promise<Buffer> {
    const st = await stat(file);
    const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    const hit = files.get(file);
    if (hit && hit.stamp === stamp) return hit.sig;
    // Concurrent requests for the same new asset share one hashing pass.
    const sig = opts.signer.signFile(file);
    files.set(file, { stamp, sig });
    sig.catch(() => files.delete(file));
    return sig;
  }
}

function scriptKey(ip: string, url: string): string {
  return `${ip} ${url}`;
}
