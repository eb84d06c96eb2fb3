import { closeSync, constants, fstatSync, openSync, readFileSync, realpathSync } from 'node:fs';

/**
 * What TFTP clients may read: an allowlist of names, each bound to bytes in memory (given, or read once from a
 * file heph resolved itself). A client's name is looked up, never joined onto a directory, so `..`, absolute
 * paths and symlinks inside some root cannot reach anything that was not registered.
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

/** Larger files belong on HTTP: TFTP moves one block per round trip, and every registered file is held in memory. */
export const MAX_FILE = 128 * 1024 * 1024;

export class FileTable {
  private readonly entries = new Map<string, Buffer>();
  private readonly watchers: ((name: string, data: Buffer | undefined) => void)[] = [];

  /** Calls `fn` on every later change: the bytes of an added or replaced name, undefined for a removed one. */
  watch(fn: (name: string, data: Buffer | undefined) => void): void {
    this.watchers.push(fn);
  }

  /**
   * Adds or replaces a name. A path is resolved (links followed once, here, by heph), opened without following
   * links, and read into memory now: transfers then never touch the disk, a file replaced on disk later cannot
   * change what is served mid-transfer, and nothing a client sends can reach the filesystem. Given bytes are
   * copied, so a caller changing its buffer later cannot change what is served either.
   */
  register(name: string, source: string | Buffer): void {
    if (!NAME.test(name) || name.split('/').some((seg) => seg === '.' || seg === '..')) {
      throw new Error(`tftp: ${JSON.stringify(name)} cannot be a TFTP name (letters, digits, . _ - and / between segments)`);
    }
    const bytes = shared(Buffer.isBuffer(source) ? source : readRegular(source));
    this.entries.set(name, bytes);
    for (const w of this.watchers) w(name, bytes);
  }

  unregister(name: string): boolean {
    const had = this.entries.delete(name);
    if (had) for (const w of this.watchers) w(name, undefined);
    return had;
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** The bytes of a registered name; undefined for anything else. */
  get(name: string): Buffer | undefined {
    return this.entries.get(name);
  }
}

/** A copy in shared memory: the data plane worker then gets the bytes of each transfer without a copy. */
function shared(bytes: Buffer): Buffer {
  const out = Buffer.from(new SharedArrayBuffer(bytes.length));
  bytes.copy(out);
  return out;
}

function readRegular(file: string): Buffer {
  const fd = openSync(realpathSync(file), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`tftp: ${file} is not a regular file`);
    if (st.size > MAX_FILE) throw new Error(`tftp: ${file} is ${st.size} bytes; files over ${MAX_FILE} bytes should be served over HTTP`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
