import { execFileSync, spawnSync } from 'node:child_process';
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

export function writeTmp(dir: string, name: string, data: string | Buffer): string {
  const f = join(dir, name);
  writeFileSync(f, data);
  return f;
}
