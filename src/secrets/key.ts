import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { StartupError } from '../errors.ts';
import type { Infer } from '../schema.ts';
import { writePrivateFile } from '../pki/files.ts';
import { secretKey, type SecretKey } from './field.ts';
import type { secretsSettings } from './settings.ts';

export type SecretsSettings = Infer<(typeof secretsSettings)['shape']>;

export interface LoadedKey {
  key: SecretKey;
  /** Where it came from, for the startup log (never the key itself). */
  from: string;
  created: boolean;
}

/**
 * Loads the data key from a systemd credential or the key file, creating the file (0600) on first start when
 * the settings allow it. The key lives outside the database, so a copied database reveals nothing.
 */
export function loadSecretsKey(s: SecretsSettings, dataDir: string, env: NodeJS.ProcessEnv = process.env): LoadedKey {
  const credDir = env.CREDENTIALS_DIRECTORY;
  const credFile = credDir ? join(credDir, s.credential) : undefined;
  if (s.keySource === 'credential' || (s.keySource === 'auto' && credFile && existsSync(credFile))) {
    if (!credFile || !existsSync(credFile)) {
      throw new StartupError(
        `secrets: the systemd credential "${s.credential}" is missing (${credDir ? `not in ${credDir}` : '$CREDENTIALS_DIRECTORY is not set'}).`,
        `Add LoadCredentialEncrypted=${s.credential}:/etc/credstore.encrypted/${s.credential} (or LoadCredential=) to heph's unit, or set secrets.keySource: file.`,
      );
    }
    return { key: parseKey(readFileSync(credFile), `credential ${s.credential}`), from: `systemd credential ${s.credential}`, created: false };
  }
  const file = isAbsolute(s.keyFile) ? s.keyFile : join(dataDir, s.keyFile);
  if (!existsSync(file)) {
    const bytes = randomBytes(32);
    writePrivateFile(file, `${bytes.toString('base64')}\n`);
    return { key: secretKey(bytes), from: file, created: true };
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new StartupError(`secrets: key file ${file} is readable by others (mode ${mode.toString(8).padStart(4, '0')}).`, `chmod 600 ${file}, and check who may have read it; if anyone did, re-encrypt with a new key.`);
  }
  return { key: parseKey(readFileSync(file), file), from: file, created: false };
}

/** 32 raw bytes, or their base64 (what `systemd-creds encrypt` and the key file hold). */
function parseKey(raw: Buffer, what: string): SecretKey {
  if (raw.length === 32) return secretKey(raw);
  const text = raw.toString('utf8').trim();
  const bytes = /^[A-Za-z0-9+/]{43}=$/.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (bytes.length !== 32) {
    throw new StartupError(`secrets: ${what} does not hold a key (expected 32 bytes, raw or base64).`, 'Generate one with `head -c 32 /dev/urandom | base64`.');
  }
  return secretKey(bytes);
}
