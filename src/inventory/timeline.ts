import { statement, type DB } from './db.ts';
import type { WriteBehind } from './writebehind.ts';

export interface TimelineEvent {
  machineId: string | null;
  kind: string;
  source: 'dhcp' | 'tftp' | 'http' | 'events' | 'api' | 'cli' | 'system';
  message: string;
  ip?: string | undefined;
  data?: Record<string, unknown>;
  at?: number;
}

export interface StoredTimelineEvent extends Required<Omit<TimelineEvent, 'ip'>> {
  id: number;
  ip: string | null;
}

type Listener = (e: TimelineEvent & { at: number }) => void;

export class Timeline {
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly db: DB,
    private readonly writer: WriteBehind,
  ) {}

  /** Buffered: visible to list() after the next write-behind tick (or flush()). Listeners hear it at once. */
  append(e: TimelineEvent): void {
    const at = e.at ?? Date.now();
    const ev = { ...e, at };
    this.writer.enqueue((db) => insert(db, ev));
    for (const l of this.listeners) l(ev);
  }

  /** Written before returning, for events that must survive a crash right after (config served, audit-like). */
  appendNow(e: TimelineEvent): void {
    const at = e.at ?? Date.now();
    const ev = { ...e, at };
    insert(this.db, ev);
    for (const l of this.listeners) l(ev);
  }

  /** Live feed (web page, SSE). Returns an unsubscribe function. */
  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  list(machineId: string, opts: { limit?: number; afterId?: number } = {}): StoredTimelineEvent[] {
    return statement<[string, number, number], { id: number; machine_id: string | null; at: number; kind: string; source: string; ip: string | null; message: string; data: string }>(this.db, 'SELECT * FROM timeline WHERE machine_id = ? AND id > ? ORDER BY at, id LIMIT ?')
      .all(machineId, opts.afterId ?? 0, opts.limit ?? 1000)
      .map((r) => ({
        id: r.id,
        machineId: r.machine_id,
        at: r.at,
        kind: r.kind,
        source: r.source as TimelineEvent['source'],
        ip: r.ip,
        message: r.message,
        data: JSON.parse(r.data) as Record<string, unknown>,
      }));
  }
}

function insert(db: DB, e: TimelineEvent & { at: number }): void {
  statement(db, 'INSERT INTO timeline (machine_id, at, kind, source, ip, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
    e.machineId,
    e.at,
    e.kind,
    e.source,
    e.ip ?? null,
    e.message,
    JSON.stringify(e.data ?? {}),
  );
}
