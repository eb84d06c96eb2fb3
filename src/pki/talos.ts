import { spawn } from 'node:child_process';

// Talos ≥ 1.11 reads `talos.config.early` before fetching `talos.config`, applies an incomplete config (one
// without a v1alpha1 document, such as a lone TrustedRootsConfig) and goes on to fetch: so the CA arrives before
// the https download that needs it (protocols.md §1.1, §1.3). The value is base64(zstd(YAML)).

export type TalosConfigParam = 'talos.config.early' | 'talos.config.inline';

/** The TrustedRootsConfig document that makes Talos trust `caPem` (system roots stay trusted too). */
export function trustedRootsDocument(caPem: string, name = 'heph-ca'): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw new Error(`"${name}" is not a valid document name`);
  const pem = caPem.trim().split('\n').map((l) => `  ${l}`).join('\n');
  return `apiVersion: v1alpha1\nkind: TrustedRootsConfig\nname: ${name}\ncertificates: |\n${pem}\n`;
}

/**
 * `talos.config.early=<base64(zstd(TrustedRootsConfig))>` for heph's CA. zstd comes from the `zstd` command
 * (Debian package zstd): Node 20 has no zstd, and the one npm package (a wasm build at 0.0.x) is not worth a
 * dependency for one small document per start.
 */
export async function talosTrustArg(caPem: string, param: TalosConfigParam = 'talos.config.early'): Promise<string> {
  const compressed = await zstd(Buffer.from(trustedRootsDocument(caPem)));
  return `${param}=${compressed.toString('base64')}`;
}

function zstd(input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn('zstd', ['-19', '-q', '-c', '--no-check'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e: NodeJS.ErrnoException) => reject(new Error(e.code === 'ENOENT' ? 'the zstd command is missing: install the zstd package' : `zstd: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`zstd failed (exit ${code}): ${err.trim()}`))));
    p.stdin.end(input);
  });
}
