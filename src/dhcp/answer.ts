// What to tell a PXE client, and the reply packet that says it. Pure.
import type { FirmwareArch } from '../ipxe/binaries.ts';
import type { Client } from './classify.ts';
import { encodeHead, encodeSubOptions, MAX_REPLY, Opt, optionLength, paddedLength, writeIp, writeOption, type RequestFields } from './codec.ts';

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

const UNSUPPORTED: AnswerResult = { ok: false, reason: 'unsupported-arch' };
const NO_BINARY: AnswerResult = { ok: false, reason: 'no-binary' };

/** Every answer one config can give, built once: per packet, bootAnswer() only picks one (shared, read-only). */
interface Answers {
  ipxe: AnswerResult;
  pxe: Partial<Record<FirmwareArch, AnswerResult>>;
  http: Partial<Record<FirmwareArch, AnswerResult>>;
}

// Keyed by the config object: configs are built once (respondConfig) and never changed afterwards.
const answersByConfig = new WeakMap<AnswerConfig, Answers>();
function answers(cfg: AnswerConfig): Answers {
  let a = answersByConfig.get(cfg);
  if (a) return a;
  const base = `http://${cfg.server}:${cfg.httpPort}`;
  // iPXE already runs: hand it the script, whatever its arch, and never a menu (it would show it).
  a = { ipxe: { ok: true, answer: { file: `${base}/boot.ipxe`, vendorClass: 'PXEClient', option43: [] } }, pxe: {}, http: {} };
  for (const [family, binary] of Object.entries(cfg.binaries) as [FirmwareArch, string | undefined][]) {
    if (!binary) continue;
    // UEFI HTTP Boot pairs a proxy offer only with an IP-literal URL (EDK2 ProxyIpUri), and needs 60 = HTTPClient.
    a.http[family] = { ok: true, answer: { file: `${base}/${binary}`, vendorClass: 'HTTPClient', option43: [] } };
    a.pxe[family] = { ok: true, answer: { file: binary, vendorClass: 'PXEClient', option43: cfg.option43[family] ?? [] } };
  }
  answersByConfig.set(cfg, a);
  return a;
}

/** What to boot; the result is shared between packets and must not be changed. */
export function bootAnswer(c: Client, cfg: AnswerConfig): AnswerResult {
  const a = answers(cfg);
  if (c.firmware === 'ipxe') return a.ipxe;
  const family = c.arch.family;
  if (!family) return UNSUPPORTED;
  return (c.firmware === 'http' ? a.http : a.pxe)[family] ?? NO_BINARY;
}

export interface ReplyInput {
  request: RequestFields;
  client: Client;
  answer: BootAnswer;
  server: string;
  /** OFFER (2) to a DISCOVER on port 67, ACK (5) to a boot-server REQUEST on 4011. */
  type: 2 | 5;
  /** Where to write the reply (a send slot of at least MAX_REPLY bytes); the result is then a view of it. */
  into?: Buffer | undefined;
}

/**
 * What every reply with one answer from one server shares, encoded once: the header up to the request's own
 * fields (patched in per reply), and the options that do not depend on the client, in wire order. The client's
 * options (97, the ACK's 43 with 71, 82) follow them, so the order on the wire is 53, 54, 60, 66, 67, 97, 43, 82.
 */
interface Prepared {
  server: string;
  offer?: Buffer;
  ack?: Buffer;
  option43?: Buffer;
}
const preparedByAnswer = new WeakMap<BootAnswer, Prepared>();

function prepared(answer: BootAnswer, server: string): Prepared {
  let p = preparedByAnswer.get(answer);
  if (p?.server !== server) {
    p = { server };
    if (answer.option43.length > 0) p.option43 = encodeSubOptions(answer.option43);
    preparedByAnswer.set(answer, p);
  }
  return p;
}

function head(p: Prepared, answer: BootAnswer, type: 2 | 5): Buffer {
  const cached = type === 2 ? p.offer : p.ack;
  if (cached) return cached;
  const options = new Map<number, Buffer>([
    [Opt.MESSAGE_TYPE, Buffer.from([type])],
    [Opt.SERVER_ID, Buffer.from(p.server.split('.').map(Number))],
    [Opt.VENDOR_CLASS, Buffer.from(answer.vendorClass)],
    [Opt.TFTP_SERVER, Buffer.from(p.server)],
    [Opt.BOOTFILE, Buffer.from(answer.file)],
  ]);
  const bytes = encodeHead({
    op: 2,
    // htype, hlen, xid, flags, giaddr and chaddr are the request's: patched in per reply.
    htype: 0,
    hlen: 0,
    hops: 0,
    xid: 0,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: p.server,
    giaddr: '0.0.0.0',
    chaddr: Buffer.alloc(16),
    sname: p.server,
    // A URL too long for the 128-byte header still travels in option 67.
    file: Buffer.byteLength(answer.file) <= 127 ? answer.file : '',
    options,
  });
  if (type === 2) p.offer = bytes;
  else p.ack = bytes;
  return bytes;
}

/**
 * The proxy reply: yiaddr 0 (heph never hands out addresses), siaddr = server, sname = server, the boot file in
 * the `file` header AND option 67 (U-Boot and some ROMs read only the header, EDK2 HTTP Boot prefers 67),
 * 54, 60, 66, 97 echoed, 43 where configured, 82 echoed last (RFC 3046). Undefined when it would exceed what the
 * client can read (1472 bytes, or its smaller option 57). Written straight into `into`: the shared start, then
 * the request's fields and the client's options.
 */
export function buildReply({ request, client, answer, server, type, into }: ReplyInput): Buffer | undefined {
  const p = prepared(answer, server);
  const start = head(p, answer, type);
  const uuid = client.uuidOption;
  const vendor = type === 5 && client.bootItem ? encodeSubOptions([...answer.option43, [71, client.bootItem]]) : p.option43;
  const relay = request.giaddr !== '0.0.0.0' ? request.options.get(Opt.RELAY_AGENT) : undefined;
  const end = start.length + (uuid ? optionLength(uuid) : 0) + (vendor ? optionLength(vendor) : 0) + (relay ? optionLength(relay) : 0);
  const len = paddedLength(end);
  if (len > Math.min(MAX_REPLY, client.maxSize ?? MAX_REPLY)) return undefined;
  const out = into && len <= into.length ? into.subarray(0, len) : Buffer.alloc(len);
  out.set(start);
  out[1] = request.htype;
  out[2] = request.hlen;
  out.writeUInt32BE(request.xid >>> 0, 4);
  // A client without an address can only hear a broadcast; dnsmasq sets the flag on proxy offers too.
  out.writeUInt16BE((type === 2 ? request.flags | 0x8000 : request.flags) & 0xffff, 10);
  writeIp(out, 24, request.giaddr);
  const chaddr = request.chaddr;
  for (let i = 0, n = Math.min(16, chaddr.length); i < n; i++) out[28 + i] = chaddr[i]!;
  let at = start.length;
  if (uuid) at = writeOption(out, at, Opt.CLIENT_UUID, uuid);
  if (vendor) at = writeOption(out, at, Opt.VENDOR, vendor);
  if (relay) at = writeOption(out, at, Opt.RELAY_AGENT, relay);
  out[at++] = Opt.END;
  if (at < len) out.fill(0, at, len);
  return out;
}

/** Settings' hex strings → sub-option lists, done once at startup. */
export function parseOption43(s: Record<string, Record<string, string>>): Partial<Record<FirmwareArch, [number, Buffer][]>> {
  const out: Partial<Record<FirmwareArch, [number, Buffer][]>> = {};
  for (const [family, subs] of Object.entries(s)) {
    out[family as FirmwareArch] = Object.entries(subs).map(([code, hex]) => [Number(code), Buffer.from(hex.replaceAll(':', ''), 'hex')]);
  }
  return out;
}
