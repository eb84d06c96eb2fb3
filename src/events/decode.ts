import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { TalosEvent } from './model.ts';

export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

/** An EventRequest as it came off the wire, payload still packed. */
export interface RawEvent {
  /** The Any type name without its URL prefix, e.g. machine.SequenceEvent; '' when data is absent. */
  typeName: string;
  value: Uint8Array;
  id: string;
  actorId: string;
}

export type Decoded = { known: true; event: TalosEvent } | { known: false };

const TO_OBJECT: protobuf.IConversionOptions = { enums: String, longs: Number, defaults: true, arrays: true };

/** Decodes Talos sink requests with heph's own .proto files (proto/), read once from disk. */
export class EventDecoder {
  private readonly request: protobuf.Type;
  private readonly payloads = new Map<string, protobuf.Type>();

  constructor(dir = PROTO_DIR) {
    const root = new protobuf.Root();
    // google/protobuf/* come bundled with protobufjs; everything else is ours.
    root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(dir, target));
    root.loadSync(['events/events.proto', 'machine/machine.proto'], { keepCase: false });
    this.request = root.lookupType('events.EventRequest');
    for (const name of Object.keys(NORMALIZE)) this.payloads.set(name, root.lookupType(name));
  }

  /** Throws on bytes that are not an EventRequest. */
  decodeRequest(bytes: Uint8Array): RawEvent {
    const m = this.request.decode(strict(bytes)) as unknown as { data?: { type_url?: string; value?: Uint8Array } | null; id?: string; actorId?: string };
    const url = m.data?.type_url ?? '';
    return { typeName: url.slice(url.lastIndexOf('/') + 1), value: m.data?.value ?? new Uint8Array(), id: m.id ?? '', actorId: m.actorId ?? '' };
  }

  /** Unknown type names are `known: false`; a known type whose bytes do not decode throws. */
  decodePayload(raw: Pick<RawEvent, 'typeName' | 'value'>): Decoded {
    const type = this.payloads.get(raw.typeName);
    const normalize = NORMALIZE[raw.typeName];
    if (!type || !normalize) return { known: false };
    return { known: true, event: normalize(type.toObject(type.decode(strict(raw.value)), TO_OBJECT)) };
  }
}

// protobufjs reads a node Buffer leniently (a string running past the end is cut short, not an error); a plain
// Uint8Array view gets its bounds-checked reader, so a truncated message is rejected.
function strict(bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}

type Obj = Record<string, unknown>;
const s = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const o = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' ? (v as Obj) : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

// From protobufjs's plain objects to TalosEvent: the one place that knows the proto field names.
const NORMALIZE: Record<string, (m: Obj) => TalosEvent> = {
  'machine.SequenceEvent': (m) => {
    const err = o(m.error);
    return { type: 'sequence', sequence: s(m.sequence), action: s(m.action), ...(err ? { error: { code: s(err.code), message: s(err.message) } } : {}) };
  },
  'machine.PhaseEvent': (m) => ({ type: 'phase', phase: s(m.phase), action: s(m.action) }),
  'machine.TaskEvent': (m) => ({ type: 'task', task: s(m.task), action: s(m.action) }),
  'machine.ServiceStateEvent': (m) => {
    const h = o(m.health);
    return { type: 'service', service: s(m.service), action: s(m.action), message: s(m.message), healthy: h && !h.unknown ? Boolean(h.healthy) : null };
  },
  'machine.MachineStatusEvent': (m) => {
    const st = o(m.status);
    return {
      type: 'status',
      stage: s(m.stage),
      ready: Boolean(st?.ready),
      unmet: arr(st?.unmetConditions).map((u) => ({ name: s(o(u)?.name), reason: s(o(u)?.reason) })),
    };
  },
  'machine.ConfigLoadErrorEvent': (m) => ({ type: 'configLoadError', error: s(m.error) }),
  'machine.AddressEvent': (m) => ({ type: 'address', hostname: s(m.hostname), addresses: arr(m.addresses).map(s) }),
  'machine.RestartEvent': (m) => ({ type: 'restart', cmd: typeof m.cmd === 'number' ? m.cmd : Number(m.cmd) }),
};
