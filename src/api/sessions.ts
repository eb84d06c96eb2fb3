import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { DB } from '../inventory/db.ts';
import { sha256, type ApiToken, type Scope } from './tokens.ts';

export const SESSION_COOKIE = 'heph_session';

export interface Session {
  tokenId: string;
  tokenName: string;
  scope: Scope;
  csrf: string;
  expiresAt: number;
}

/** Web-page logins: an HttpOnly cookie stands for an API token; revoking the token ends its sessions. */
export class Sessions {
  constructor(
    private readonly db: DB,
    private readonly ttlMs: number,
  ) {}

  open(token: ApiToken, at = Date.now()): { cookie: string; session: Session } {
    const cookie = randomBytes(32).toString('base64url');
    const csrf = randomBytes(32).toString('base64url');
    const expiresAt = at + this.ttlMs;
    this.db.prepare('DELETE FROM api_sessions WHERE expires_at <= ?').run(at);
    this.db
      .prepare('INSERT INTO api_sessions (hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
      .run(sha256(cookie).toString('hex'), token.id, csrf, at, expiresAt);
    return { cookie, session: { tokenId: token.id, tokenName: token.name, scope: token.scope, csrf, expiresAt } };
  }

  /** The live session for this cookie value (unexpired, its token not revoked), or undefined. */
  find(cookie: string, at = Date.now()): Session | undefined {
    const r = this.db
      .prepare<[string, number], { token_id: string; name: string; scope: string; csrf: string; expires_at: number }>(
        `SELECT s.token_id, t.name, t.scope, s.csrf, s.expires_at FROM api_sessions s JOIN api_tokens t ON t.id = s.token_id
         WHERE s.hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL`,
      )
      .get(sha256(cookie).toString('hex'), at);
    return r && { tokenId: r.token_id, tokenName: r.name, scope: r.scope as Scope, csrf: r.csrf, expiresAt: r.expires_at };
  }

  close(cookie: string): void {
    this.db.prepare('DELETE FROM api_sessions WHERE hash = ?').run(sha256(cookie).toString('hex'));
  }
}

/** Constant-time check of the X-CSRF-Token header against the session's token. */
export function csrfMatches(session: Session, header: string | undefined): boolean {
  if (!header) return false;
  const a = sha256(header);
  const b = sha256(session.csrf);
  return timingSafeEqual(a, b);
}

/** The value of one cookie from a Cookie header; malformed pairs are skipped. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
