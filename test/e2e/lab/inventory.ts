import Database from 'better-sqlite3';
import { join } from 'node:path';
import { DB_FILE } from '../../../src/inventory/db.ts';
import { Machines, type Machine } from '../../../src/inventory/machines.ts';

export interface TimelineRow {
  id: number;
  at: number;
  kind: string;
  source: string;
  ip: string | null;
  message: string;
  data: Record<string, unknown>;
}

/**
 * A read-only view of a running heph's inventory, for assertions: the machine rows and their timelines. Opened
 * per read, so it always sees what heph has committed (WAL) and never holds the database open.
 */
export function readInventory(dataDir: string): { machine(mac: string): Machine | undefined; timeline(machineId: string): TimelineRow[] } {
  const file = join(dataDir, DB_FILE);
  const withDb = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    machine: (mac) => withDb((db) => new Machines(db).findByMac(mac)),
    timeline: (machineId) =>
      withDb((db) =>
        db
          .prepare<[string], Omit<TimelineRow, 'data'> & { data: string }>('SELECT id, at, kind, source, ip, message, data FROM timeline WHERE machine_id = ? ORDER BY at, id')
          .all(machineId)
          .map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> })),
      ),
  };
}
