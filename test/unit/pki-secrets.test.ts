import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StartupError } from '../../src/errors.ts';
import { openInventory } from '../../src/inventory/db.ts';
import { validate } from '../../src/schema.ts';
import { decryptField, encryptField, isEnvelope, openSecrets, SecretError, type FieldRef } from '../../src/secrets/index.ts';
import { secretKey } from '../../src/secrets/field.ts';
import { loadSecretsKey } from '../../src/secrets/key.ts';
import { secretsSettings } from '../../src/secrets/settings.ts';
import { tempDir } from '../helpers/heph.ts';

const settings = (over: Record<string, unknown> = {}) => validate(secretsSettings.shape, over);
const ref: FieldRef = { table: 'profiles', row: 'prod-workers', column: 'secrets' };
const code = (c: string) => (e: unknown) => e instanceof SecretError && e.code === c;

describe('field encryption (AES-256-GCM, bound to table/row/column)', () => {
  const key = secretKey(randomBytes(32));

  it('round-trips, with a fresh nonce each time, in a versioned envelope', () => {
    const a = encryptField(key, 'cluster-secret-ABC', ref);
    const b = encryptField(key, 'cluster-secret-ABC', ref);
    assert.notEqual(a, b);
    assert.match(a, /^hephenc:v1:[0-9a-f]{16}:[A-Za-z0-9_-]+$/);
    assert.ok(isEnvelope(a));
    assert.ok(!a.includes('cluster-secret'));
    assert.equal(decryptField(key, a, ref), 'cluster-secret-ABC');
    assert.equal(decryptField(key, encryptField(key, '', ref), ref), '');
  });

  it('refuses a value moved to another row, column or table', () => {
    const env = encryptField(key, 'x', ref);
    assert.throws(() => decryptField(key, env, { ...ref, row: 'other' }), code('tampered'));
    assert.throws(() => decryptField(key, env, { ...ref, column: 'spec' }), code('tampered'));
    assert.throws(() => decryptField(key, env, { ...ref, table: 'configs' }), code('tampered'));
  });

  it('refuses any altered byte, a wrong key, an unknown version and garbage', () => {
    const env = encryptField(key, 'some secret value', ref);
    const raw = Buffer.from(env.split(':')[3]!, 'base64url');
    for (const i of [0, 12, raw.length - 1]) {
      const t = Buffer.from(raw);
      t[i]! ^= 1;
      assert.throws(() => decryptField(key, `hephenc:v1:${key.id}:${t.toString('base64url')}`, ref), code('tampered'), `byte ${i}`);
    }
    assert.throws(() => decryptField(secretKey(randomBytes(32)), env, ref), code('wrong-key'));
    assert.throws(() => decryptField(key, env.replace(':v1:', ':v9:'), ref), code('unsupported-version'));
    for (const bad of ['plain text', 'hephenc:v1', `hephenc:v1:${key.id}:`, `hephenc:v1:${key.id}:AAAA`, `${env}:x`]) assert.throws(() => decryptField(key, bad, ref), code('malformed'), bad);
  });
});

describe('the secrets key', () => {
  const tmp = tempDir('heph-secrets-');
  after(() => tmp.remove());

  it('is created 0600 in the data dir on first start, then reused', () => {
    const dir = join(tmp.path, 'a');
    mkdirSync(dir, { mode: 0o700 });
    const first = loadSecretsKey(settings(), dir, {});
    assert.equal(first.created, true);
    assert.equal(statSync(join(dir, 'secrets.key')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(dir, 'secrets.key'), 'utf8'), /^[A-Za-z0-9+/]{43}=\n$/);
    const again = loadSecretsKey(settings(), dir, {});
    assert.equal(again.created, false);
    assert.equal(again.key.id, first.key.id);
  });

  it('is refused when group or others may read the file', () => {
    const dir = join(tmp.path, 'b');
    mkdirSync(dir);
    loadSecretsKey(settings(), dir, {});
    chmodSync(join(dir, 'secrets.key'), 0o640);
    assert.throws(() => loadSecretsKey(settings(), dir, {}), (e: unknown) => e instanceof StartupError && /readable by others/.test(e.message) && /chmod 600/.test(e.hint ?? ''));
  });

  it('comes from a systemd credential when $CREDENTIALS_DIRECTORY holds it (raw or base64)', () => {
    const creds = join(tmp.path, 'creds');
    mkdirSync(creds);
    const bytes = randomBytes(32);
    writeFileSync(join(creds, 'heph-secrets-key'), bytes);
    const dir = join(tmp.path, 'c');
    mkdirSync(dir);
    const k = loadSecretsKey(settings(), dir, { CREDENTIALS_DIRECTORY: creds });
    assert.equal(k.key.id, secretKey(bytes).id);
    assert.match(k.from, /systemd credential/);
    assert.deepEqual(readdirSync(dir), [], 'no key file is written when the credential is used');
    writeFileSync(join(creds, 'other'), bytes.toString('base64'));
    assert.equal(loadSecretsKey(settings({ keySource: 'credential', credential: 'other' }), dir, { CREDENTIALS_DIRECTORY: creds }).key.id, k.key.id);
    assert.throws(() => loadSecretsKey(settings({ keySource: 'credential' }), dir, {}), (e: unknown) => e instanceof StartupError && /LoadCredentialEncrypted=/.test(e.hint ?? ''));
    writeFileSync(join(creds, 'short'), 'too short');
    assert.throws(() => loadSecretsKey(settings({ credential: 'short' }), dir, { CREDENTIALS_DIRECTORY: creds }), (e: unknown) => e instanceof StartupError && /does not hold a key/.test(e.message));
  });
});

describe('a database copied without its key', () => {
  const tmp = tempDir('heph-secrets-db-');
  after(() => tmp.remove());

  it('reveals nothing: the plaintext is in no file of the database, and another key is refused at startup', () => {
    const dir = join(tmp.path, 'data');
    const { db } = openInventory(dir);
    const secrets = openSecrets(settings(), dir, db, {});
    const plaintext = `talos-cluster-secret-${randomBytes(8).toString('hex')}`;
    const control = `unencrypted-control-${randomBytes(8).toString('hex')}`;
    const now = Date.now();
    const spec = JSON.stringify({ talosVersion: 'v1.13.9', secrets: secrets.encrypt(plaintext, ref), note: control });
    db.prepare('INSERT INTO profiles (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)').run('prod-workers', spec, now, now);
    const stored = JSON.parse((db.prepare('SELECT spec FROM profiles WHERE name = ?').get('prod-workers') as { spec: string }).spec) as { secrets: string };
    assert.equal(secrets.decrypt(stored.secrets, ref), plaintext);
    const files = readdirSync(dir).filter((f) => f.startsWith('heph.db'));
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(dir, f))));
    assert.ok(bytes.includes(control), 'control: an unencrypted value is found in the database files');
    assert.ok(!bytes.includes(plaintext), 'the secret is not');
    for (const f of [...files, 'secrets.key']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    db.close();

    // The database moved to a host with another key: refuse at startup rather than fail on every secret.
    writeFileSync(join(dir, 'secrets.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const reopened = openInventory(dir);
    try {
      assert.throws(() => openSecrets(settings(), dir, reopened.db, {}), (e: unknown) => e instanceof StartupError && /not the key this database's secrets were encrypted with/.test(e.message));
    } finally {
      reopened.db.close();
    }
  });
});
