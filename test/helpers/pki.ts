import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Runs openssl with the given arguments; returns exit status and combined output (never throws). */
export function openssl(args: string[], input?: string | Buffer): { status: number; out: string } {
  const r = spawnSync('openssl', args, input === undefined ? {} : { input });
  return { status: r.status ?? -1, out: `${r.stdout.toString()}${r.stderr.toString()}` };
}

/** `openssl x509 -text` of a PEM certificate. */
export function x509Text(pem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem }).toString();
}

/**
 * Runs a command without blocking the event loop: needed whenever the peer is a server in this same process.
 */
export function run(cmd: string, args: string[], input?: string): Promise<{ status: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ status: code ?? -1, out, err }));
    // A command that exits without reading stdin (curl refused at once) closes the pipe first: its exit status is
    // the result, the EPIPE is not.
    p.stdin.on('error', () => {});
    p.stdin.end(input ?? '');
  });
}

export function writeTmp(dir: string, name: string, data: string | Buffer): string {
  const f = join(dir, name);
  writeFileSync(f, data);
  return f;
}

/**
 * Checks a detached signature the way iPXE `imgverify` would judge it, which is stricter than openssl alone
 * (openssl accepts a serverAuth signer and signed attributes; iPXE refuses both): openssl verifies it against
 * `caPem`, there are no signed attributes, the root is inside, and the signer has digitalSignature + codeSigning.
 * Returns the problems found (empty when iPXE would accept it).
 */
export function ipxeSignatureProblems(dir: string, sig: Buffer, contentFile: string, caPem: string): string[] {
  const problems: string[] = [];
  const sigFile = writeTmp(dir, `sig-${process.hrtime.bigint()}.der`, sig);
  const caFile = writeTmp(dir, `ca-${process.hrtime.bigint()}.pem`, caPem);
  const verify = openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', sigFile, '-content', contentFile, '-CAfile', caFile, '-purpose', 'any', '-out', '/dev/null']);
  if (verify.status !== 0) problems.push(`openssl cms -verify failed: ${verify.out.trim()}`);
  const printed = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', sigFile]).out;
  if (!/contentType: pkcs7-signedData/.test(printed)) problems.push('not a CMS SignedData');
  if (!/eContent: <ABSENT>/.test(printed)) problems.push('content is embedded (iPXE needs a detached signature)');
  if (!/\bsignedAttrs:\s*<ABSENT>/.test(printed)) problems.push('signed attributes present (iPXE rejects them)');
  const certs = openssl(['pkcs7', '-inform', 'DER', '-in', sigFile, '-print_certs']).out;
  const pems = certs.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
  const norm = (p: string): string => p.replace(/\s+/g, '');
  if (!pems.some((p) => norm(p) === norm(caPem))) problems.push('the root CA certificate is not inside the signature');
  const signer = pems.find((p) => norm(p) !== norm(caPem));
  if (!signer) problems.push('no signer certificate inside the signature');
  else {
    const text = x509Text(signer);
    if (!/X509v3 Key Usage:[^\n]*\n\s+[^\n]*Digital Signature/.test(text)) problems.push('signer lacks the digitalSignature key usage');
    if (!/X509v3 Extended Key Usage:[^\n]*\n\s+[^\n]*Code Signing/.test(text)) problems.push('signer lacks the codeSigning extended key usage');
  }
  return problems;
}
