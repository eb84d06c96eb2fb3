// What to do with a datagram on the request port (RFC 1350 §4, RFC 2347). Pure: the packet, the allowlist and the
// counts of running transfers in, a decision out; the data plane does the I/O.
import { decode, ErrorCode, Op, printable } from './codec.ts';
import { normaliseName } from './files.ts';
import { negotiate, type Limits, type Negotiated } from './options.ts';

export interface RequestLimits extends Limits {
  maxTransfers: number;
  maxTransfersPerClient: number;
}

export interface RequestState {
  files: ReadonlyMap<string, Buffer>;
  /** A transfer already runs for this (server address, client address, client port). */
  running(key: string): boolean;
  total: number;
  perClient(ip: string): number;
}

export type Decision =
  /** Counted and logged, never answered: a reply to a stray packet would make port 69 a reflector. */
  | { do: 'drop'; kind: string; msg: string; fields: Record<string, unknown> }
  | { do: 'refuse'; kind: string; code: number; message: string; fields: Record<string, unknown> }
  | { do: 'start'; file: string; data: Buffer; n: Negotiated };

export function requestKey(local: string, ip: string, port: number): string {
  return `${local}|${ip}:${port}`;
}

export function decide(msg: Buffer, local: string, ip: string, port: number, state: RequestState, limits: RequestLimits): Decision {
  const p = decode(msg);
  const isRequest = p.op === Op.RRQ || p.op === Op.WRQ || (p.op === 'malformed' && (p.opcode === Op.RRQ || p.opcode === Op.WRQ));
  if (!isRequest) return { do: 'drop', kind: p.op === 'malformed' && p.why === 'short' ? 'short_packet' : 'stray_packet', msg: 'TFTP packet on the request port that is not a request, dropped', fields: { ip, bytes: msg.length } };
  const refuse = (kind: string, code: number, message: string, fields: Record<string, unknown> = {}): Decision => ({ do: 'refuse', kind, code, message, fields: { ip, port, ...fields } });
  if (p.op === 'malformed') return refuse('malformed', ErrorCode.ILLEGAL_OPERATION, 'Malformed request', { why: p.why });
  if (p.op === Op.WRQ) return refuse('write_request', ErrorCode.ACCESS_VIOLATION, 'Read-only server', { file: printable(p.filename) });
  if (p.mode !== 'octet') return refuse('bad_mode', ErrorCode.ILLEGAL_OPERATION, 'Only octet mode is supported', { mode: printable(p.mode) });
  const file = normaliseName(p.filename);
  const data = state.files.get(file);
  if (!data) return refuse('not_found', ErrorCode.NOT_FOUND, 'File not found', { file: printable(p.filename) });
  // A client that resends its RRQ before our first answer arrives must not get a second transfer.
  if (state.running(requestKey(local, ip, port))) return { do: 'drop', kind: 'duplicate_request', msg: 'TFTP request repeated, ignored', fields: { ip } };
  if (state.total >= limits.maxTransfers) return refuse('busy', ErrorCode.UNDEFINED, 'Server busy, try again later', { limit: 'tftp.maxTransfers' });
  if (state.perClient(ip) >= limits.maxTransfersPerClient) return refuse('busy', ErrorCode.UNDEFINED, 'Too many transfers from this client', { limit: 'tftp.maxTransfersPerClient' });
  return { do: 'start', file, data, n: negotiate(p.options, data.length, limits) };
}
