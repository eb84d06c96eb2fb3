import { statement, type DB } from '../inventory/db.ts';
import type { WriteBehind } from '../inventory/writebehind.ts';
import type { KmsgLine } from './kmsg.ts';

export interface EventRow {
  eventId: string;
  machineId: string | null;
  ip: string;
  at: number;
  type: string;
  actorId: string;
  data: Record<string, unknown>;
}

export interface KmsgRow extends KmsgLine {
  machineId: string | null;
  ip: string;
  at: number;
}

/** Who rows belong to: a machine, or (unidentified) the IP they came from. */
export type Owner = { machineId: string } | { ip: string };

// Remembered event ids cover writes still queued in WriteBehind; older ones are found in the table.
const RECENT_IDS = 20_000;

/**
 * Talos events and kernel log lines: written behind (one transaction per tick, never an fsync per event) and kept
 * bounded per owner by deleting the oldest rows every tenth of the limit.
 */
export class FeedbackStore {
  private readonly recent = new Set<string>();
  private readonly sinceTrim = new Map<string, number>();
  private readonly hasEvent;

  constructor(
    private readonly db: DB,
    private readonly writer: WriteBehind,
    private readonly keep: { events: number; kmsg: number },
  ) {
    this.hasEvent = statement<[string], { one: number }>(db, 'SELECT 1 AS one FROM talos_events WHERE event_id = ?');
  }

  /** True if this Talos event id was already received (replay after a reconnect). Empty ids are never duplicates. */
  seen(eventId: string): boolean {
    if (eventId === '') return false;
    return this.recent.has(eventId) || this.hasEvent.get(eventId) !== undefined;
  }

  addEvent(e: EventRow): void {
    if (e.eventId !== '') {
      this.recent.add(e.eventId);
      if (this.recent.size > RECENT_IDS) this.recent.delete(this.recent.values().next().value!);
    }
    this.writer.enqueue((db) =>
      statement(db, 'INSERT OR IGNORE INTO talos_events (event_id, machine_id, ip, at, type, actor_id, data) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(e.eventId === '' ? null : e.eventId, e.machineId, e.ip, e.at, e.type, e.actorId, JSON.stringify(e.data)),
    );
    this.maybeTrim('talos_events', owner(e), this.keep.events);
  }

  addKmsg(l: KmsgRow): void {
    this.writer.enqueue((db) =>
      statement(db, 'INSERT INTO kmsg (machine_id, ip, at, seq, clock, facility, priority, talos_time, service, msg) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(l.machineId, l.ip, l.at, l.seq, l.clock, l.facility, l.priority, l.talosTime, l.service, l.msg),
    );
    this.maybeTrim('kmsg', owner(l), this.keep.kmsg);
  }

  /** Newest last; `limit` newest rows. */
  events(who: Owner | undefined, limit: number): EventRow[] {
    const rows = statement<Record<string, unknown>, { event_id: string | null; machine_id: string | null; ip: string; at: number; type: string; actor_id: string; data: string }>(this.db, `SELECT * FROM (SELECT * FROM talos_events ${where(who)} ORDER BY id DESC LIMIT @limit) ORDER BY id`)
      .all({ ...params(who), limit });
    return rows.map((r) => ({ eventId: r.event_id ?? '', machineId: r.machine_id, ip: r.ip, at: r.at, type: r.type, actorId: r.actor_id, data: JSON.parse(r.data) as Record<string, unknown> }));
  }

  kmsg(who: Owner, limit: number): KmsgRow[] {
    const rows = statement<Record<string, unknown>, { machine_id: string | null; ip: string; at: number; seq: number | null; clock: number | null; facility: string | null; priority: string | null; talos_time: string | null; service: string | null; msg: string }>(this.db, `SELECT * FROM (SELECT * FROM kmsg ${where(who)} ORDER BY id DESC LIMIT @limit) ORDER BY id`)
      .all({ ...params(who), limit });
    return rows.map((r) => ({ machineId: r.machine_id, ip: r.ip, at: r.at, seq: r.seq, clock: r.clock, facility: r.facility, priority: r.priority, talosTime: r.talos_time, service: r.service, msg: r.msg }));
  }

  private maybeTrim(table: 'talos_events' | 'kmsg', who: Owner, keep: number): void {
    const key = `${table} ${'machineId' in who ? who.machineId : `ip ${who.ip}`}`;
    const n = (this.sinceTrim.get(key) ?? 0) + 1;
    if (n < Math.max(1, Math.floor(keep / 10))) {
      this.sinceTrim.set(key, n);
      return;
    }
    this.sinceTrim.delete(key);
    const w = where(who);
    // The id of the keep-th newest row; when there are fewer rows it is NULL and nothing is deleted.
    this.writer.enqueue((db) =>
      statement(db, `DELETE FROM ${table} ${w} AND id < (SELECT id FROM ${table} ${w} ORDER BY id DESC LIMIT 1 OFFSET @offset)`).run({ ...params(who), offset: keep - 1 }),
    );
  }
}

function owner(r: { machineId: string | null; ip: string }): Owner {
  return r.machineId !== null ? { machineId: r.machineId } : { ip: r.ip };
}

function where(who: Owner | undefined): string {
  if (!who) return 'WHERE 1';
  return 'machineId' in who ? 'WHERE machine_id = @machineId' : 'WHERE machine_id IS NULL AND ip = @ip';
}

function params(who: Owner | undefined): Record<string, unknown> {
  return !who ? {} : 'machineId' in who ? { machineId: who.machineId } : { ip: who.ip };
}
