import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { chmod, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { DB } from '../inventory/db.ts';
import type { AssetKind } from './store.ts';

/** `<sha512 hex>  <name>` lines (GNU sha512sum; a `*` marks binary mode). */
export function parseSha512Sums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]{128}) [ *]([^/\\\s][^/\\]*)$/.exec(line.trimEnd());
    if (m) out.set(m[2]!, m[1]!.toLowerCase());
  }
  return out;
}

/** The Talos release version named in a directory path or URL, e.g. …/download/v1.13.9/. */
export function versionFrom(source: string): string | undefined {
  const all = [...source.matchAll(/(?:^|\/)(v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)(?=\/|$)/g)];
  return all.at(-1)?.[1];
}

const RELEASE_FILE = /^(vmlinuz|initramfs)-(amd64|arm64)(\.xz)?$/;

export interface ImportOptions {
  db: DB;
  dataDir: string;
  source: string;
  version?: string | undefined;
  /** Talos arches to import; empty: every arch the checksum file lists. */
  arches?: string[];
  progress?: (name: string, done: number, total: number | undefined) => void;
}

export interface Imported {
  id: string;
  name: string;
  arch: string;
  kind: AssetKind;
  size: number;
}

export class ImportError extends Error {}

const isUrl = (s: string): boolean => /^https?:\/\//.test(s);

async function openSource(source: string, name: string): Promise<{ body: Readable; size: number | undefined }> {
  if (isUrl(source)) {
    const url = `${source.replace(/\/+$/, '')}/${name}`;
    const res = await fetch(url, { redirect: 'follow' });
    if (!res.ok || !res.body) throw new ImportError(`${url}: HTTP ${res.status}`);
    const len = Number(res.headers.get('content-length'));
    return { body: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), size: Number.isFinite(len) && len > 0 ? len : undefined };
  }
  const file = join(source, name);
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new ImportError(`${file}: ${err.code ?? err.message}`);
  });
  return { body: createReadStream(file, { highWaterMark: 1 << 20 }), size: st.size };
}

async function readText(source: string, name: string): Promise<string> {
  const { body } = await openSource(source, name);
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Imports a Talos release's kernels and initramfs images: each file is streamed into the data directory while
 * hashed, checked against the release's sha512sum.txt, fsynced, made read-only and renamed to its hash, then
 * recorded. A file that does not match is deleted and the import fails; nothing half-written is ever recorded.
 */
export async function importRelease(o: ImportOptions): Promise<Imported[]> {
  const version = o.version ?? versionFrom(o.source);
  if (!version) throw new ImportError(`cannot tell the Talos version from ${o.source}; pass --version v1.x.y`);
  if (!/^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?$/.test(version)) throw new ImportError(`version ${version}: expected something like v1.13.9`);
  const sums = parseSha512Sums(await readText(o.source, 'sha512sum.txt'));
  const wanted = [...sums.keys()].filter((n) => {
    const m = RELEASE_FILE.exec(n);
    return m && (m[1] === 'vmlinuz') === (m[3] === undefined) && (!o.arches?.length || o.arches.includes(m[2]!));
  });
  if (wanted.length === 0) throw new ImportError(`sha512sum.txt lists no vmlinuz-<arch> or initramfs-<arch>.xz${o.arches?.length ? ` for ${o.arches.join(', ')}` : ''}`);
  const dir = join(o.dataDir, 'assets');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const out: Imported[] = [];
  for (const name of wanted.sort()) {
    const expected = sums.get(name)!;
    const [, what, arch] = RELEASE_FILE.exec(name)!;
    const kind: AssetKind = what === 'vmlinuz' ? 'kernel' : 'initramfs';
    const { body, size: total } = await openSource(o.source, name);
    const tmp = join(dir, `.import-${randomBytes(6).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o600);
    const h = createHash('sha512');
    let done = 0;
    try {
      for await (const chunk of body) {
        const b = chunk as Buffer;
        h.update(b);
        await fh.write(b);
        done += b.length;
        o.progress?.(name, done, total);
      }
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    const got = h.digest('hex');
    if (got !== expected) {
      await rm(tmp, { force: true });
      throw new ImportError(`${name}: SHA-512 mismatch (sha512sum.txt says ${expected.slice(0, 16)}…, the file is ${got.slice(0, 16)}…); nothing was imported for it`);
    }
    await chmod(tmp, 0o400);
    await rename(tmp, join(dir, got));
    const dirHandle = await open(dir, 'r');
    await dirHandle.sync().finally(() => dirHandle.close());
    o.db
      .prepare('INSERT OR REPLACE INTO assets (id, name, version, arch, kind, size, path, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(got, name, version, arch, kind, done, `assets/${got}`, Date.now());
    out.push({ id: got, name, arch: arch!, kind, size: done });
  }
  return out;
}
