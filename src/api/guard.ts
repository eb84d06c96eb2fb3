// Pure checks for every request on the admin listener: DNS rebinding (Host) and cross-site requests
// (Origin, Sec-Fetch-Site). They return a refusal or undefined.

export interface Refusal {
  status: number;
  code: string;
  message: string;
}

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

/** Host names the admin listener answers to: loopback names, the listen address if specific, and the setting. */
export function allowedHosts(listen: string, extra: readonly string[]): Set<string> {
  const out = new Set(LOOPBACK);
  if (listen !== '0.0.0.0') out.add(listen);
  for (const h of extra) out.add(h.toLowerCase());
  return out;
}

/** The host part of a Host header ("a.b:9080" → "a.b", "[::1]:9080" → "[::1]"), lowercased. */
export function hostOf(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

export function checkHost(header: string | undefined, allowed: Set<string>): Refusal | undefined {
  if (header && allowed.has(hostOf(header))) return undefined;
  return { status: 421, code: 'misdirected', message: `this server does not answer to host ${JSON.stringify(header ?? '')}; add it to api.hosts if it is meant to` };
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface OriginFacts {
  method: string;
  host: string;
  origin?: string | undefined;
  fetchSite?: string | undefined;
  fetchMode?: string | undefined;
  /** The path is a page a person may open from a link (not the API). */
  page: boolean;
}

/**
 * Fetch-metadata resource isolation plus an Origin check. Browsers send both on every request that matters;
 * tools like curl send neither and are judged by their token alone (they cannot be driven cross-site).
 */
export function checkOrigin(f: OriginFacts): Refusal | undefined {
  const refuse = (why: string): Refusal => ({ status: 403, code: 'cross_site', message: `cross-site request refused: ${why}` });
  if (f.origin !== undefined && f.origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(f.origin).host.toLowerCase();
    } catch {
      return refuse('unreadable Origin header');
    }
    if (originHost !== f.host.toLowerCase()) return refuse(`Origin ${f.origin} is not this server`);
  } else if (f.origin === 'null' && !SAFE.has(f.method)) {
    return refuse('opaque Origin');
  }
  const site = f.fetchSite;
  if (site === undefined || site === 'same-origin' || site === 'none') return undefined;
  // A link from elsewhere may open a page (the page then loads its data same-origin), never touch the API.
  if (f.page && f.method === 'GET' && f.fetchMode === 'navigate') return undefined;
  return refuse(`Sec-Fetch-Site is ${site}`);
}
