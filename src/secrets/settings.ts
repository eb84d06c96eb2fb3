import { oneOf, section, str } from '../schema.ts';

export const secretsSettings = section('Encryption of secrets at rest (cluster secrets in profiles and rendered configs). The key never enters the database.', {
  keySource: oneOf(
    'auto: the systemd credential if $CREDENTIALS_DIRECTORY holds it, else the key file (created on first start); file: only the key file; credential: only the systemd credential (LoadCredential=/LoadCredentialEncrypted=), startup fails without it.',
    'auto',
    ['auto', 'file', 'credential'] as const,
  ),
  keyFile: str('Key file (32 random bytes, base64), relative to dataDir unless absolute. Created 0600; refused if group or others may read it.', 'secrets.key'),
  credential: str('Name of the systemd credential holding the key.', 'heph-secrets-key', { pattern: /^[A-Za-z0-9_.-]{1,64}$/, expects: 'a credential name such as heph-secrets-key' }),
});
