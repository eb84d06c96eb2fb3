import type { Context } from '../context.ts';
import { StartupError } from '../errors.ts';
import type { DB } from '../inventory/db.ts';
import type { Logger } from '../log.ts';
import { openSecrets, type Secrets } from '../secrets/index.ts';
import { disabledService, type Service } from '../service.ts';
import type { Settings } from '../settings.ts';
import { loadOrCreateCA, type CA } from './ca.ts';
import { HttpsService } from './https.ts';
import { loadOrCreateSigner, type Signer } from './sign.ts';
import { registerSignatureRoutes, type ContentResolver } from './signatures.ts';
import { talosTrustArg } from './talos.ts';

export interface Trust {
  ca: CA;
  signer: Signer | undefined;
  secrets: Secrets;
  /** `talos.config.early=…` carrying the CA; computed only when tls.enabled. */
  talosTrustArg: string | undefined;
}

/** heph's CA (created on first start), the boot signer when signing is on, and the secrets key. */
export async function openTrust(settings: Settings, dataDir: string, db: DB, log: Logger): Promise<Trust> {
  const ca = await loadOrCreateCA(dataDir);
  const signer = settings.signing.enabled ? await loadOrCreateSigner(ca) : undefined;
  const secrets = openSecrets(settings.secrets, dataDir, db);
  let talosArg: string | undefined;
  if (settings.tls.enabled) {
    try {
      talosArg = await talosTrustArg(ca.certPem);
    } catch (err) {
      throw new StartupError(`tls: cannot build the talos.config.early argument: ${(err as Error).message}`, 'Install the zstd package (apt-get install zstd), or set tls.enabled: false.', { cause: err });
    }
  }
  log.info({ caFingerprint: ca.fingerprint, signing: settings.signing.enabled, secretsKey: secrets.from, secretsKeyCreated: secrets.created, secretsKeyId: secrets.keyId }, 'trust ready');
  return { ca, signer, secrets, talosTrustArg: talosArg };
}

/**
 * Hooks signatures into the machine-facing app (when signing is on) and returns the HTTPS listener (or its
 * disabled placeholder). `resolveAsset` maps an asset URL path to its file so that `<asset>.sig` can be served.
 */
export function trustServices(ctx: Context, opts: { resolveAsset?: ContentResolver } = {}): Service[] {
  if (ctx.signer) {
    registerSignatureRoutes(ctx.http.app, { signer: ctx.signer, log: ctx.log.child({ svc: 'signing' }), metrics: ctx.metrics, ...(opts.resolveAsset ? { resolve: opts.resolveAsset } : {}) });
  }
  const tls = ctx.settings.tls;
  if (!tls.enabled) return [disabledService('https', 'tls.enabled is false')];
  return [
    new HttpsService({
      app: ctx.http.app,
      ca: ctx.ca,
      listen: ctx.settings.http.listen,
      port: tls.port,
      advertise: ctx.advertise,
      ipAddresses: tls.ipAddresses,
      dnsNames: tls.dnsNames,
      log: ctx.log.child({ svc: 'https' }),
    }),
  ];
}

/** Talos reads talos.config.early from 1.11 on; older Talos would fetch the https URL without trusting the CA. */
export function talosReadsEarlyConfig(talosVersion: string): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(talosVersion);
  return m !== null && (Number(m[1]) > 1 || (Number(m[1]) === 1 && Number(m[2]) >= 11));
}
