import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { migrate, readMigrations } from '../../src/inventory/migrate.ts';
import { MIGRATIONS_DIR } from '../../src/inventory/db.ts';
import { Sessions, csrfMatches, readCookie } from '../../src/api/sessions.ts';
import { parseToken, scopeAllows, SCOPES, Tokens } from '../../src/api/tokens.ts';

function db(): Database.Database {
  const d = new Database(':memory:');
  d.pragma('foreign_keys = ON');
  migrate(d, readMigrations(MIGRATIONS_DIR));
  return d;
}

test('scopes are ordered: read < operator < admin', () => {
  const table = SCOPES.map((held) => SCOPES.map((needed) => scopeAllows(held, needed)));
  assert.deepEqual(table, [
    [true, false, false],
    [true, true, false],
    [true, true, true],
  ]);
});

test('tokens are stored hashed, verified exactly, and die when revoked', () => {
  const d = db();
  const tokens = new Tokens(d);
  assert.equal(tokens.any(), false);
  const { token, record } = tokens.create('ci', 'operator', 1000);
  assert.equal(tokens.any(), true);
  assert.deepEqual(parseToken(token), { id: record.id });
  const stored = d.prepare('SELECT * FROM api_tokens').get() as Record<string, unknown>;
  assert.ok(!JSON.stringify(stored).includes(token.slice(-43)), 'the secret is not stored');
  assert.equal(stored.hash, (d.prepare('SELECT hash FROM api_tokens').pluck().get() as string));
  assert.equal(tokens.verify(token, 2000)?.scope, 'operator');
  assert.equal(tokens.get(record.id)?.lastUsedAt, 2000);
  tokens.verify(token, 3000);
  assert.equal(tokens.get(record.id)?.lastUsedAt, 2000, 'last-used is stamped at most once a minute');
  const secret = token.slice(-43);
  const flipped = token.slice(0, -43) + (secret[0] === 'A' ? 'B' : 'A') + secret.slice(1);
  for (const bad of [flipped, token + 'x', token.toUpperCase(), '', `heph_${record.id}_`, `heph_000000000000_${secret}`]) assert.equal(tokens.verify(bad), undefined, bad);
  assert.equal(tokens.revoke(record.id), true);
  assert.equal(tokens.revoke(record.id), false);
  assert.equal(tokens.verify(token), undefined);
  assert.equal(tokens.any(), true, 'a revoked token still counts: no second initial token');
});

test('sessions carry the token scope, expire, and end with their token', () => {
  const d = db();
  const tokens = new Tokens(d);
  const { record } = tokens.create('web', 'read', 0);
  const sessions = new Sessions(d, 1000);
  const { cookie, session } = sessions.open(record, 10_000);
  assert.equal(session.scope, 'read');
  assert.equal(sessions.find(cookie, 10_500)?.csrf, session.csrf);
  assert.equal(sessions.find(cookie, 11_000), undefined, 'expired');
  assert.equal(sessions.find(cookie + 'x', 10_500), undefined);
  assert.ok(!JSON.stringify(d.prepare('SELECT * FROM api_sessions').all()).includes(cookie), 'only a hash of the cookie is stored');
  tokens.revoke(record.id);
  assert.equal(sessions.find(cookie, 10_500), undefined, 'revoked token');
  assert.equal(csrfMatches(session, session.csrf), true);
  assert.equal(csrfMatches(session, undefined), false);
  assert.equal(csrfMatches(session, session.csrf.slice(1)), false);
});

test('readCookie finds one cookie among many and ignores junk', () => {
  assert.equal(readCookie('a=1; heph_session=abc; b=2', 'heph_session'), 'abc');
  assert.equal(readCookie('heph_sessionx=1;junk; heph_session = v ', 'heph_session'), 'v');
  assert.equal(readCookie(undefined, 'heph_session'), undefined);
  assert.equal(readCookie('x=1', 'heph_session'), undefined);
});
