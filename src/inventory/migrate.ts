import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { StartupError } from '../errors.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export function readMigrations(dir: string): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue;
    const m = FILE.exec(file);
    if (!m) throw new StartupError(`migration ${join(dir, file)}: the name must look like 0001_what_it_does.sql`);
    const sql = readFileSync(join(dir, file), 'utf8');
    const version = Number(m[1]);
    if (out.some((x) => x.version === version)) throw new StartupError(`migrations ${dir}: two files are numbered ${m[1]}`);
    out.push({ version, name: file, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return out;
}

/**
 * Applies every migration not yet recorded, in order, each in its own transaction, so a failure leaves the
 * database exactly as the previous migration left it. A landed migration that was edited afterwards stops
 * startup: its new text would never run on databases that already applied the old one.
 */
export function migrate(db: Database, migrations: Migration[]): Migration[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const applied = new Map(
    (db.prepare('SELECT version, name, checksum FROM schema_migrations').all() as { version: number; name: string; checksum: string }[]).map((r) => [r.version, r]),
  );
  const record = db.prepare('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)');
  const done: Migration[] = [];
  for (const m of migrations) {
    const prior = applied.get(m.version);
    if (prior) {
      if (prior.checksum !== m.checksum) {
        throw new StartupError(
          `migration ${m.name} was changed after it was applied to this database (as ${prior.name}).`,
          'Landed migrations are never edited: restore the original file and put the change in a new, higher-numbered migration.',
        );
      }
      continue;
    }
    try {
      db.transaction(() => {
        db.exec(m.sql);
        record.run(m.version, m.name, m.checksum, Date.now());
      }).immediate();
    } catch (err) {
      throw new StartupError(`migration ${m.name} failed and was rolled back: ${(err as Error).message}`, 'The database is as it was before this migration. Fix the migration file, then start again.', { cause: err });
    }
    done.push(m);
  }
  return done;
}
