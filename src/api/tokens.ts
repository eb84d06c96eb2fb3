import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { DB } from '../inventory/db.ts';

export const SCOPES = ['read', 'operator', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Admin gRPC client certificates carry their scope in subject O, the way Talos carries roles (`os:admin`). */
export const SCOPE_PREFIX = 'heph:';

/** Each scope includes the ones before it: operator can read, admin can operate. */
export function scopeAllows(held: Scope, needed: Scope): boolean {
  return SCOPES.indexOf(held) >= SCOPES.indexOf(needed);
}

export interface ApiToken {
  id: string;
  name: string;
  scope: Scope;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

// `heph_<id>_<secret>`: the id finds the row, the secret is compared in constant time against the stored hash.
const TOKEN = /^heph_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

export function parseToken(raw: string): { id: string } | undefined {
  const m = TOKEN.exec(raw);
  return m ? { id: m[1]! } : undefined;
}

export function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

interface Row {
  id: string;
  name: string;
  hash: string;
  scope: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

const toToken = (r: Row): ApiToken => ({
  id: r.id,
  name: r.name,
  scope: r.scope as Scope,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

// A hash of a random string every verify() compares against when the id is unknown, so "no such id" and
// "wrong secret" take the same path.
const DECOY = sha256(randomBytes(32).toString('hex'));

/** API tokens: stored as SHA-256 hashes (they are 256-bit random, so no slow hash is needed), shown once. */
export class Tokens {
  constructor(private readonly db: DB) {}

  create(name: string, scope: Scope, at = Date.now()): { token: string; record: ApiToken } {
    const id = randomBytes(6).toString('hex');
    const token = `heph_${id}_${randomBytes(32).toString('base64url')}`;
    this.db
      .prepare('INSERT INTO api_tokens (id, name, hash, scope, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, name, sha256(token).toString('hex'), scope, at);
    return { token, record: this.get(id)! };
  }

  get(id: string): ApiToken | undefined {
    const r = this.db.prepare<[string], Row>('SELECT * FROM api_tokens WHERE id = ?').get(id);
    return r && toToken(r);
  }

  list(): ApiToken[] {
    return this.db.prepare<[], Row>('SELECT * FROM api_tokens ORDER BY created_at, id').all().map(toToken);
  }

  /** Whether any token was ever made (revoked ones count: an operator who revoked them all meant it). */
  any(): boolean {
    return this.db.prepare('SELECT 1 FROM api_tokens LIMIT 1').get() !== undefined;
  }

  revoke(id: string, at = Date.now()): boolean {
    return this.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id).changes > 0;
  }

  /** The live token this string is, or undefined; never says which part was wrong. */
  verify(raw: string, at = Date.now()): ApiToken | undefined {
    const parsed = parseToken(raw);
    const row = parsed && this.db.prepare<[string], Row>('SELECT * FROM api_tokens WHERE id = ?').get(parsed.id);
    const expected = row ? Buffer.from(row.hash, 'hex') : DECOY;
    const same = timingSafeEqual(sha256(raw), expected);
    if (!row || !same || row.revoked_at !== null) return undefined;
    // Coarse last-used stamp (once a minute) so a busy script does not turn every GET into a disk write.
    if (row.last_used_at === null || at - row.last_used_at > 60_000) this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(at, row.id);
    return toToken(row);
  }
}
