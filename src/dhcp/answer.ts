// What to tell a PXE client, and the reply packet that says it. Pure.
import type { FirmwareArch } from '../ipxe/binaries.ts';
import type { Client } from './classify.ts';
import { encode, encodeSubOptions, MAX_REPLY, Opt, type DhcpPacket } from './codec.ts';

export interface AnswerConfig {
  /** The server's IPv4 address as machines reach it (siaddr, option 54, URLs). */
  server: string;
  httpPort: number;
  /** iPXE binary names per family (from the ipxe allowlist); a family without one is not booted. */
  binaries: Partial<Record<FirmwareArch, string>>;
  /** Option 43 sub-options per family, for PXE ROMs only. */
  option43: Partial<Record<FirmwareArch, [number, Buffer][]>>;
}

export interface BootAnswer {
  /** TFTP file name, or an http:// URL. */
  file: string;
  vendorClass: 'PXEClient' | 'HTTPClient';
  option43: [number, Buffer][];
}

export type AnswerResult = { ok: true; answer: BootAnswer } | { ok: false; reason: 'unsupported-arch' | 'no-binary' };

export function bootAnswer(c: Client, cfg: AnswerConfig): AnswerResult {
  const base = `http://${cfg.server}:${cfg.httpPort}`;
  // iPXE already runs: hand it the script, whatever its arch, and never a menu (it would show it).
  if (c.firmware === 'ipxe') return { ok: true, answer: { file: `${base}/boot.ipxe`, vendorClass: 'PXEClient', option43: [] } };
  const family = c.arch.family;
  if (!family) return { ok: false, reason: 'unsupported-arch' };
  const binary = cfg.binaries[family];
  if (!binary) return { ok: false, reason: 'no-binary' };
  // UEFI HTTP Boot pairs a proxy offer only with an IP-literal URL (EDK2 ProxyIpUri), and needs 60 = HTTPClient.
  if (c.firmware === 'http') return { ok: true, answer: { file: `${base}/${binary}`, vendorClass: 'HTTPClient', option43: [] } };
  return { ok: true, answer: { file: binary, vendorClass: 'PXEClient', option43: cfg.option43[family] ?? [] } };
}

export interface ReplyInput {
  request: DhcpPacket;
  client: Client;
  answer: BootAnswer;
  server: string;
  /** OFFER (2) to a DISCOVER on port 67, ACK (5) to a boot-server REQUEST on 4011. */
  type: 2 | 5;
  /** Where to write the reply (a send slot of at least MAX_REPLY bytes); the result is then a view of it. */
  into?: Buffer | undefined;
}

/**
 * The proxy reply: yiaddr 0 (heph never hands out addresses), siaddr = server, sname = server, the boot file in
 * the `file` header AND option 67 (U-Boot and some ROMs read only the header, EDK2 HTTP Boot prefers 67),
 * 54, 60, 66, 97 echoed, 43 where configured, 82 echoed last (RFC 3046). Undefined when it would exceed what the
 * client can read (1472 bytes, or its smaller option 57).
 */
export function buildReply({ request, client, answer, server, type, into }: ReplyInput): Buffer | undefined {
  const options = new Map<number, Buffer>();
  options.set(Opt.MESSAGE_TYPE, type === 2 ? OFFER : ACK);
  options.set(Opt.SERVER_ID, encoded(server, ipBytes));
  options.set(Opt.VENDOR_CLASS, encoded(answer.vendorClass, Buffer.from));
  options.set(Opt.TFTP_SERVER, encoded(server, Buffer.from));
  options.set(Opt.BOOTFILE, encoded(answer.file, Buffer.from));
  if (client.uuidOption) options.set(Opt.CLIENT_UUID, client.uuidOption);
  if (type === 5 && client.bootItem) options.set(Opt.VENDOR, encodeSubOptions([...answer.option43, [71, client.bootItem]]));
  else if (answer.option43.length > 0) options.set(Opt.VENDOR, encodedOption43(answer.option43));
  const relay = request.options.get(Opt.RELAY_AGENT);
  if (request.giaddr !== '0.0.0.0' && relay) options.set(Opt.RELAY_AGENT, relay);
  const fileFits = Buffer.byteLength(answer.file) <= 127;
  const reply: DhcpPacket = {
    op: 2,
    htype: request.htype,
    hlen: request.hlen,
    hops: 0,
    xid: request.xid,
    secs: 0,
    // A client without an address can only hear a broadcast; dnsmasq sets the flag on proxy offers too.
    flags: type === 2 ? request.flags | 0x8000 : request.flags,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: server,
    giaddr: request.giaddr,
    chaddr: request.chaddr,
    sname: server,
    // A URL too long for the 128-byte header still travels in option 67.
    file: fileFits ? answer.file : '',
    options,
  };
  const bytes = encode(reply, into);
  return bytes.length <= Math.min(MAX_REPLY, client.maxSize ?? MAX_REPLY) ? bytes : undefined;
}

const OFFER = Buffer.from([2]);
const ACK = Buffer.from([5]);

// The few distinct strings a server sends (its address, file names, URLs) encoded once, not per packet. Bounded:
// the keys come from settings, never from clients.
const textCache = new Map<string, Buffer>();
const ipCache = new Map<string, Buffer>();
function encoded(s: string, enc: (s: string) => Buffer): Buffer {
  const cache = enc === ipBytes ? ipCache : textCache;
  let b = cache.get(s);
  if (!b) {
    if (cache.size > 1024) cache.clear();
    b = enc(s);
    cache.set(s, b);
  }
  return b;
}

const option43Cache = new WeakMap<[number, Buffer][], Buffer>();
function encodedOption43(sub: [number, Buffer][]): Buffer {
  let b = option43Cache.get(sub);
  if (!b) {
    b = encodeSubOptions(sub);
    option43Cache.set(sub, b);
  }
  return b;
}

function ipBytes(addr: string): Buffer {
  return Buffer.from(addr.split('.').map(Number));
}

/** Settings' hex strings → sub-option lists, done once at startup. */
export function parseOption43(s: Record<string, Record<string, string>>): Partial<Record<FirmwareArch, [number, Buffer][]>> {
  const out: Partial<Record<FirmwareArch, [number, Buffer][]>> = {};
  for (const [family, subs] of Object.entries(s)) {
    out[family as FirmwareArch] = Object.entries(subs).map(([code, hex]) => [Number(code), Buffer.from(hex.replaceAll(':', ''), 'hex')]);
  }
  return out;
}
