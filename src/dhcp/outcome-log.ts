// What the data-plane worker tells the main thread about each datagram, packed into one transferable buffer per
// flush: a small code per outcome (so counting costs no strings) and the datagram itself, from which the main
// thread re-derives the full Outcome with the pure respond() only when it needs one (a sighting the budget
// admits, a log line due). Pure.
import { ipv4FromNumber } from '../net/ipv4.ts';
import { macString } from './classify.ts';
import type { DecodeErrorReason } from './codec.ts';
import type { IgnoredReason } from './respond.ts';

/** Malformed for the transport: longer than a receive slot (no DHCP client sends more than one Ethernet frame). */
export type MalformedReason = DecodeErrorReason | 'exception' | 'oversize';

// Records keep every key of the unions, checked by the compiler: a reason added to respond() must be added here.
const IGNORED: Record<IgnoredReason, true> = {
  'not-request': true,
  'bad-hardware-address': true,
  'no-message-type': true,
  'message-type': true,
  'not-pxe': true,
  'no-arch': true,
  'unknown-arch': true,
  'bad-uuid': true,
  'unsupported-arch': true,
  'no-binary': true,
  'relay-not-allowed': true,
  'lease-request': true,
  rejected: true,
  'too-large': true,
};
const MALFORMED: Record<MalformedReason, true> = { short: true, cookie: true, 'truncated-option': true, 'no-end': true, 'bad-overload': true, exception: true, oversize: true };

export type OutcomeCode =
  | { kind: 'reply'; type: 'offer' | 'ack' }
  | { kind: 'ignored'; reason: IgnoredReason }
  | { kind: 'malformed'; reason: MalformedReason };

/** Index = the code on the wire between the threads. */
export const OUTCOME_CODES: readonly OutcomeCode[] = [
  { kind: 'reply', type: 'offer' },
  { kind: 'reply', type: 'ack' },
  ...Object.keys(IGNORED).map((reason) => ({ kind: 'ignored', reason }) as OutcomeCode),
  ...Object.keys(MALFORMED).map((reason) => ({ kind: 'malformed', reason }) as OutcomeCode),
];

const BY_KIND = { reply: new Map<string, number>(), ignored: new Map<string, number>(), malformed: new Map<string, number>() };
OUTCOME_CODES.forEach((c, i) => BY_KIND[c.kind].set(c.kind === 'reply' ? c.type : c.reason, i));

export function outcomeCode(o: OutcomeCode): number {
  return BY_KIND[o.kind].get(o.kind === 'reply' ? o.type : o.reason)!;
}

const HEADER = 12;
const VIA_PROXY = 1;
const HAS_CLIENT = 2;

/**
 * Appends records to a reused buffer; take() copies what was filled into an exact-size buffer to transfer (a
 * fresh large buffer per flush cost page faults here and unmaps in the receiving thread). Layout per record: u16 length, u8 interface, u8 flags, u8 code, u8 reserved, u32 source
 * IPv4, u16 source port, u16 reserved, then the datagram.
 */
export class OutcomeWriter {
  private readonly buf: Buffer;
  private used = 0;
  count = 0;

  constructor(private readonly capacity = 64 * 1024) {
    this.buf = Buffer.allocUnsafeSlow(capacity);
  }

  /** False when the record does not fit: take() and try again. */
  add(iface: number, via: 'dhcp' | 'proxy', code: number, hasClient: boolean, fromAddr: number, fromPort: number, datagram: Buffer): boolean {
    const len = HEADER + datagram.length;
    if (this.used + len > this.capacity) return false;
    const b = this.buf;
    const at = this.used;
    b.writeUInt16LE(len, at);
    b[at + 2] = iface;
    b[at + 3] = (via === 'proxy' ? VIA_PROXY : 0) | (hasClient ? HAS_CLIENT : 0);
    b[at + 4] = code;
    b[at + 5] = 0;
    b.writeUInt32BE(fromAddr >>> 0, at + 6);
    b.writeUInt16BE(fromPort, at + 10);
    b.set(datagram, at + HEADER);
    this.used += len;
    this.count++;
    return true;
  }

  get empty(): boolean {
    return this.used === 0;
  }

  /** The filled bytes as a transferable ArrayBuffer of their own, and their length; the writer starts over. */
  take(): { records: ArrayBuffer; length: number } {
    const records = new ArrayBuffer(this.used);
    this.buf.copy(new Uint8Array(records), 0, 0, this.used);
    const out = { records, length: this.used };
    this.used = 0;
    this.count = 0;
    return out;
  }
}

/**
 * Walks a flushed buffer record by record without allocating: the main thread reads every record's code, and
 * builds the source address or a view of the datagram only for the few it looks at closer.
 */
export class OutcomeReader {
  private readonly b: Buffer;
  private at = 0;
  private len = 0;

  constructor(records: ArrayBuffer, length: number) {
    this.b = Buffer.from(records, 0, length);
  }

  /** Moves to the next record; false at the end (or at a damaged length, which would be a bug). */
  next(): boolean {
    this.at += this.len;
    if (this.at + HEADER > this.b.length) return false;
    this.len = this.b.readUInt16LE(this.at);
    return this.len >= HEADER && this.at + this.len <= this.b.length;
  }

  get iface(): number {
    return this.b[this.at + 2]!;
  }

  get via(): 'dhcp' | 'proxy' {
    return this.b[this.at + 3]! & VIA_PROXY ? 'proxy' : 'dhcp';
  }

  /** Index into OUTCOME_CODES. */
  get code(): number {
    return this.b[this.at + 4]!;
  }

  /** The datagram classified as a client (a sighting is possible). */
  get hasClient(): boolean {
    return (this.b[this.at + 3]! & HAS_CLIENT) !== 0;
  }

  /** The whole flushed buffer, for reading a record's fields in place (see chaddrAt). */
  get bytes(): Buffer {
    return this.b;
  }

  /** Where the record's chaddr starts in `bytes`. */
  get chaddrAt(): number {
    return this.at + HEADER + 28;
  }

  /** chaddr's first six bytes (meaningful when hasClient). */
  mac(): string {
    return macString(this.b, this.at + HEADER + 28);
  }

  from(): { address: string; port: number } {
    return { address: ipv4FromNumber(this.b.readUInt32BE(this.at + 6)), port: this.b.readUInt16BE(this.at + 10) };
  }

  /** A view of the datagram, valid as long as the buffer. */
  datagram(): Buffer {
    return this.b.subarray(this.at + HEADER, this.at + this.len);
  }
}
