// Strict validators for what a booting machine claims about itself (the /ipxe query). Every value that reaches the
// inventory, a script or a config passed one of these; anything else is refused (identity) or dropped (descriptive).

/** Lowercase colon form. Accepts iPXE's `${mac}` (aa:bb:…) and `${mac:hexhyp}` (aa-bb-…) spellings. */
export function parseMac(raw: string): string | undefined {
  const m = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(raw);
  if (!m) return undefined;
  const mac = [m[1], m[3], m[4], m[5], m[6], m[7]].join(':').toLowerCase();
  // All-zero and broadcast are not a NIC; a multicast bit means a forged or broken claim.
  if (mac === '00:00:00:00:00:00' || mac === 'ff:ff:ff:ff:ff:ff') return undefined;
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) return undefined;
  return mac;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type UuidClaim = { ok: true; uuid: string } | { ok: true; uuid: undefined; placeholder: true } | { ok: false };

/**
 * Canonical lowercase, as iPXE prints ${uuid}. All-zero and all-F are what firmware reports when it has no UUID
 * (SMBIOS "not present"): not an error, but never an identity either — the machine is then known by its MAC.
 */
export function parseUuid(raw: string): UuidClaim {
  if (!UUID.test(raw)) return { ok: false };
  const uuid = raw.toLowerCase();
  if (/^[0-]+$/.test(uuid) || /^[f-]+$/.test(uuid)) return { ok: true, uuid: undefined, placeholder: true };
  return { ok: true, uuid };
}

/** RFC 1123 host or FQDN, lowercase. */
export function parseHostname(raw: string): string | undefined {
  const h = raw.toLowerCase();
  if (h.length > 253) return undefined;
  const label = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
  return h.split('.').every((l) => label.test(l)) ? h : undefined;
}

// SMBIOS strings: printable ASCII without anything a script, URL, YAML or shell gives meaning to.
const SMBIOS_TEXT = /^[A-Za-z0-9][A-Za-z0-9 ._,()+/-]{0,63}$/;
// Strings vendors leave in SMBIOS when they did not fill it in: not identity, not worth storing.
const FILLER = /^(?:to be filled by o\.?e\.?m\.?|default string|not specified|not applicable|none|n\/a|system serial number|0+|x+|1234567890|0123456789)$/i;

export function parseSmbiosText(raw: string): string | undefined {
  const v = raw.trim();
  if (!SMBIOS_TEXT.test(v) || FILLER.test(v)) return undefined;
  return v;
}

/** iPXE ${buildarch} values. */
export const BUILD_ARCHES = ['i386', 'x86_64', 'arm32', 'arm64', 'riscv32', 'riscv64', 'loong64'] as const;
export type BuildArch = (typeof BUILD_ARCHES)[number];

export function parseBuildArch(raw: string): BuildArch | undefined {
  return (BUILD_ARCHES as readonly string[]).includes(raw) ? (raw as BuildArch) : undefined;
}

export function parsePlatform(raw: string): 'pcbios' | 'efi' | undefined {
  return raw === 'pcbios' || raw === 'efi' ? raw : undefined;
}

/** Talos release arch names (amd64, arm64) for an iPXE/inventory arch; undefined when Talos ships none. */
export function talosArch(arch: string | null | undefined): 'amd64' | 'arm64' | undefined {
  switch (arch) {
    case 'x86_64':
    case 'amd64':
    case 'i386': // a 32-bit iPXE build (undionly.kpxe) on a 64-bit box still boots a 64-bit kernel
      return 'amd64';
    case 'arm64':
    case 'aarch64':
      return 'arm64';
    default:
      return undefined;
  }
}

export interface BootClaims {
  mac?: string;
  uuid?: string;
  serial?: string;
  hostname?: string;
  arch?: BuildArch;
  platform?: 'pcbios' | 'efi';
  manufacturer?: string;
  product?: string;
}

/** `field` is one of the known parameter names or `query`: never a request string (it is echoed and counted). */
export type ClaimsResult = { ok: true; claims: BootClaims; dropped: string[] } | { ok: false; field: (typeof KNOWN)[number] | 'query'; reason: string };

const KNOWN = ['mac', 'uuid', 'serial', 'hostname', 'arch', 'platform', 'manufacturer', 'product'] as const;
const MAX_VALUE = 256;

/**
 * Reads the /ipxe query. Malformed identity (mac, uuid) is refused, because a script or config built on a wrong
 * identity is worse than none, and so is a hostname with characters no host name has (an injection attempt).
 * Descriptive SMBIOS fields, unknown arch/platform values and merely non-RFC host names are dropped (firmware and
 * DHCP servers fill them with junk) and named in `dropped`. Empty values mean "iPXE had nothing".
 * Repeated or unknown parameters are refused: a real chain script never sends them.
 */
export function parseBootClaims(query: Record<string, unknown>): ClaimsResult {
  const claims: BootClaims = {};
  const dropped: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (!(KNOWN as readonly string[]).includes(k)) return { ok: false, field: 'query', reason: 'unknown parameter' };
    const field = k as (typeof KNOWN)[number];
    if (typeof v !== 'string') return { ok: false, field, reason: 'repeated parameter' };
    if (v.length > MAX_VALUE) return { ok: false, field, reason: 'value too long' };
  }
  const get = (k: (typeof KNOWN)[number]): string => (query[k] as string | undefined) ?? '';
  if (get('mac')) {
    const mac = parseMac(get('mac'));
    if (!mac) return { ok: false, field: 'mac', reason: 'not a unicast MAC address' };
    claims.mac = mac;
  }
  if (get('uuid')) {
    const u = parseUuid(get('uuid'));
    if (!u.ok) return { ok: false, field: 'uuid', reason: 'not a UUID' };
    if (u.uuid) claims.uuid = u.uuid;
    else dropped.push('uuid');
  }
  if (get('hostname')) {
    const h = parseHostname(get('hostname'));
    // A DHCP server may hand out names like my_host: not usable, but no reason to keep a machine from booting.
    // Anything beyond that charset (newlines, `$`, `#`, spaces …) is an attempt, and refused.
    if (h) claims.hostname = h;
    else if (/^[A-Za-z0-9._-]{1,253}$/.test(get('hostname'))) dropped.push('hostname');
    else return { ok: false, field: 'hostname', reason: 'not a host name' };
  }
  if (!claims.mac && !claims.uuid) return { ok: false, field: 'mac', reason: 'neither a MAC address nor a UUID identifies the machine' };
  const optional = (k: 'serial' | 'manufacturer' | 'product' | 'arch' | 'platform', parse: (raw: string) => string | undefined): void => {
    const raw = get(k);
    if (!raw) return;
    const v = parse(raw);
    if (v === undefined) dropped.push(k);
    else (claims as Record<string, string>)[k] = v;
  };
  optional('serial', parseSmbiosText);
  optional('manufacturer', parseSmbiosText);
  optional('product', parseSmbiosText);
  optional('arch', parseBuildArch);
  optional('platform', parsePlatform);
  return { ok: true, claims, dropped };
}

/** The peer's IPv4 address as heph records it (dual-stack sockets report ::ffff:a.b.c.d). */
export function peerAddress(raw: string | undefined): string {
  if (!raw) return '';
  return raw.startsWith('::ffff:') && raw.includes('.') ? raw.slice(7) : raw;
}
