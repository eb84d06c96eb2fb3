import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from '../commands.ts';
import { parse, UsageError } from '../args.ts';
import { audit } from '../inventory/audit.ts';
import { ensureDataDir, openInventory } from '../inventory/db.ts';
import { SETTINGS_FLAGS, settingsFromFlags } from '../settings.ts';
import { SCOPE_PREFIX, SCOPES, Tokens, type Scope } from './tokens.ts';

const USAGE = `usage: heph tokens create --name NAME [--scope read|operator|admin] [--config FILE]
       heph tokens list [--config FILE]
       heph tokens revoke ID [--config FILE]

API tokens for the REST API, the web page and automation. Scopes: read (look), operator (accept, reprovision,
edit machines, profiles and selectors), admin (also tokens and the audit). The secret is printed once, by
create, on stdout; heph keeps only its hash. Works while heph runs (same data directory).`;

export const tokensCommand: Command = {
  name: 'tokens',
  summary: 'create, list or revoke API tokens',
  usage: USAGE,
  run: async (argv) => {
    const { values, positionals } = parse(argv, USAGE, {
      ...SETTINGS_FLAGS,
      name: { type: 'string' },
      scope: { type: 'string' },
    });
    if (values.help) return (console.log(USAGE), 0);
    const [sub, ...rest] = positionals;
    const { settings } = settingsFromFlags(values);
    const extra = (n: number): void => {
      if (rest.length > n) throw new UsageError(`unexpected argument "${rest[n]}"\n\n${USAGE}`);
    };
    const open = (): { tokens: Tokens; close(): void; db: ReturnType<typeof openInventory>['db'] } => {
      const { db } = openInventory(settings.dataDir);
      return { tokens: new Tokens(db), db, close: () => db.close() };
    };
    switch (sub) {
      case 'create': {
        extra(0);
        const name = values.name;
        const scope = (values.scope ?? 'read') as string;
        if (typeof name !== 'string' || name.trim() === '' || name.length > 100) throw new UsageError(`--name is required (1-100 characters)\n\n${USAGE}`);
        if (!(SCOPES as readonly string[]).includes(scope)) throw new UsageError(`--scope must be one of ${SCOPES.join(', ')}, not "${scope}"\n\n${USAGE}`);
        const inv = open();
        try {
          const made = inv.db.transaction(() => {
            const t = inv.tokens.create(name, scope as Scope);
            audit(inv.db, { actor: 'cli', action: 'token.create', detail: { id: t.record.id, name, scope } });
            return t;
          }).immediate();
          console.error(`heph: created token ${made.record.id} "${name}" with scope ${scope}; it is shown only this once:`);
          console.log(made.token);
        } finally {
          inv.close();
        }
        return 0;
      }
      case 'list': {
        extra(0);
        const inv = open();
        try {
          const rows = inv.tokens.list();
          const fmt = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString().slice(0, 19) + 'Z');
          console.log(['ID'.padEnd(12), 'SCOPE'.padEnd(8), 'CREATED'.padEnd(20), 'LAST USED'.padEnd(20), 'REVOKED'.padEnd(20), 'NAME'].join('  '));
          for (const t of rows) console.log([t.id.padEnd(12), t.scope.padEnd(8), fmt(t.createdAt).padEnd(20), fmt(t.lastUsedAt).padEnd(20), fmt(t.revokedAt).padEnd(20), t.name].join('  '));
        } finally {
          inv.close();
        }
        return 0;
      }
      case 'revoke': {
        extra(1);
        const id = rest[0];
        if (!id) throw new UsageError(`revoke needs the token ID (see heph tokens list)\n\n${USAGE}`);
        const inv = open();
        try {
          const done = inv.db.transaction(() => {
            if (!inv.tokens.revoke(id)) return false;
            audit(inv.db, { actor: 'cli', action: 'token.revoke', detail: { id } });
            return true;
          }).immediate();
          if (!done) {
            console.error(`heph: no live token with ID ${id}`);
            return 1;
          }
          console.log(`revoked ${id}`);
        } finally {
          inv.close();
        }
        return 0;
      }
      default:
        throw new UsageError(`${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\n${USAGE}`);
    }
  },
};

const CERT_USAGE = `usage: heph admin-cert create --name NAME [--scope read|operator|admin] --out DIR [--days N] [--config FILE] [--set path=value]

Issues a client certificate for the admin gRPC API (mutual TLS), signed by heph's CA in the data directory
(created if missing). Writes DIR/NAME.crt, DIR/NAME.key (0600) and DIR/ca.crt; the scope goes into the
certificate's subject O (heph:<scope>). Certificates cannot be revoked one by one: keep --days short.`;

export const adminCertCommand: Command = {
  name: 'admin-cert',
  summary: 'issue a client certificate for the admin gRPC API',
  usage: CERT_USAGE,
  run: async (argv) => {
    const { values, positionals } = parse(argv, CERT_USAGE, {
      ...SETTINGS_FLAGS,
      name: { type: 'string' },
      scope: { type: 'string' },
      out: { type: 'string' },
      days: { type: 'string' },
    });
    if (values.help) return (console.log(CERT_USAGE), 0);
    const [sub, ...rest] = positionals;
    if (sub !== 'create') throw new UsageError(`${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\n${CERT_USAGE}`);
    if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"\n\n${CERT_USAGE}`);
    const name = values.name;
    const scope = (values.scope ?? 'read') as string;
    const days = values.days === undefined ? 90 : Number(values.days);
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new UsageError(`--name is required: letters, digits, dot, dash, underscore (it names the files and the certificate CN)\n\n${CERT_USAGE}`);
    if (!(SCOPES as readonly string[]).includes(scope)) throw new UsageError(`--scope must be one of ${SCOPES.join(', ')}, not "${scope}"\n\n${CERT_USAGE}`);
    if (typeof values.out !== 'string' || values.out === '') throw new UsageError(`--out DIR is required\n\n${CERT_USAGE}`);
    if (!Number.isInteger(days) || days < 1 || days > 825) throw new UsageError(`--days must be a whole number from 1 to 825\n\n${CERT_USAGE}`);
    const { settings } = settingsFromFlags(values);
    const { loadOrCreateCA, issueClientCert } = await import('../pki/ca.ts');
    const { ensurePrivateDir, writePrivateFile } = await import('../pki/files.ts');
    const dataDir = ensureDataDir(settings.dataDir);
    const ca = await loadOrCreateCA(dataDir);
    const cert = await issueClientCert(ca, { commonName: name, organization: `${SCOPE_PREFIX}${scope}`, days });
    const out = ensurePrivateDir(resolve(values.out));
    writePrivateFile(join(out, `${name}.key`), cert.keyPem);
    writeFileSync(join(out, `${name}.crt`), cert.certPem);
    writeFileSync(join(out, 'ca.crt'), cert.caPem);
    const { db } = openInventory(dataDir);
    try {
      audit(db, { actor: 'cli', action: 'cert.issue', detail: { cn: name, scope, days, notAfter: cert.notAfter.toISOString() } });
    } finally {
      db.close();
    }
    console.log(`wrote ${join(out, `${name}.crt`)}, ${join(out, `${name}.key`)} (0600) and ${join(out, 'ca.crt')}; scope ${scope}, valid until ${cert.notAfter.toISOString()}`);
    return 0;
  },
};
