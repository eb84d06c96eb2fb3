// What the event sink's two threads share: the gRPC method table, how grpc-js names a peer, and the messages
// between sink.ts (main thread: records events) and sink-worker.ts (its own thread: gRPC and HTTP/2).
import type * as grpc from '@grpc/grpc-js';
import type { MessagePort } from 'node:worker_threads';
import { plainIp } from './kmsg.ts';

export const PUBLISH_PATH = '/events.EventSinkService/Publish';

/**
 * The method table grpc-js needs, with the request left as bytes: decoding happens on the main thread, where a
 * malformed request can be counted and answered INVALID_ARGUMENT instead of vanishing inside the library.
 * EventResponse is empty, so its encoding is zero bytes.
 */
export const SERVICE: grpc.ServiceDefinition<grpc.UntypedServiceImplementation> = {
  Publish: {
    path: PUBLISH_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: () => Buffer.alloc(0),
    responseDeserialize: () => ({}),
  },
};

/** `host:port` as grpc-js reports the peer (IPv6 without brackets, possibly IPv4-mapped) → the bare IP. */
export function peerIp(peer: string): string {
  const host = peer.startsWith('[') ? peer.slice(1, peer.indexOf(']')) : peer.lastIndexOf(':') > -1 ? peer.slice(0, peer.lastIndexOf(':')) : peer;
  return plainIp(host.replace(/^ipv[46]:/, ''));
}

export interface SinkWorkerInit {
  listen: string;
  port: number;
  /** Where each turn's calls go (as SinkCall[]); answers come back through the worker's parent port. */
  calls: MessagePort;
}

/** One Publish call: who sent it and its request bytes. */
export interface SinkCall {
  id: number;
  ip: string;
  bytes: Uint8Array;
}

/** Worker → main. */
export type FromSink =
  | { kind: 'bound'; port: number }
  | { kind: 'bind-failed'; message: string; code: string | undefined }
  /** A warning for heph's log, its text already saying where it came from (grpc-js, or the sink's listener). */
  | { kind: 'log'; text: string }
  | { kind: 'stopped' };

/** A call's gRPC status: 0 OK, 3 INVALID_ARGUMENT (not an EventRequest), 2 UNKNOWN (heph failed to record it). */
export type SinkAnswer = [id: number, code: 0 | 2 | 3, details: string];

/** Main → worker: the calls' statuses, or stop. */
export type ToSink = { kind: 'answers'; answers: SinkAnswer[] } | { kind: 'stop' };
