import type { DB } from '../inventory/db.ts';
import { StartupError } from '../errors.ts';
import { decryptField, encryptField, SecretError, type FieldRef, type SecretKey } from './field.ts';
import { loadSecretsKey, type SecretsSettings } from './key.ts';

export { decryptField, encryptField, isEnvelope, SecretError, type FieldRef, type SecretKey } from './field.ts';

/** The daemon's handle on secrets at rest: what services use to store and read secret columns. */
export interface Secrets {
  keyId: string;
  encrypt(plaintext: string, ref: FieldRef): string;
  decrypt(envelope: string, ref: FieldRef): string;
}

const CHECK_REF: FieldRef = { table: 'secrets_key', row: '1', column: 'check_value' };
const CHECK_PLAINTEXT = 'heph secrets key check';

/**
 * Loads the key and checks it against the one recorded in the database (recorded on first use), so a database
 * restored next to the wrong key stops startup with an explanation instead of failing on every secret.
 */
export function openSecrets(s: SecretsSettings, dataDir: string, db: DB, env: NodeJS.ProcessEnv = process.env): Secrets & { from: string; created: boolean } {
  const { key, from, created } = loadSecretsKey(s, dataDir, env);
  checkKey(db, key, from);
  return {
    keyId: key.id,
    from,
    created,
    encrypt: (plaintext, ref) => encryptField(key, plaintext, ref),
    decrypt: (envelope, ref) => decryptField(key, envelope, ref),
  };
}

function checkKey(db: DB, key: SecretKey, from: string): void {
  const row = db.prepare('SELECT key_id, check_value FROM secrets_key WHERE id = 1').get() as { key_id: string; check_value: string } | undefined;
  if (!row) {
    db.prepare('INSERT INTO secrets_key (id, key_id, check_value, created_at) VALUES (1, ?, ?, ?)').run(key.id, encryptField(key, CHECK_PLAINTEXT, CHECK_REF), Date.now());
    return;
  }
  try {
    if (decryptField(key, row.check_value, CHECK_REF) === CHECK_PLAINTEXT) return;
  } catch (err) {
    if (!(err instanceof SecretError)) throw err;
  }
  throw new StartupError(
    `secrets: the key from ${from} (id ${key.id}) is not the key this database's secrets were encrypted with (id ${row.key_id}).`,
    'Restore the original key (key file or systemd credential) from the backup made with this database. Without it the encrypted secrets cannot be read.',
  );
}
