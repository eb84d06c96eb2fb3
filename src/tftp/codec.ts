// TFTP packets (RFC 1350 §5, RFC 2347). Pure: bytes in, plain data out, and the reverse. Every length is checked
// against the datagram; nothing here throws on input from the network.

export const Op = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

export const ErrorCode = {
  UNDEFINED: 0,
  NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

/** RFC 2347 limits a request to 512 octets. */
export const MAX_REQUEST = 512;
/** Options read from one request; more are ignored, so a request cannot buy unbounded work. */
const MAX_OPTIONS = 16;

export type Request = {
  op: typeof Op.RRQ | typeof Op.WRQ;
  filename: string;
  mode: string;
  /** Lower-cased names, first occurrence wins (later duplicates are dropped), values as sent. */
  options: Map<string, string>;
};

export type Packet =
  | Request
  | { op: typeof Op.DATA; block: number; data: Buffer }
  | { op: typeof Op.ACK; block: number }
  | { op: typeof Op.ERROR; code: number; message: string }
  | { op: typeof Op.OACK; options: Map<string, string> };

export type Malformed = { op: 'malformed'; why: 'short' | 'too-long' | 'unknown-opcode' | 'unterminated' | 'no-mode'; opcode?: number };

export function decode(buf: Buffer): Packet | Malformed {
  if (buf.length < 4) return { op: 'malformed', why: 'short', ...(buf.length >= 2 ? { opcode: buf.readUInt16BE(0) } : {}) };
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case Op.RRQ:
    case Op.WRQ:
      return decodeRequest(buf, opcode);
    case Op.DATA:
      return { op: Op.DATA, block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Op.ACK:
      return { op: Op.ACK, block: buf.readUInt16BE(2) };
    case Op.ERROR: {
      const end = buf.indexOf(0, 4);
      // A missing NUL is tolerated (CVE-2019-11365 was about trusting it): the message is what is there.
      return { op: Op.ERROR, code: buf.readUInt16BE(2), message: printable(buf.subarray(4, end < 0 ? buf.length : end)) };
    }
    case Op.OACK: {
      const strings = cStrings(buf, 2);
      if (!strings) return { op: 'malformed', why: 'unterminated', opcode };
      return { op: Op.OACK, options: pairs(strings) };
    }
    default:
      return { op: 'malformed', why: 'unknown-opcode', opcode };
  }
}

function decodeRequest(buf: Buffer, opcode: typeof Op.RRQ | typeof Op.WRQ): Request | Malformed {
  if (buf.length > MAX_REQUEST) return { op: 'malformed', why: 'too-long', opcode };
  const strings = cStrings(buf, 2);
  if (!strings) return { op: 'malformed', why: 'unterminated', opcode };
  const [filename, mode, ...rest] = strings;
  if (filename === undefined || mode === undefined || mode === '') return { op: 'malformed', why: 'no-mode', opcode };
  return { op: opcode, filename, mode: mode.toLowerCase(), options: pairs(rest) };
}

/** NUL-terminated latin1 strings from `at` to the end; undefined when the last one has no NUL. */
function cStrings(buf: Buffer, at: number): string[] | undefined {
  const out: string[] = [];
  while (at < buf.length) {
    const end = buf.indexOf(0, at);
    if (end < 0) return undefined;
    out.push(buf.toString('latin1', at, end));
    at = end + 1;
  }
  return out;
}

function pairs(strings: string[]): Map<string, string> {
  const out = new Map<string, string>();
  // An odd trailing name (some clients pad with NULs) has no value and is ignored.
  for (let i = 0; i + 1 < strings.length && out.size < MAX_OPTIONS; i += 2) {
    const name = strings[i]!.toLowerCase();
    if (name !== '' && !out.has(name)) out.set(name, strings[i + 1]!);
  }
  return out;
}

/** For logs: client-supplied text, truncated and with control and non-ASCII bytes escaped. */
export function printable(b: Buffer | string, max = 128): string {
  const s = typeof b === 'string' ? b : b.toString('latin1');
  const escaped = s.slice(0, max).replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return s.length > max ? `${escaped}…` : escaped;
}

/** The 4-byte header of a DATA packet; the payload is sent alongside it without copying. */
export function dataHeader(block: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt16BE(Op.DATA, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
}

export function encodeAck(block: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt16BE(Op.ACK, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
}

export function encodeError(code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'latin1');
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt16BE(Op.ERROR, 0);
  b.writeUInt16BE(code, 2);
  msg.copy(b, 4);
  return b;
}

export function encodeOack(options: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, Op.OACK])];
  for (const [k, v] of options) parts.push(Buffer.from(`${k}\0${v}\0`, 'latin1'));
  return Buffer.concat(parts);
}

export function encodeRequest(op: typeof Op.RRQ | typeof Op.WRQ, filename: string, mode: string, options: ReadonlyArray<readonly [string, string]> = []): Buffer {
  const parts: Buffer[] = [Buffer.from([0, op]), Buffer.from(`${filename}\0${mode}\0`, 'latin1')];
  for (const [k, v] of options) parts.push(Buffer.from(`${k}\0${v}\0`, 'latin1'));
  return Buffer.concat(parts);
}
