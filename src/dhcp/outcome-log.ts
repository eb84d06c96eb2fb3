// What the data-plane worker tells the main thread about each datagram, packed into one transferable buffer per
// flush: a small code per outcome (so counting costs no strings) and the datagram itself, from which the main
// thread re-derives the full Outcome with the pure respond() only when it needs one (a sighting the budget
// admits, a log line due). Pure.
import { ipv4FromNumber } from '../net/ipv4.ts';
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

/** One datagram's record as the main thread reads it. `datagram` is a view into the flushed buffer. */
export interface OutcomeRecord {
  iface: number;
  via: 'dhcp' | 'proxy';
  code: number;
  /** The datagram classified as a client (a sighting is possible). */
  hasClient: boolean;
  from: { address: string; port: number };
  datagram: Buffer;
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
    datagram.copy(b, at + HEADER);
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

export function* readOutcomes(records: ArrayBuffer, length: number): Generator<OutcomeRecord> {
  const b = Buffer.from(records, 0, length);
  let at = 0;
  while (at + HEADER <= length) {
    const len = b.readUInt16LE(at);
    if (len < HEADER || at + len > length) return;
    const flags = b[at + 3]!;
    yield {
      iface: b[at + 2]!,
      via: flags & VIA_PROXY ? 'proxy' : 'dhcp',
      code: b[at + 4]!,
      hasClient: (flags & HAS_CLIENT) !== 0,
      from: { address: ipv4FromNumber(b.readUInt32BE(at + 6)), port: b.readUInt16BE(at + 10) },
      datagram: b.subarray(at + HEADER, at + len),
    };
    at += len;
  }
}
