import { createHash } from 'node:crypto';
import { constants, statSync, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { statement, type DB } from '../inventory/db.ts';

export type AssetKind = 'kernel' | 'initramfs' | 'other';

export interface Asset {
  /** SHA-512 hex of the content: the store is content-addressed. */
  id: string;
  name: string;
  version: string;
  arch: string;
  kind: AssetKind;
  size: number;
  /** Relative to the data directory. */
  path: string;
  importedAt: number;
}

interface Row {
  id: string;
  name: string;
  version: string;
  arch: string;
  kind: string;
  size: number;
  path: string;
  imported_at: number;
}

const toAsset = (r: Row): Asset => ({ id: r.id, name: r.name, version: r.version, arch: r.arch, kind: r.kind as AssetKind, size: r.size, path: r.path, importedAt: r.imported_at });

/** URLs carry the first 256 bits of the SHA-512 (fastify caps path parameters at 100 characters). */
export const ASSET_URL_ID = /^[0-9a-f]{64}$/;
export const urlId = (a: Asset): string => a.id.slice(0, 64);

/**
 * The identity of a file as the kernel sees it. Any write through the filesystem changes ctime (which no user call
 * can set back), a replacement by rename changes the inode, truncation changes the size: if all of these are what
 * they were when the bytes were hashed, the bytes are the ones that were hashed.
 */
function identity(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * A verified asset, opened: `fh` may be shared with other responses (read it positionally), `release` when done.
 * `head` is its first bytes (up to HEAD_BYTES), read once per descriptor: what a response sends before sendfile
 * takes over, without a read and a buffer of its own.
 */
export type Opened = { ok: true; fh: FileHandle; size: number; head: Buffer; release(): Promise<void> } | { ok: false; problem: string };

/** As much as http/sendfile.ts sends itself before sendfile takes over (its FIRST); less, and responses read their own. */
const HEAD_BYTES = 64 * 1024;

/** One open descriptor of a verified file, shared by every response while the file stays as it was hashed. */
interface Held {
  fh: FileHandle;
  identity: string;
  size: number;
  head: Buffer;
  users: number;
  /** False once a newer descriptor replaced it: closed when its last user is done. */
  current: boolean;
}

/**
 * Imported Talos assets and their verification. Every descriptor is checked when opened (fstat of the descriptor,
 * not the path) against the identity recorded when the file was last hashed; a changed identity means a full
 * SHA-512 re-hash before a single byte is served. A mismatch is reported through `onMismatch` and refused.
 *
 * A verified descriptor is kept open and shared: a storm asks for the same two files thousands of times, and an
 * open, fstat and close each (three thread-pool round trips) per request cost more main-thread time than the rest
 * of the request. Each request still stats the path: if the name now leads to another file or the file was written
 * (its identity changed), a new descriptor is opened and verified as above.
 */
export class AssetStore {
  private readonly verified = new Map<string, { identity: string; ok: boolean }>();
  private readonly hashing = new Map<string, Promise<boolean>>();
  private readonly held = new Map<string, Held>();
  /** Full SHA-512 passes so far: a request for an unchanged file must not add one. */
  hashes = 0;
  /** Descriptors opened so far (tests: an unchanged file is opened once). */
  opens = 0;

  constructor(
    private readonly db: DB,
    private readonly dataDir: string,
    private readonly onMismatch: (asset: Asset, detail: string) => void = () => {},
  ) {}

  get(id: string): Asset | undefined {
    const r = statement<[string], Row>(this.db, 'SELECT * FROM assets WHERE id = ?').get(id);
    return r && toAsset(r);
  }

  /** The asset a download URL names: its id prefix and its file name. */
  byUrl(prefix: string, name: string): Asset | undefined {
    if (!ASSET_URL_ID.test(prefix)) return undefined;
    // Every id (128 hex digits) that starts with the prefix lies between it and it followed by f's: a range of the
    // primary key, where substr(id, 1, 64) made SQLite read every asset.
    const r = statement<[string, string, string], Row>(this.db, 'SELECT * FROM assets WHERE id BETWEEN ? AND ? AND name = ?').get(prefix, prefix + 'f'.repeat(64), name);
    return r && toAsset(r);
  }

  find(version: string, arch: string, name: string): Asset | undefined {
    const r = statement<[string, string, string], Row>(this.db, 'SELECT * FROM assets WHERE version = ? AND arch = ? AND name = ?').get(version, arch, name);
    return r && toAsset(r);
  }

  list(): Asset[] {
    return statement<[], Row>(this.db, 'SELECT * FROM assets ORDER BY version, arch, name').all().map(toAsset);
  }

  /** The asset's verified bytes, for reading; the caller calls `release` (never closes `fh`). */
  async open(a: Asset): Promise<Opened> {
    const path = join(this.dataDir, a.path);
    const h = this.held.get(a.id);
    if (h) {
      const st = statSync(path, { bigint: true, throwIfNoEntry: false });
      if (st && identity(st) === h.identity) return this.use(h);
      this.retire(a.id, h);
    }
    let fh: FileHandle;
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      this.opens++;
    } catch (err) {
      const problem = `cannot open ${a.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      this.report(a, problem);
      return { ok: false, problem };
    }
    try {
      const st = await fh.stat({ bigint: true });
      const id = identity(st);
      const known = this.verified.get(a.id);
      let ok: boolean;
      if (known && known.identity === id) ok = known.ok;
      else {
        // One hash per changed file however many machines ask at once.
        const key = `${a.id}@${id}`;
        let p = this.hashing.get(key);
        if (!p) {
          this.hashes++;
          p = hashHandle(fh).then((hex) => {
            const good = hex === a.id && st.size === BigInt(a.size);
            this.verified.set(a.id, { identity: id, ok: good });
            if (!good) this.report(a, `content does not match its SHA-512 (${st.size} bytes on disk, ${a.size} imported)`);
            return good;
          });
          this.hashing.set(key, p);
          void p.finally(() => this.hashing.delete(key)).catch(() => {});
        }
        ok = await p;
      }
      if (!ok) {
        await fh.close();
        return { ok: false, problem: `${a.name} (${a.version}/${a.arch}) failed SHA-512 verification` };
      }
      const head = Buffer.allocUnsafe(Math.min(HEAD_BYTES, Number(st.size)));
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      if (bytesRead !== head.length) {
        await fh.close();
        return { ok: false, problem: `${a.name} (${a.version}/${a.arch}) is shorter than when it was hashed` };
      }
      const fresh: Held = { fh, identity: id, size: Number(st.size), head, users: 0, current: true };
      // Requests that raced here each opened a descriptor: the last one is kept, the others retire when done.
      const previous = this.held.get(a.id);
      if (previous) this.retire(a.id, previous);
      this.held.set(a.id, fresh);
      return this.use(fresh);
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  /** Verifies without keeping the file open (startup, the boot decision). Undefined when the asset is good. */
  async problem(a: Asset): Promise<string | undefined> {
    const r = await this.open(a);
    if (!r.ok) return r.problem;
    await r.release();
    return undefined;
  }

  /** Closes every kept descriptor (the daemon, when it stops); later opens start over. */
  async close(): Promise<void> {
    for (const [id, h] of [...this.held]) this.retire(id, h);
    await Promise.all([...this.closing]);
  }

  private readonly closing = new Set<Promise<void>>();

  private use(h: Held): Opened {
    h.users++;
    let released = false;
    return {
      ok: true,
      fh: h.fh,
      size: h.size,
      head: h.head,
      release: async () => {
        if (released) return;
        released = true;
        h.users--;
        if (!h.current && h.users === 0) await this.closeHeld(h);
      },
    };
  }

  private retire(id: string, h: Held): void {
    if (this.held.get(id) === h) this.held.delete(id);
    h.current = false;
    if (h.users === 0) void this.closeHeld(h);
  }

  private closeHeld(h: Held): Promise<void> {
    const p = h.fh.close().catch(() => {});
    this.closing.add(p);
    void p.finally(() => this.closing.delete(p));
    return p;
  }

  private report(a: Asset, detail: string): void {
    this.onMismatch(a, detail);
  }
}

async function hashHandle(fh: FileHandle): Promise<string> {
  const h = createHash('sha512');
  for await (const chunk of fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}
