import { randomBytes } from 'node:crypto';
import { statement, type DB } from './db.ts';

/** Lifecycle states; the transitions between them are decided in src/boot (pure), stored here. */
export const MACHINE_STATES = ['discovered', 'booting', 'config-served', 'installing', 'installed', 'running', 'ready', 'failed'] as const;
export type MachineState = (typeof MACHINE_STATES)[number];
export type Acceptance = 'pending' | 'accepted' | 'rejected';

export interface Machine {
  id: string;
  uuid: string | null;
  serial: string | null;
  hostname: string | null;
  arch: string | null;
  platform: string | null;
  manufacturer: string | null;
  product: string | null;
  vendorClass: string | null;
  state: MachineState;
  stateReason: string | null;
  acceptance: Acceptance;
  profile: string | null;
  labels: Record<string, string>;
  reprovision: boolean;
  lastIp: string | null;
  firstSeen: number;
  lastSeen: number;
  updatedAt: number;
  macs: string[];
}

/** What one DHCP packet, TFTP request, HTTP request or Talos event tells us about a machine. All fields are claims. */
export interface Sighting {
  mac?: string | undefined;
  uuid?: string | undefined;
  serial?: string | undefined;
  hostname?: string | undefined;
  arch?: string | undefined;
  platform?: string | undefined;
  manufacturer?: string | undefined;
  product?: string | undefined;
  vendorClass?: string | undefined;
  ip?: string | undefined;
  at?: number | undefined;
}

interface Row {
  id: string;
  uuid: string | null;
  serial: string | null;
  hostname: string | null;
  arch: string | null;
  platform: string | null;
  manufacturer: string | null;
  product: string | null;
  vendor_class: string | null;
  state: string;
  state_reason: string | null;
  acceptance: string;
  profile: string | null;
  labels: string;
  reprovision: number;
  last_ip: string | null;
  first_seen: number;
  last_seen: number;
  updated_at: number;
  macs: string | null;
}

/** What proxy-DHCP must stay silent to: the identities of the machines an operator rejected. */
export interface RejectedIdentities {
  uuids: string[];
  /** Every NIC of a rejected machine, with that machine's UUID (null when it has none). */
  nics: [mac: string, uuid: string | null][];
}

const SELECT = `SELECT m.*, (SELECT group_concat(mac, ',') FROM (SELECT mac FROM nics WHERE machine_id = m.id ORDER BY first_seen, mac)) AS macs FROM machines m`;

function toMachine(r: Row): Machine {
  return {
    id: r.id,
    uuid: r.uuid,
    serial: r.serial,
    hostname: r.hostname,
    arch: r.arch,
    platform: r.platform,
    manufacturer: r.manufacturer,
    product: r.product,
    vendorClass: r.vendor_class,
    state: r.state as MachineState,
    stateReason: r.state_reason,
    acceptance: r.acceptance as Acceptance,
    profile: r.profile,
    labels: JSON.parse(r.labels) as Record<string, string>,
    reprovision: r.reprovision !== 0,
    lastIp: r.last_ip,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    updatedAt: r.updated_at,
    macs: r.macs ? r.macs.split(',') : [],
  };
}

export function newMachineId(): string {
  // 60 random bits in a lowercase base-32 alphabet without look-alikes: short enough to read out loud.
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(12);
  let id = 'm-';
  for (const b of bytes) id += alphabet[b % alphabet.length];
  return id;
}

const FILLABLE = ['serial', 'hostname', 'arch', 'platform', 'manufacturer', 'product', 'vendorClass'] as const;
const COLUMN: Record<(typeof FILLABLE)[number], string> = {
  serial: 'serial',
  hostname: 'hostname',
  arch: 'arch',
  platform: 'platform',
  manufacturer: 'manufacturer',
  product: 'product',
  vendorClass: 'vendor_class',
};

export class Machines {
  private readonly byId;
  private readonly byMac;
  private readonly byUuid;
  private readonly byIp;

  private readonly rejectionListeners = new Set<() => void>();

  constructor(private readonly db: DB) {
    this.byId = db.prepare<[string], Row>(`${SELECT} WHERE m.id = ?`);
    this.byMac = db.prepare<[string], Row>(`${SELECT} WHERE m.id = (SELECT machine_id FROM nics WHERE mac = ?)`);
    this.byUuid = db.prepare<[string], Row>(`${SELECT} WHERE m.uuid = ?`);
    this.byIp = db.prepare<[string], Row>(`${SELECT} WHERE m.last_ip = ? ORDER BY m.last_seen DESC LIMIT 1`);
  }

  get(id: string): Machine | undefined {
    const r = this.byId.get(id);
    return r && toMachine(r);
  }

  findByMac(mac: string): Machine | undefined {
    const r = this.byMac.get(mac);
    return r && toMachine(r);
  }

  findByUuid(uuid: string): Machine | undefined {
    const r = this.byUuid.get(uuid);
    return r && toMachine(r);
  }

  /** Read it when onRejectionsChange says it may have changed, not per packet. */
  rejectedIdentities(): RejectedIdentities {
    return {
      uuids: statement(this.db, `SELECT uuid FROM machines WHERE acceptance = 'rejected' AND uuid IS NOT NULL`).pluck().all() as string[],
      nics: statement(this.db, `SELECT n.mac, m.uuid FROM nics n JOIN machines m ON m.id = n.machine_id WHERE m.acceptance = 'rejected'`).raw().all() as [string, string | null][],
    };
  }

  /**
   * Calls `listener` after every write that may change rejectedIdentities(): an acceptance change, a delete, a
   * sighting that adds a NIC or UUID to a rejected machine or moves a NIC away from one. Other processes (the
   * CLI) write too: watch dataVersion() for those. The listener may run inside the writer's transaction, so it
   * must read later (next tick), never at once. Returns the unsubscribe function.
   */
  onRejectionsChange(listener: () => void): () => void {
    this.rejectionListeners.add(listener);
    return () => this.rejectionListeners.delete(listener);
  }

  /** Changes whenever ANOTHER connection (a CLI command) committed to the database; this one's own writes do not count. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  private rejectionsChanged(): void {
    for (const l of this.rejectionListeners) l();
  }

  /** The machine most recently seen at this IP (script and config fetches, DHCP, AddressEvent). */
  findByIp(ip: string): Machine | undefined {
    const r = this.byIp.get(ip);
    return r && toMachine(r);
  }

  /** The id of the machine last seen at `ip`: what a timeline entry needs, without reading the machine. */
  idByIp(ip: string): string | undefined {
    return statement<[string], { id: string }>(this.db, 'SELECT id FROM machines WHERE last_ip = ? ORDER BY last_seen DESC LIMIT 1').get(ip)?.id;
  }

  /**
   * Finds the machine a sighting belongs to (UUID first, then MAC), creating it on first sight, and merges what
   * the sighting adds. A NIC seen with another machine's UUID moves to that machine: NICs move between boxes,
   * SMBIOS UUIDs do not. Runs in one transaction; callers on hot paths batch it through WriteBehind.
   */
  resolve(s: Sighting): { machine: Machine; created: boolean } {
    const at = s.at ?? Date.now();
    let touchesRejected = false;
    const result = this.db.transaction(() => {
      let row = s.uuid ? this.byUuid.get(s.uuid) : undefined;
      if (!row && s.mac) {
        const byMac = this.byMac.get(s.mac);
        // A NIC that shows up with a UUID other than its machine's has moved to another box.
        if (byMac && !(s.uuid && byMac.uuid && byMac.uuid !== s.uuid)) row = byMac;
      }
      let created = false;
      if (!row) {
        const id = newMachineId();
        statement(this.db, 'INSERT INTO machines (id, uuid, first_seen, last_seen, updated_at) VALUES (?, ?, ?, ?, ?)')
          .run(id, s.uuid ?? null, at, at, at);
        row = this.byId.get(id)!;
        created = true;
      }
      const sets: string[] = ['last_seen = max(last_seen, @at)', 'updated_at = @at'];
      const params: Record<string, unknown> = { id: row.id, at };
      if (s.uuid && !row.uuid) {
        sets.push('uuid = @uuid');
        params.uuid = s.uuid;
      }
      for (const k of FILLABLE) {
        const v = s[k];
        if (v !== undefined && v !== '') {
          sets.push(`${COLUMN[k]} = @${k}`);
          params[k] = v;
        }
      }
      if (s.ip) {
        sets.push('last_ip = @ip');
        params.ip = s.ip;
      }
      statement(this.db, `UPDATE machines SET ${sets.join(', ')} WHERE id = @id`).run(params);
      // Only when someone keeps a rejection set: one indexed lookup, against the ~0.1 ms resolve() costs anyway.
      if (row.acceptance === 'rejected') touchesRejected = true;
      else if (s.mac && this.rejectionListeners.size > 0) {
        touchesRejected = statement(this.db, `SELECT 1 FROM nics n JOIN machines m ON m.id = n.machine_id WHERE n.mac = ? AND m.id != ? AND m.acceptance = 'rejected'`).get(s.mac, row.id) !== undefined;
      }
      if (s.mac) {
        statement(this.db, 
            `INSERT INTO nics (mac, machine_id, last_ip, first_seen, last_seen) VALUES (@mac, @id, @ip, @at, @at)
             ON CONFLICT (mac) DO UPDATE SET machine_id = @id, last_ip = coalesce(@ip, last_ip), last_seen = max(last_seen, @at)`,
          )
          .run({ mac: s.mac, id: row.id, ip: s.ip ?? null, at });
      }
      return { machine: toMachine(this.byId.get(row.id)!), created };
    }).immediate();
    if (touchesRejected) this.rejectionsChanged();
    return result;
  }

  setState(id: string, state: MachineState, reason: string | null, at = Date.now()): void {
    statement(this.db, 'UPDATE machines SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?').run(state, reason, at, id);
  }

  update(
    id: string,
    patch: Partial<Pick<Machine, 'hostname' | 'profile' | 'acceptance' | 'reprovision' | 'labels' | 'lastIp'>>,
    at = Date.now(),
  ): Machine | undefined {
    const sets: string[] = ['updated_at = @at'];
    const params: Record<string, unknown> = { id, at };
    if (patch.hostname !== undefined) (sets.push('hostname = @hostname'), (params.hostname = patch.hostname));
    if (patch.profile !== undefined) (sets.push('profile = @profile'), (params.profile = patch.profile));
    if (patch.acceptance !== undefined) (sets.push('acceptance = @acceptance'), (params.acceptance = patch.acceptance));
    if (patch.reprovision !== undefined) (sets.push('reprovision = @reprovision'), (params.reprovision = patch.reprovision ? 1 : 0));
    if (patch.labels !== undefined) (sets.push('labels = @labels'), (params.labels = JSON.stringify(patch.labels)));
    if (patch.lastIp !== undefined) (sets.push('last_ip = @lastIp'), (params.lastIp = patch.lastIp));
    // Only a move into or out of 'rejected' changes the set (a storm auto-accepts every machine: each reload of
    // the set reads every rejected machine and reaches the DHCP worker).
    const wasRejected = patch.acceptance !== undefined && this.isRejected(id);
    statement(this.db, `UPDATE machines SET ${sets.join(', ')} WHERE id = @id`).run(params);
    if (patch.acceptance !== undefined && wasRejected !== (patch.acceptance === 'rejected')) this.rejectionsChanged();
    return this.get(id);
  }

  delete(id: string): boolean {
    const wasRejected = this.isRejected(id);
    const deleted = this.db.prepare('DELETE FROM machines WHERE id = ?').run(id).changes > 0;
    if (deleted && wasRejected) this.rejectionsChanged();
    return deleted;
  }

  private isRejected(id: string): boolean {
    return statement(this.db, `SELECT 1 FROM machines WHERE id = ? AND acceptance = 'rejected'`).get(id) !== undefined;
  }

  list(opts: { state?: MachineState; limit?: number; offset?: number } = {}): Machine[] {
    const where = opts.state ? 'WHERE m.state = @state' : '';
    return this.db
      .prepare<Record<string, unknown>, Row>(`${SELECT} ${where} ORDER BY m.first_seen, m.id LIMIT @limit OFFSET @offset`)
      .all({ state: opts.state, limit: opts.limit ?? 100, offset: opts.offset ?? 0 })
      .map(toMachine);
  }
}
