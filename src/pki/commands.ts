import { existsSync, readdirSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, UsageError } from '../args.ts';
import type { Command } from '../commands.ts';
import { SETTINGS_FLAGS, settingsFromFlags } from '../settings.ts';
import { loadOrCreateCA, pkiDir, readCA } from './ca.ts';
import { ensurePrivateDir } from './files.ts';
import { talosTrustArg } from './talos.ts';

const USAGE = `usage: heph pki <subcommand> [--config FILE] [--set path=value]...

  show                      where heph's CA is, its fingerprint and validity
  ca                        print the CA certificate (PEM): what machines, iPXE builds (TRUST=) and clients trust
  talos-arg [--inline]      print talos.config.early=… (or talos.config.inline=…) carrying the CA, for Talos to
                            fetch talos.config over https
  rotate --yes              start a new CA (the boot signing certificate follows on the next start); the old files move to
                            <dataDir>/pki/retired-<time>/. Restart heph afterwards; every machine, iPXE build and
                            client that trusted the old CA must be given the new one.

The CA lives in <dataDir>/pki (created on the first \`heph serve\` or by any of these commands). Client
certificates for the admin gRPC API: \`heph admin-cert create\`.`;

export const pkiCommand: Command = {
  name: 'pki',
  summary: "heph's certificate authority: show, print, talos.config.early argument, rotate",
  usage: USAGE,
  run,
};

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, USAGE, {
    ...SETTINGS_FLAGS,
    inline: { type: 'boolean' },
    yes: { type: 'boolean' },
  });
  if (values.help) return (console.log(USAGE), 0);
  const [sub, ...rest] = positionals;
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"\n\n${USAGE}`);
  const { settings } = settingsFromFlags(values);
  const dataDir = resolve(settings.dataDir);
  switch (sub) {
    case 'show': {
      const ca = await loadOrCreateCA(dataDir);
      const c = ca.cert;
      console.log(`CA certificate: ${join(ca.dir, 'ca.crt')}`);
      console.log(`subject:        ${c.subject.attributes.map((a) => `${a.shortName}=${String(a.value)}`).join(', ')}`);
      console.log(`SHA-256:        ${ca.fingerprint}`);
      console.log(`valid:          ${c.validity.notBefore.toISOString()} to ${c.validity.notAfter.toISOString()}`);
      console.log(`key:            RSA ${ca.key.n.bitLength()} bits`);
      return 0;
    }
    case 'ca':
      process.stdout.write((await loadOrCreateCA(dataDir)).certPem);
      return 0;
    case 'talos-arg':
      console.log(await talosTrustArg((await loadOrCreateCA(dataDir)).certPem, values.inline ? 'talos.config.inline' : 'talos.config.early'));
      return 0;
    case 'rotate': {
      if (!values.yes) throw new UsageError(`rotate replaces heph's CA: every machine, iPXE build and client must then be given the new ca.crt. Add --yes to go ahead.\n\n${USAGE}`);
      const dir = pkiDir(dataDir);
      let retired: string | undefined;
      if (existsSync(join(dir, 'ca.crt')) || existsSync(join(dir, 'ca.key'))) {
        const old = existsSync(join(dir, 'ca.crt')) && existsSync(join(dir, 'ca.key')) ? readCA(dir).fingerprint : 'incomplete';
        retired = ensurePrivateDir(join(dir, `retired-${new Date().toISOString().replace(/[:.]/g, '-')}`));
        for (const f of readdirSync(dir)) if (/\.(crt|key)$/.test(f)) renameSync(join(dir, f), join(retired, f));
        console.log(`old CA (${old}) moved to ${retired}`);
      }
      const ca = await loadOrCreateCA(dataDir);
      console.log(`new CA ${ca.fingerprint} in ${ca.dir}; restart heph to use it`);
      return 0;
    }
    default:
      throw new UsageError(`${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\n${USAGE}`);
  }
}
