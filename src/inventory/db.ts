import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { StartupError } from '../errors.ts';
import { migrate, readMigrations, type Migration } from './migrate.ts';

export type DB = Database.Database;

const statements = new WeakMap<DB, Map<string, Database.Statement>>();

/**
 * db.prepare() with a cache per database: the hot paths (every boot request, every sighting, every timeline entry)
 * run the same few statements, and compiling SQL cost more than running it (measured in resolve()).
 */
export function statement<P extends unknown[] | {} = unknown[], R = unknown>(db: DB, sql: string): Database.Statement<P, R> {
  let cache = statements.get(db);
  if (!cache) statements.set(db, (cache = new Map()));
  let st = cache.get(sql);
  if (!st) cache.set(sql, (st = db.prepare(sql)));
  return st as unknown as Database.Statement<P, R>;
}

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
export const DB_FILE = 'heph.db';

/** Creates the data directory 0700 (or tightens it), because it will hold keys and secrets. */
export function ensureDataDir(dir: string): string {
  const abs = resolve(dir);
  try {
    mkdirSync(abs, { recursive: true, mode: 0o700 });
    if ((statSync(abs).mode & 0o077) !== 0) chmodSync(abs, 0o700);
  } catch (err) {
    throw new StartupError(`data directory ${abs}: ${(err as Error).message}`, 'Set dataDir to a directory heph may create and write.', { cause: err });
  }
  return abs;
}

export interface OpenResult {
  db: DB;
  file: string;
  applied: Migration[];
}

/**
 * The main connection's page cache, in KiB: SQLite's own default. better-sqlite3 builds SQLite with 16 MB, which heph
 * filled: heaptrack put SQLite's share of heph's C heap at 17.5 MiB at its peak, nearly all of it cached pages. What
 * a boot touches is a few hot pages (the machine, its token, the timeline's last page), and a page the cache dropped
 * is one pread from the kernel's page cache. Boot storms with a warm-up of 10,000, alternated: peak RSS 291.2 and
 * 297.3 MiB at 2 MB against 300.6 and 314.7 MiB at 16 MB, heph's CPU and p99 the same.
 */
export const PAGE_CACHE_KIB = 2000;

/**
 * Opens (or creates) the inventory with the pragmas the design relies on, checks it and migrates it.
 * Every failure names the file and says what to do.
 */
export function openInventory(dataDir: string, migrationsDir = MIGRATIONS_DIR): OpenResult {
  const dir = ensureDataDir(dataDir);
  const file = join(dir, DB_FILE);
  const fresh = !existsSync(file);
  let db: DB;
  try {
    db = new Database(file);
  } catch (err) {
    throw new StartupError(`database ${file} cannot be opened: ${(err as Error).message}`, undefined, { cause: err });
  }
  try {
    db.pragma('busy_timeout = 5000');
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, not wal (is the data directory on a network filesystem?)`);
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`quick_check reports: ${String(check)}`);
    const applied = migrate(db, readMigrations(migrationsDir));
    for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    return { db, file, applied };
  } catch (err) {
    db.close();
    if (err instanceof StartupError) throw new StartupError(`database ${file}: ${err.message}`, err.hint, { cause: err });
    const e = err as Error & { code?: string };
    const hint =
      e.code === 'SQLITE_BUSY'
        ? 'Another process holds the database locked: is another heph running with the same dataDir?'
        : e.code === 'SQLITE_NOTADB' || e.code === 'SQLITE_CORRUPT' || /quick_check/.test(e.message)
          ? `The file is damaged. Restore it from a backup${fresh ? '' : ` (or move it aside to start with an empty inventory)`}.`
          : undefined;
    throw new StartupError(`database ${file}: ${e.message}`, hint, { cause: err });
  }
}
