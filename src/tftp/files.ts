import { constants, realpathSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * What TFTP clients may read: an allowlist of names, each bound to bytes in memory or to a file heph resolved
 * itself. A client's name is looked up, never joined onto a directory, so `..`, absolute paths and symlinks
 * inside some root cannot reach anything that was not registered.
 */

/** A registered name: path segments of letters, digits, `.`, `_`, `-`; no empty, `.` or `..` segment. */
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;

/**
 * The spellings clients use for one name: PXE ROMs and Windows-minded firmware send `\` separators, some send a
 * leading `/`, iPXE may send a whole `tftp://host/` URL. Nothing else is rewritten: `./x`, `a/../x`, `%2e`
 * and different case stay as sent and match nothing.
 */
export function normaliseName(raw: string): string {
  let name = raw.replace(/\\/g, '/');
  const url = /^tftp:\/\/[^/]*\//i.exec(name);
  if (url) name = name.slice(url[0].length);
  return name.replace(/^\/+/, '');
}

/** Where the bytes of an open transfer come from. */
export interface Source {
  readonly size: number;
  /** Up to `length` bytes at `offset`; fewer only at the end of the file. */
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

type Entry = { kind: 'buffer'; data: Buffer } | { kind: 'file'; path: string };

export class FileTable {
  private readonly entries = new Map<string, Entry>();

  /**
   * Adds or replaces a name. A path is resolved (links followed once, here, by heph) and must be a readable
   * regular file now; it is opened without following links on each transfer.
   */
  register(name: string, source: string | Buffer): void {
    if (!NAME.test(name) || name.split('/').some((seg) => seg === '.' || seg === '..')) {
      throw new Error(`tftp: ${JSON.stringify(name)} cannot be a TFTP name (letters, digits, . _ - and / between segments)`);
    }
    if (Buffer.isBuffer(source)) {
      this.entries.set(name, { kind: 'buffer', data: source });
      return;
    }
    const path = realpathSync(source);
    if (!statSync(path).isFile()) throw new Error(`tftp: ${source} is not a regular file`);
    this.entries.set(name, { kind: 'file', path });
  }

  unregister(name: string): boolean {
    return this.entries.delete(name);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Opens a registered name; undefined when it is not in the table. Throws when a registered file went away. */
  async open(name: string): Promise<Source | undefined> {
    const e = this.entries.get(name);
    if (!e) return undefined;
    if (e.kind === 'buffer') return bufferSource(e.data);
    const fh = await open(e.path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new Error(`${e.path} is no longer a regular file`);
      return fileSource(fh, st.size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }
}

function bufferSource(data: Buffer): Source {
  return {
    size: data.length,
    read: async (offset, length) => data.subarray(offset, offset + length),
    close: async () => {},
  };
}

/** Reads ahead in chunks so that a lock-step transfer costs one disk read per chunk, not one per block. */
const CHUNK = 256 * 1024;

function fileSource(fh: FileHandle, size: number): Source {
  let chunk = Buffer.alloc(0);
  let chunkAt = 0;
  return {
    size,
    async read(offset, length) {
      if (offset < chunkAt || offset + length > chunkAt + chunk.length) {
        const want = Math.min(Math.max(CHUNK, length), size - offset);
        const buf = Buffer.allocUnsafe(Math.max(want, 0));
        const { bytesRead } = want > 0 ? await fh.read(buf, 0, want, offset) : { bytesRead: 0 };
        chunk = buf.subarray(0, bytesRead);
        chunkAt = offset;
      }
      return chunk.subarray(offset - chunkAt, offset - chunkAt + length);
    },
    close: () => fh.close(),
  };
}
