import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Field encryption for secrets at rest (cluster secrets in profiles, rendered configs): AES-256-GCM, with the
 * table, row and column as associated data, so a value copied into another row or column fails to decrypt
 * instead of silently becoming someone else's secret.
 *
 * Envelope (version 1), stored as text: `hephenc:v1:<key id>:<base64url(nonce 12 B | ciphertext | tag 16 B)>`.
 * The key id (the first 16 hex digits of a hash of the key) says which key a value needs, so a wrong key is
 * reported as such rather than as tampering. A future v2 can change any part after the version.
 */

export const ENVELOPE_PREFIX = 'hephenc:';
const VERSION = 'v1';
const NONCE = 12;
const TAG = 16;

/** A 256-bit data key and its public id. */
export interface SecretKey {
  id: string;
  bytes: Buffer;
}

/** Where a value lives; bound into the ciphertext. */
export interface FieldRef {
  table: string;
  row: string;
  column: string;
}

export type SecretErrorCode = 'malformed' | 'unsupported-version' | 'wrong-key' | 'tampered';

export class SecretError extends Error {
  constructor(
    readonly code: SecretErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SecretError';
  }
}

export function secretKey(bytes: Buffer): SecretKey {
  if (bytes.length !== 32) throw new Error(`a secrets key is 32 bytes, not ${bytes.length}`);
  return { id: createHash('sha256').update('heph secrets key id\0').update(bytes).digest('hex').slice(0, 16), bytes };
}

export function isEnvelope(value: string): boolean {
  return value.startsWith(ENVELOPE_PREFIX);
}

export function encryptField(key: SecretKey, plaintext: string | Buffer, ref: FieldRef): string {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', key.bytes, nonce, { authTagLength: TAG });
  c.setAAD(aad(VERSION, key.id, ref));
  const body = Buffer.concat([nonce, c.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), c.final(), c.getAuthTag()]);
  return `${ENVELOPE_PREFIX}${VERSION}:${key.id}:${body.toString('base64url')}`;
}

export function decryptFieldBytes(key: SecretKey, envelope: string, ref: FieldRef): Buffer {
  const parts = envelope.split(':');
  if (parts.length !== 4 || `${parts[0]}:` !== ENVELOPE_PREFIX) throw new SecretError('malformed', `${where(ref)}: not an encrypted value`);
  const [, version, keyId, b64] = parts as [string, string, string, string];
  if (version !== VERSION) throw new SecretError('unsupported-version', `${where(ref)}: encrypted with format ${version}, which this heph does not know`);
  if (keyId !== key.id) throw new SecretError('wrong-key', `${where(ref)}: encrypted with key ${keyId}, but the loaded key is ${key.id}`);
  const body = Buffer.from(b64, 'base64url');
  if (body.length < NONCE + TAG || body.toString('base64url') !== b64) throw new SecretError('malformed', `${where(ref)}: damaged encrypted value`);
  const d = createDecipheriv('aes-256-gcm', key.bytes, body.subarray(0, NONCE), { authTagLength: TAG });
  d.setAAD(aad(version, keyId, ref));
  d.setAuthTag(body.subarray(body.length - TAG));
  try {
    return Buffer.concat([d.update(body.subarray(NONCE, body.length - TAG)), d.final()]);
  } catch {
    throw new SecretError('tampered', `${where(ref)}: the encrypted value was altered or belongs to another field`);
  }
}

export function decryptField(key: SecretKey, envelope: string, ref: FieldRef): string {
  return decryptFieldBytes(key, envelope, ref).toString('utf8');
}

// NUL-separated, and names may not contain NUL, so no two different refs give the same bytes.
function aad(version: string, keyId: string, ref: FieldRef): Buffer {
  for (const part of [ref.table, ref.row, ref.column]) if (part.includes('\0')) throw new Error('field names may not contain NUL');
  return Buffer.from([`hephenc:${version}`, keyId, ref.table, ref.row, ref.column].join('\0'), 'utf8');
}

function where(ref: FieldRef): string {
  return `${ref.table}.${ref.column} of ${ref.row}`;
}
