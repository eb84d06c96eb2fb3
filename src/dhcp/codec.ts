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
export type Decoded = { ok: true; packet: DhcpPacket & { options: OptionMap } } | { ok: false; error: DecodeError };

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
 * Walks the TLV area buf[start, end), handing each instance's code and value position to `put` in order. With
 * `padEnd`, code 0 is a one-byte pad and 255 ends the area (DHCP options, PXE 43 and iPXE 175 sub-options);
 * without it every code has a length (option 82 sub-options). Returns why not when a length runs past the area or
 * a required END is missing.
 */
function scanTlv(buf: Buffer, start: number, end: number, padEnd: boolean, requireEnd: boolean, put: (code: number, at: number, len: number) => void): DecodeError | undefined {
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
    put(code, i + 2, len);
    i += 2 + len;
  }
  if (padEnd && requireEnd) return { reason: 'no-end', detail: 'options end without the END (255) marker' };
  return undefined;
}

/** One TLV area as a list of instances in order (see scanTlv). */
export function readTlv(area: Buffer, opts: { padEnd: boolean; requireEnd: boolean }): { ok: true; items: [number, Buffer][] } | { ok: false; error: DecodeError } {
  const items: [number, Buffer][] = [];
  const error = scanTlv(area, 0, area.length, opts.padEnd, opts.requireEnd, (code, at, len) => items.push([code, area.subarray(at, at + len)]));
  return error ? { ok: false, error } : { ok: true, items };
}

/**
 * What deciding about a request needs of its options: a decoded packet's OptionMap is one, an OptionIndex
 * another. length() and byte() read a value without building a view of it (a view costs as much as the rest of
 * reading a small option).
 */
export interface OptionLookup {
  get(code: number): Buffer | undefined;
  has(code: number): boolean;
  /** The value's length; -1 when absent. */
  length(code: number): number;
  /** Byte i (below length(code)) of the value. */
  byte(code: number, i: number): number;
  /** The value starts with `prefix`. */
  startsWith(code: number, prefix: Uint8Array): boolean;
}

/** v[at, at + b.length) equals b. A loop: for the few bytes compared here, Buffer#compare's native call costs more. */
export function bytesAt(v: Uint8Array, at: number, b: Uint8Array): boolean {
  if (v.length < at + b.length) return false;
  for (let i = 0; i < b.length; i++) if (v[at + i] !== b[i]) return false;
  return true;
}

/** A decoded packet's options: a Map in first-seen order, readable as an OptionLookup. */
export class OptionMap extends Map<number, Buffer> implements OptionLookup {
  length(code: number): number {
    return this.get(code)?.length ?? -1;
  }

  byte(code: number, i: number): number {
    return this.get(code)![i]!;
  }

  startsWith(code: number, prefix: Uint8Array): boolean {
    const v = this.get(code);
    return v !== undefined && bytesAt(v, 0, prefix);
  }
}

/**
 * A TLV area's options, indexed where they lie instead of copied out: the data plane reads every request through
 * one of these, so a request costs no Map and no Buffer per option, only a view per option somebody asks for.
 * Repeated codes are joined (RFC 3396) into a buffer of their own (rare: no firmware seen splits options).
 * Reused request after request; what get() returned stays valid (it is a view of the datagram, or the joined copy).
 */
export class OptionIndex implements OptionLookup {
  private src: Buffer = Buffer.alloc(0);
  private readonly at = new Int32Array(256);
  /** -1: absent. */
  private readonly len = new Int32Array(256).fill(-1);
  private readonly joined: (Buffer | undefined)[] = new Array<Buffer | undefined>(256).fill(undefined);
  /** Codes in first-seen order. */
  private readonly order = new Uint8Array(256);
  private count = 0;
  private skip = -1;
  // Bound once: a closure per scan was a measurable share of the per-packet cost.
  private readonly put = (code: number, at: number, len: number): void => {
    if (code === this.skip) return;
    if (this.len[code]! < 0) {
      this.at[code] = at;
      this.len[code] = len;
      this.order[this.count++] = code;
      return;
    }
    const value = Buffer.concat([this.get(code)!, this.src.subarray(at, at + len)]);
    this.joined[code] = value;
    this.len[code] = value.length;
  };

  /** Forgets every option; later scans index `src`. */
  reset(src: Buffer): void {
    for (let i = 0; i < this.count; i++) {
      const code = this.order[i]!;
      this.len[code] = -1;
      this.joined[code] = undefined;
    }
    this.count = 0;
    this.src = src;
  }

  /** Adds the options of src[start, end) (pad/END form), leaving `skip` out; see scanTlv for the errors. */
  scan(start: number, end: number, requireEnd: boolean, skip = -1): DecodeError | undefined {
    this.skip = skip;
    return scanTlv(this.src, start, end, true, requireEnd, this.put);
  }

  has(code: number): boolean {
    return (this.len[code] ?? -1) >= 0;
  }

  length(code: number): number {
    return this.len[code] ?? -1;
  }

  byte(code: number, i: number): number {
    const j = this.joined[code];
    return j ? j[i]! : this.src[this.at[code]! + i]!;
  }

  startsWith(code: number, prefix: Uint8Array): boolean {
    const len = this.len[code] ?? -1;
    if (len < prefix.length) return false;
    const j = this.joined[code];
    return j ? bytesAt(j, 0, prefix) : bytesAt(this.src, this.at[code]!, prefix);
  }

  get(code: number): Buffer | undefined {
    const len = this.len[code] ?? -1;
    if (len < 0) return undefined;
    return this.joined[code] ?? this.src.subarray(this.at[code]!, this.at[code]! + len);
  }

  /** Every option in first-seen order. */
  forEach(f: (value: Buffer, code: number) => void): void {
    for (let i = 0; i < this.count; i++) f(this.get(this.order[i]!)!, this.order[i]!);
  }
}

/** The request fields classify() and buildReply() read: a decoded DhcpPacket has them, and so has RequestReader. */
export type RequestFields = Pick<DhcpPacket, 'op' | 'htype' | 'hlen' | 'xid' | 'flags' | 'ciaddr' | 'giaddr' | 'chaddr'> & { options: OptionLookup };

/**
 * Reads a request in place, with decode()'s checks and without its copies; reused request after request (the
 * data plane's and decode()'s own). After read(), the fields and options describe that datagram until the next
 * read(); option values are views of it (see OptionIndex), `chaddr` is this reader's own buffer.
 */
export class RequestReader implements RequestFields {
  op = 0;
  htype = 0;
  hlen = 0;
  xid = 0;
  flags = 0;
  ciaddr = '0.0.0.0';
  giaddr = '0.0.0.0';
  readonly chaddr = Buffer.alloc(16);
  readonly options = new OptionIndex();
  /** Option 52's value (0: none): which of file (1) and sname (2) carried options instead of text. */
  overload = 0;

  read(buf: Buffer): DecodeError | undefined {
    const options = this.options;
    options.reset(buf);
    if (buf.length < OPTIONS_START) return { reason: 'short', detail: `${buf.length} bytes, a DHCP message has at least ${OPTIONS_START}` };
    if (buf.readUInt32BE(HEADER_LEN) !== MAGIC_COOKIE) return { reason: 'cookie', detail: 'no DHCP magic cookie (plain BOOTP is not served)' };
    const main = options.scan(OPTIONS_START, buf.length, true);
    if (main) return main;
    this.overload = 0;
    if (options.has(Opt.OVERLOAD)) {
      const v = options.length(Opt.OVERLOAD) === 1 ? options.byte(Opt.OVERLOAD, 0) : 0;
      if (v < 1 || v > 3) return { reason: 'bad-overload', detail: `option 52 must be one byte 1..3` };
      this.overload = v;
      // RFC 3396 §5: options field, then file, then sname. Option 52 inside those fields is meaningless; drop it.
      if (v & 1) {
        const more = options.scan(108, HEADER_LEN, true, Opt.OVERLOAD);
        if (more) return more;
      }
      if (v & 2) {
        const more = options.scan(44, 108, true, Opt.OVERLOAD);
        if (more) return more;
      }
    }
    this.op = buf[0]!;
    this.htype = buf[1]!;
    this.hlen = buf[2]!;
    this.xid = buf.readUInt32BE(4);
    this.flags = buf.readUInt16BE(10);
    this.ciaddr = ip(buf, 12);
    this.giaddr = ip(buf, 24);
    for (let i = 0; i < 16; i++) this.chaddr[i] = buf[28 + i]!;
    return undefined;
  }
}

const reader = new RequestReader();

/** A request as plain data of its own (options are views of `buf`, or joined copies). */
export function decode(buf: Buffer): Decoded {
  const error = reader.read(buf);
  if (error) return { ok: false, error };
  const options = new OptionMap();
  reader.options.forEach((value, code) => options.set(code, value));
  return {
    ok: true,
    packet: {
      op: reader.op,
      htype: reader.htype,
      hlen: reader.hlen,
      hops: buf[3]!,
      xid: reader.xid,
      secs: buf.readUInt16BE(8),
      flags: reader.flags,
      ciaddr: reader.ciaddr,
      yiaddr: ip(buf, 16),
      siaddr: ip(buf, 20),
      giaddr: reader.giaddr,
      chaddr: Buffer.from(reader.chaddr),
      sname: reader.overload & 2 ? '' : cstring(buf, 44, 108),
      file: reader.overload & 1 ? '' : cstring(buf, 108, HEADER_LEN),
      options,
    },
  };
}

export function writeIp(buf: Buffer, at: number, addr: string): void {
  if (addr !== '0.0.0.0') buf.writeUInt32BE(ipv4ToNumber(addr), at); // else: the buffer is zeroed
}

/** Bytes one option takes once a long value is split into 255-byte instances (RFC 3396). */
export function optionLength(v: Buffer): number {
  return v.length === 0 ? 2 : v.length + 2 * Math.ceil(v.length / 255);
}

/** Writes one option at `at`, split into 255-byte instances when long; returns the offset after it. */
export function writeOption(out: Buffer, at: number, code: number, v: Buffer): number {
  if (v.length === 0) {
    out[at++] = code;
    out[at++] = 0;
    return at;
  }
  for (let i = 0; i < v.length; i += 255) {
    const n = Math.min(255, v.length - i);
    out[at++] = code;
    out[at++] = n;
    // Values are a few bytes: a loop beats Buffer#copy, which builds a view per partial copy.
    for (let k = 0; k < n; k++) out[at + k] = v[i + k]!;
    at += n;
  }
  return at;
}

/** Bytes a TLV area takes, END not included. */
function tlvLength(items: Iterable<[number, Buffer]>): number {
  let n = 0;
  for (const [, v] of items) n += optionLength(v);
  return n;
}

/** Writes a TLV area at `at`, END not included; returns the offset after it. One allocation per packet, done by the caller. */
function writeTlv(out: Buffer, at: number, items: Iterable<[number, Buffer]>): number {
  for (const [code, v] of items) at = writeOption(out, at, code, v);
  return at;
}

/** How long a packet whose options end at `end` is on the wire: END, then zeros up to the BOOTP minimum. */
export function paddedLength(end: number): number {
  return Math.max(MIN_REPLY, end + 1);
}

/** The header and cookie into `out`, which is zeroed. */
function writeHeader(out: Buffer, p: DhcpPacket): void {
  if (p.sname.length > 63 || p.file.length > 127) throw new RangeError('sname/file too long for the BOOTP header');
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
}

/**
 * Encodes a packet with every option in the options field (heph never needs overload when sending). `sname` and
 * `file` are written NUL-terminated, as dnsmasq does for buggy PXE ROMs; a value that would not fit is an error
 * for the caller, never silently cut. Pads to the BOOTP minimum of 300 bytes. With `into` (a send slot), a packet
 * that fits is written there and the result is a view of it: no allocation per reply.
 */
export function encode(p: DhcpPacket, into?: Buffer): Buffer {
  const len = paddedLength(OPTIONS_START + tlvLength(p.options.entries()));
  const out = into && len <= into.length ? into.fill(0, 0, len).subarray(0, len) : Buffer.alloc(len);
  writeHeader(out, p);
  out[writeTlv(out, OPTIONS_START, p.options.entries())] = Opt.END;
  return out;
}

/**
 * A packet's bytes up to where its options end: no END, no padding. The fixed start of replies that differ only
 * in header fields patched afterwards and in options written after it (answer.ts keeps one per boot answer).
 */
export function encodeHead(p: DhcpPacket): Buffer {
  const out = Buffer.alloc(OPTIONS_START + tlvLength(p.options.entries()));
  writeHeader(out, p);
  writeTlv(out, OPTIONS_START, p.options.entries());
  return out;
}

const subOptions = new OptionIndex();

/** Encapsulated options with pad/END (43, 175): decoded into a map, repeated codes joined. */
export function decodeSubOptions(value: Buffer): Map<number, Buffer> | undefined {
  subOptions.reset(value);
  if (subOptions.scan(0, value.length, false)) return undefined;
  const m = new Map<number, Buffer>();
  subOptions.forEach((v, code) => m.set(code, v));
  return m;
}

/** Encapsulated options with an END marker (PXE clients expect it in option 43, dnsmasq sends it). */
export function encodeSubOptions(items: [number, Buffer][]): Buffer {
  const out = Buffer.alloc(tlvLength(items) + 1);
  out[writeTlv(out, 0, items)] = Opt.END;
  return out;
}

/** Option 82 (RFC 3046): sub-options without pad or END. */
export function decodeRelayAgent(value: Buffer): [number, Buffer][] | undefined {
  const r = readTlv(value, { padEnd: false, requireEnd: false });
  return r.ok ? r.items : undefined;
}
