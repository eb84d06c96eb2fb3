// One datagram in, one decision out: reply bytes and where they go, or why not. Pure, never throws on input.
import { bootAnswer, buildReply, type AnswerConfig, type AnswerResult } from './answer.ts';
import { classify, type Client, type IgnoreReason } from './classify.ts';
import { MessageType, RequestReader, type DecodeErrorReason } from './codec.ts';

export interface Arrival {
  /** 'dhcp': the broadcast port (67); 'proxy': the PXE boot-server port (4011). */
  via: 'dhcp' | 'proxy';
  from: { address: string; port: number };
}

export interface RespondConfig {
  answer: AnswerConfig;
  /** Is this giaddr an allowed relay agent? */
  relayAllowed(giaddr: string): boolean;
  /** Must heph stay silent to this machine (acceptance 'rejected')? */
  rejected(client: Client): boolean;
  /** Port relays listen on (67 unless the tests move it). */
  relayPort: number;
}

export type IgnoredReason = IgnoreReason | Extract<AnswerResult, { ok: false }>['reason'] | 'relay-not-allowed' | 'lease-request' | 'rejected' | 'too-large';

export type Outcome =
  | { kind: 'malformed'; reason: DecodeErrorReason | 'exception'; detail: string }
  | { kind: 'ignored'; reason: IgnoredReason; client?: Client; giaddr?: string }
  | { kind: 'reply'; type: 'offer' | 'ack'; bytes: Buffer; to: { address: string; port: number }; client: Client; giaddr: string; file: string };

/** `into`: where to write a reply (see buildReply); the Outcome's bytes are then a view of it. */
export function respond(buf: Buffer, arrival: Arrival, cfg: RespondConfig, into?: Buffer): Outcome {
  try {
    return decide(buf, arrival, cfg, into);
  } catch (err) {
    // Nothing above should throw on any input (the fuzz test holds it to that); if it ever does, the packet is
    // malformed for us and the process goes on.
    return { kind: 'malformed', reason: 'exception', detail: (err as Error).message };
  }
}

// Read in place, one request at a time: nothing of it outlives decide() except views of `buf` in the Outcome.
const req = new RequestReader();

function decide(buf: Buffer, arrival: Arrival, cfg: RespondConfig, into: Buffer | undefined): Outcome {
  const error = req.read(buf);
  if (error) return { kind: 'malformed', reason: error.reason, detail: error.detail };
  const c = classify(req);
  if (!c.ok) return { kind: 'ignored', reason: c.reason };
  const client = c.client;
  const relayed = arrival.via === 'dhcp' && req.giaddr !== '0.0.0.0';
  if (relayed && !cfg.relayAllowed(req.giaddr)) return { kind: 'ignored', reason: 'relay-not-allowed', client, giaddr: req.giaddr };
  // On 67 a REQUEST is the client taking its lease from the real DHCP server: a proxy stays out of it.
  // On 4011 only the boot-server REQUEST is meaningful.
  const wanted = arrival.via === 'dhcp' ? MessageType.DISCOVER : MessageType.REQUEST;
  if (client.messageType !== wanted) return { kind: 'ignored', reason: arrival.via === 'dhcp' ? 'lease-request' : 'message-type', client };
  if (cfg.rejected(client)) return { kind: 'ignored', reason: 'rejected', client };
  const a = bootAnswer(client, cfg.answer);
  if (!a.ok) return { kind: 'ignored', reason: a.reason, client };
  const type = arrival.via === 'dhcp' ? MessageType.OFFER : MessageType.ACK;
  const bytes = buildReply({ request: req, client, answer: a.answer, server: cfg.answer.server, type, into });
  if (!bytes) return { kind: 'ignored', reason: 'too-large', client };
  const to =
    arrival.via === 'proxy' ? arrival.from : relayed ? { address: req.giaddr, port: cfg.relayPort } : { address: '255.255.255.255', port: 68 };
  return { kind: 'reply', type: type === MessageType.OFFER ? 'offer' : 'ack', bytes, to, client, giaddr: req.giaddr, file: a.answer.file };
}
