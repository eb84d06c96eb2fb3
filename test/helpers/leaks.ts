// Finds secrets in captured log output. Run it over the logs of a full boot: heph must never log a PEM block,
// a token, a key or an encrypted value, whatever the level.

export interface Leak {
  /** 1-based line number in the input. */
  line: number;
  kind: 'pem' | 'api-token' | 'random-token' | 'base64-key' | 'encrypted-value' | 'known-secret';
  /** The matched text, shortened so the report itself does not repeat the secret. */
  excerpt: string;
}

const PATTERNS: { kind: Leak['kind']; re: RegExp; check?: (m: string) => boolean }[] = [
  { kind: 'pem', re: /-----BEGIN [A-Z0-9 ]+-----/g },
  // API tokens: heph_<12 id>_<43 secret> (src/api/tokens.ts).
  { kind: 'api-token', re: /heph_[a-z0-9]{12}_[A-Za-z0-9_-]{43}/g },
  // 32 random bytes in base64url (boot tokens, session cookies, CSRF tokens): 43 characters that mix cases and digits.
  { kind: 'random-token', re: /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_=-])/g, check: (m) => /[a-z]/.test(m) && /[A-Z]/.test(m) && /[0-9]/.test(m) },
  // 32 bytes in standard base64 (the secrets key file), or any long base64 run (DER keys and certificates).
  { kind: 'base64-key', re: /(?<![A-Za-z0-9+/])(?:[A-Za-z0-9+/]{43}=|[A-Za-z0-9+/]{120,}={0,2})(?![A-Za-z0-9+/=])/g, check: (m) => /[a-z]/.test(m) && /[A-Z]/.test(m) && /[0-9]/.test(m) },
  { kind: 'encrypted-value', re: /hephenc:v\d+:[0-9a-f]+:[A-Za-z0-9_-]+/g },
];

/**
 * Every place in `logs` (raw text, or already-parsed JSON lines) that looks like a secret, plus every occurrence
 * of the `known` secrets given (tokens minted during the run, the key file's contents…).
 */
export function findLeaks(logs: string | (string | Record<string, unknown>)[], known: string[] = []): Leak[] {
  const lines = typeof logs === 'string' ? logs.split('\n') : logs.map((l) => (typeof l === 'string' ? l : JSON.stringify(l)));
  const leaks: Leak[] = [];
  const short = (s: string): string => (s.length > 16 ? `${s.slice(0, 12)}…(${s.length})` : s);
  lines.forEach((text, i) => {
    for (const { kind, re, check } of PATTERNS) {
      for (const m of text.matchAll(re)) if (!check || check(m[0])) leaks.push({ line: i + 1, kind, excerpt: short(m[0]) });
    }
    for (const secret of known) {
      if (secret.length >= 8 && (text.includes(secret) || text.includes(JSON.stringify(secret).slice(1, -1)))) leaks.push({ line: i + 1, kind: 'known-secret', excerpt: short(secret) });
    }
  });
  return leaks;
}
