import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, UsageError } from '../args.ts';
import type { Command } from '../commands.ts';
import { loadSettings } from '../settings.ts';
import { issueClientCert, loadOrCreateCA, pkiDir, readCA } from './ca.ts';
import { ensurePrivateDir, writePrivateFile } from './files.ts';
import { talosTrustArg } from './talos.ts';

const USAGE = `usage: heph pki <subcommand> [--config FILE] [--set path=value]...

  show                      where heph's CA is, its fingerprint and validity
  ca                        print the CA certificate (PEM): what machines, iPXE builds (TRUST=) and clients trust
  client-cert --name NAME [--org ROLE] [--days N] --out DIR
                            issue a client certificate for the admin gRPC API: DIR/NAME.crt, DIR/NAME.key (0600)
                            and DIR/ca.crt
  talos-arg [--inline]      print talos.config.early=… (or talos.config.inline=…) carrying the CA, for Talos to
                            fetch talos.config over https
  rotate --yes              start a new CA (the boot signing certificate follows on the next start); the old files move to
                            <dataDir>/pki/retired-<time>/. Restart heph afterwards; every machine, iPXE build and
                            client that trusted the old CA must be given the new one.

The CA lives in <dataDir>/pki (created on the first \`heph serve\` or by any of these commands).`;

export const pkiCommand: Command = {
  name: 'pki',
  summary: "heph's certificate authority: show, client certificates, rotate",
  usage: USAGE,
  run,
};

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, USAGE, {
    config: { type: 'string', short: 'c' },
    set: { type: 'string', multiple: true },
    name: { type: 'string' },
    org: { type: 'string' },
    days: { type: 'string' },
    out: { type: 'string' },
    inline: { type: 'boolean' },
    yes: { type: 'boolean' },
  });
  if (values.help) return (console.log(USAGE), 0);
  const [sub, ...rest] = positionals;
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"\n\n${USAGE}`);
  const { settings } = loadSettings({ file: typeof values.config === 'string' ? values.config : undefined, overrides: Array.isArray(values.set) ? values.set.map(String) : [] });
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
    case 'client-cert': {
      const name = String(values.name ?? '');
      const out = typeof values.out === 'string' ? resolve(values.out) : '';
      if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name)) throw new UsageError(`--name must be a simple name such as alice or ci-bot\n\n${USAGE}`);
      if (!out) throw new UsageError(`--out DIR is required\n\n${USAGE}`);
      const days = values.days === undefined ? 365 : Number(values.days);
      if (!Number.isInteger(days) || days < 1 || days > 3650) throw new UsageError(`--days must be a whole number from 1 to 3650\n\n${USAGE}`);
      const ca = await loadOrCreateCA(dataDir);
      const cert = await issueClientCert(ca, { commonName: name, days, ...(typeof values.org === 'string' ? { organization: values.org } : {}) });
      mkdirSync(out, { recursive: true, mode: 0o700 });
      writePrivateFile(join(out, `${name}.key`), cert.keyPem);
      writePrivateFile(join(out, `${name}.crt`), cert.certPem);
      writePrivateFile(join(out, 'ca.crt'), cert.caPem);
      console.log(`wrote ${join(out, `${name}.crt`)}, ${join(out, `${name}.key`)} and ${join(out, 'ca.crt')} (valid until ${cert.notAfter.toISOString()})`);
      return 0;
    }
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
