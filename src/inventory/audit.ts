import { statement, type DB } from './db.ts';

export interface AuditEntry {
  actor: string;
  action: string;
  machineId?: string | null;
  ip?: string | null;
  detail?: Record<string, unknown>;
  at?: number;
}

/** Audit rows are written inline (never batched): the row must be on disk before the act it records. */
export function audit(db: DB, e: AuditEntry): number {
  const r = statement(db, 'INSERT INTO audit (at, actor, action, machine_id, ip, detail) VALUES (?, ?, ?, ?, ?, ?)')
    .run(e.at ?? Date.now(), e.actor, e.action, e.machineId ?? null, e.ip ?? null, JSON.stringify(e.detail ?? {}));
  return Number(r.lastInsertRowid);
}
