// BOOTP/DHCP wire format (RFC 2131 §2, RFC 2132, RFC 3396) and the encapsulated TLV spaces inside options
// 43 (PXE), 175 (iPXE) and 82 (relay agent). Pure: bytes in, plain data out, never throws on input bytes.
import { ipv4FromNumber, ipv4ToNumber } from '../net/ipv4.ts';

export const MAGIC_COOKIE = 0x63825363;
export const HEADER_LEN = 236;
const OPTIONS_START = HEADER_LEN + 4;
/** The most a PXE client reads: 1500 − IP − UDP (EDK2 and iPXE ignore anything longer). */
export const MAX_REPLY = 1472;
/** The longest request read: a DHCP message never spans more than one Ethernet frame; longer ones are oversize. */
export const MAX_REQUEST = 2048;
/** BOOTP's minimum message; old ROMs drop shorter replies. */
export const MIN_REPLY = 300;

export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  VENDOR: 43,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  MAX_SIZE: 57,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77,
  RELAY_AGENT: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  IPXE_ENCAP: 175,
  END: 255,
} as const;

export const MessageType = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** All 16 bytes of the field; the hardware address is the first `hlen`. */
  chaddr: Buffer;
  /** NUL-terminated text of the field, or '' when it carried options (overload). */
  sname: string;
  file: string;
  /**
   * Options in first-seen order. Repeated instances of one code are joined (RFC 3396), wherever they were:
   * options field first, then `file`, then `sname` when option 52 says so.
   */
  options: Map<number, Buffer>;
}

export type DecodeErrorReason = 'short' | 'cookie' | 'truncated-option' | 'no-end' | 'bad-overload';
export interface DecodeError {
  reason: DecodeErrorReason;
  detail: string;
}
export type Decoded = { ok: true; packet: DhcpPacket } | { ok: false; error: DecodeError };

// Most addresses in a request are unset, and the rest repeat (a relay's giaddr on every packet it forwards): the
// last one is kept so a storm does not build the same string over and over.
let lastIp = 0;
let lastIpText = '0.0.0.0';
function ip(buf: Buffer, at: number): string {
  const n = buf.readUInt32BE(at);
  if (n === 0) return '0.0.0.0';
  if (n !== lastIp) {
    lastIp = n;
    lastIpText = ipv4FromNumber(n);
  }
  return lastIpText;
}

/** The NUL-terminated text of the header field buf[start, end). */
function cstring(buf: Buffer, start: number, end: number): string {
  let nul = start;
  while (nul < end && buf[nul] !== 0) nul++;
  return nul === start ? '' : buf.toString('latin1', start, nul);
}

/**
 * Walks the TLV area buf[start, end), handing each instance to `put` in order. With `padEnd`, code 0 is a
 * one-byte pad and 255 ends the area (DHCP options, PXE 43 and iPXE 175 sub-options); without it every code has
 * a length (option 82 sub-options). Returns why not when a length runs past the area or a required END is missing.
 */
function scanTlv(buf: Buffer, start: number, end: number, padEnd: boolean, requireEnd: boolean, put: (code: number, value: Buffer) => void): DecodeError | undefined {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (padEnd && code === Opt.PAD) {
      i++;
      continue;
    }
    if (padEnd && code === Opt.END) return undefined;
    if (i + 1 >= end) return { reason: 'truncated-option', detail: `option ${code} has no length byte` };
    const len = buf[i + 1]!;
    if (i + 2 + len > end) return { reason: 'truncated-option', detail: `option ${code} claims ${len} bytes, ${end - i - 2} left` };
    put(code, buf.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  if (padEnd && requireEnd) return { reason: 'no-end', detail: 'options end without the END (255) marker' };
  return undefined;
}

/** One TLV area as a list of instances in order (see scanTlv). */
export function readTlv(area: Buffer, opts: { padEnd: boolean; requireEnd: boolean }): { ok: true; items: [number, Buffer][] } | { ok: false; error: DecodeError } {
  const items: [number, Buffer][] = [];
  const error = scanTlv(area, 0, area.length, opts.padEnd, opts.requireEnd, (code, value) => items.push([code, value]));
  return error ? { ok: false, error } : { ok: true, items };
}

/** Reads buf[start, end) into `into`, joining repeated codes (RFC 3396) and keeping first-seen order; `skip` is left out. */
function readJoined(buf: Buffer, start: number, end: number, requireEnd: boolean, into: Map<number, Buffer>, skip = -1): DecodeError | undefined {
  return scanTlv(buf, start, end, true, requireEnd, (code, value) => {
    if (code === skip) return;
    const prev = into.get(code);
    into.set(code, prev ? Buffer.concat([prev, value]) : value);
  });
}

export function decode(buf: Buffer): Decoded {
  if (buf.length < OPTIONS_START) return { ok: false, error: { reason: 'short', detail: `${buf.length} bytes, a DHCP message has at least ${OPTIONS_START}` } };
  if (buf.readUInt32BE(HEADER_LEN) !== MAGIC_COOKIE) return { ok: false, error: { reason: 'cookie', detail: 'no DHCP magic cookie (plain BOOTP is not served)' } };
  const options = new Map<number, Buffer>();
  const main = readJoined(buf, OPTIONS_START, buf.length, true, options);
  if (main) return { ok: false, error: main };
  let sname = cstring(buf, 44, 108);
  let file = cstring(buf, 108, HEADER_LEN);
  const overload = options.get(Opt.OVERLOAD);
  if (overload) {
    const v = overload.length === 1 ? overload[0]! : 0;
    if (v < 1 || v > 3) return { ok: false, error: { reason: 'bad-overload', detail: `option 52 must be one byte 1..3` } };
    // RFC 3396 §5: options field, then file, then sname. Option 52 inside those fields is meaningless; drop it.
    for (const [bit, start, end] of [[1, 108, HEADER_LEN], [2, 44, 108]] as const) {
      if ((v & bit) === 0) continue;
      const more = readJoined(buf, start, end, true, options, Opt.OVERLOAD);
      if (more) return { ok: false, error: more };
      if (bit === 1) file = '';
      else sname = '';
    }
  }
  return {
    ok: true,
    packet: {
      op: buf[0]!,
      htype: buf[1]!,
      hlen: buf[2]!,
      hops: buf[3]!,
      xid: buf.readUInt32BE(4),
      secs: buf.readUInt16BE(8),
      flags: buf.readUInt16BE(10),
      ciaddr: ip(buf, 12),
      yiaddr: ip(buf, 16),
      siaddr: ip(buf, 20),
      giaddr: ip(buf, 24),
      chaddr: Buffer.from(buf.subarray(28, 44)),
      sname,
      file,
      options,
    },
  };
}

function writeIp(buf: Buffer, at: number, addr: string): void {
  if (addr !== '0.0.0.0') buf.writeUInt32BE(ipv4ToNumber(addr), at); // else: the buffer is zeroed
}

/** Bytes a TLV area takes once long values are split into 255-byte instances (RFC 3396), plus END. */
function tlvLength(items: Iterable<[number, Buffer]>): number {
  let n = 1;
  for (const [, v] of items) n += v.length === 0 ? 2 : v.length + 2 * Math.ceil(v.length / 255);
  return n;
}

/** Writes a TLV area and its END at `at`; returns the offset after END. One allocation per packet, done by the caller. */
function writeTlv(out: Buffer, at: number, items: Iterable<[number, Buffer]>): number {
  for (const [code, v] of items) {
    if (v.length === 0) {
      out[at++] = code;
      out[at++] = 0;
      continue;
    }
    for (let i = 0; i < v.length; i += 255) {
      const n = Math.min(255, v.length - i);
      out[at++] = code;
      out[at++] = n;
      // Values are a few bytes: a loop beats Buffer#copy, which builds a view per partial copy.
      for (let k = 0; k < n; k++) out[at + k] = v[i + k]!;
      at += n;
    }
  }
  out[at++] = Opt.END;
  return at;
}

/**
 * Encodes a packet with every option in the options field (heph never needs overload when sending). `sname` and
 * `file` are written NUL-terminated, as dnsmasq does for buggy PXE ROMs; a value that would not fit is an error
 * for the caller, never silently cut. Pads to the BOOTP minimum of 300 bytes. With `into` (a send slot), a packet
 * that fits is written there and the result is a view of it: no allocation per reply.
 */
export function encode(p: DhcpPacket, into?: Buffer): Buffer {
  if (p.sname.length > 63 || p.file.length > 127) throw new RangeError('sname/file too long for the BOOTP header');
  const len = Math.max(MIN_REPLY, OPTIONS_START + tlvLength(p.options.entries()));
  const out = into && len <= into.length ? into.fill(0, 0, len).subarray(0, len) : Buffer.alloc(len);
  out[0] = p.op;
  out[1] = p.htype;
  out[2] = p.hlen;
  out[3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, 4);
  out.writeUInt16BE(p.secs & 0xffff, 8);
  out.writeUInt16BE(p.flags & 0xffff, 10);
  writeIp(out, 12, p.ciaddr);
  writeIp(out, 16, p.yiaddr);
  writeIp(out, 20, p.siaddr);
  writeIp(out, 24, p.giaddr);
  p.chaddr.copy(out, 28, 0, Math.min(16, p.chaddr.length));
  out.write(p.sname, 44, 'latin1');
  out.write(p.file, 108, 'latin1');
  out.writeUInt32BE(MAGIC_COOKIE, HEADER_LEN);
  writeTlv(out, OPTIONS_START, p.options.entries());
  return out;
}

/** Encapsulated options with pad/END (43, 175): decoded into a map, repeated codes joined. */
export function decodeSubOptions(value: Buffer): Map<number, Buffer> | undefined {
  const m = new Map<number, Buffer>();
  return readJoined(value, 0, value.length, false, m) ? undefined : m;
}

/** Encapsulated options with an END marker (PXE clients expect it in option 43, dnsmasq sends it). */
export function encodeSubOptions(items: [number, Buffer][]): Buffer {
  const out = Buffer.alloc(tlvLength(items));
  writeTlv(out, 0, items);
  return out;
}

/** Option 82 (RFC 3046): sub-options without pad or END. */
export function decodeRelayAgent(value: Buffer): [number, Buffer][] | undefined {
  const r = readTlv(value, { padEnd: false, requireEnd: false });
  return r.ok ? r.items : undefined;
}
