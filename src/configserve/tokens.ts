import { createHash, randomBytes } from 'node:crypto';
import { statement, type DB } from '../inventory/db.ts';

/** 256 random bits, base64url: the only secret in a talos.config URL. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** How long every minted token is, so a HEAD answer can be exactly as long as the GET it stands for. */
export const TOKEN_LENGTH = Buffer.alloc(32).toString('base64url').length;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** What the audit log and the logs may show of a token: a prefix of its hash, never the token. */
export function tokenRef(hash: string): string {
  return hash.slice(0, 12);
}

export interface BootToken {
  hash: string;
  machineId: string;
  ip: string;
  profile: string;
  wipe: boolean;
  createdAt: number;
  expiresAt: number;
  uses: number;
}

export type TokenCheck =
  | { ok: true; token: BootToken }
  | { ok: false; why: 'malformed' | 'unknown' | 'expired' | 'wrong-ip'; token?: BootToken };

/**
 * Per-boot config tokens. Stored as SHA-256 only; minting a new one for a machine revokes the older ones, so only
 * the script served last can fetch a config. Both writes commit inline: a token must exist before the script
 * carrying it is sent.
 */
export class BootTokens {
  constructor(private readonly db: DB) {}

  mint(opts: { machineId: string; ip: string; profile: string; wipe: boolean; ttlMs: number; now?: number }): { token: string; hash: string; expiresAt: number } {
    const now = opts.now ?? Date.now();
    const token = randomBytes(32).toString('base64url');
    const hash = hashToken(token);
    const expiresAt = now + opts.ttlMs;
    this.db.transaction(() => {
      statement(this.db, 'DELETE FROM boot_tokens WHERE machine_id = ? OR expires_at < ?').run(opts.machineId, now);
      statement(this.db, 'INSERT INTO boot_tokens (hash, machine_id, ip, created_at, expires_at, profile, wipe) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(hash, opts.machineId, opts.ip, now, expiresAt, opts.profile, opts.wipe ? 1 : 0);
    }).immediate();
    return { token, hash, expiresAt };
  }

  /** Checks a presented token against the requesting IP. The hash is looked up, so timing says nothing of the token. */
  check(token: string, ip: string, now = Date.now()): TokenCheck {
    if (!TOKEN.test(token)) return { ok: false, why: 'malformed' };
    const r = statement<[string], { hash: string; machine_id: string; ip: string; profile: string; wipe: number; created_at: number; expires_at: number; uses: number }>(this.db, 'SELECT hash, machine_id, ip, profile, wipe, created_at, expires_at, uses FROM boot_tokens WHERE hash = ?')
      .get(hashToken(token));
    if (!r) return { ok: false, why: 'unknown' };
    const t: BootToken = { hash: r.hash, machineId: r.machine_id, ip: r.ip, profile: r.profile, wipe: r.wipe !== 0, createdAt: r.created_at, expiresAt: r.expires_at, uses: r.uses };
    if (now >= t.expiresAt) return { ok: false, why: 'expired', token: t };
    if (ip !== t.ip) return { ok: false, why: 'wrong-ip', token: t };
    return { ok: true, token: t };
  }

  recordUse(hash: string, now = Date.now()): void {
    statement(this.db, 'UPDATE boot_tokens SET uses = uses + 1, first_used_at = coalesce(first_used_at, ?) WHERE hash = ?').run(now, hash);
  }

  revokeMachine(machineId: string): number {
    return statement(this.db, 'DELETE FROM boot_tokens WHERE machine_id = ?').run(machineId).changes;
  }
}
