// Who gets an answer: the relay allowlist and the rejection set, and the RespondConfig built from plain data.
// Pure. The same plain data reaches the data-plane worker (structured clone: no functions, no Buffers), so both
// threads build their RespondConfig with respondConfig() and cannot drift apart.
import type { RejectedIdentities } from '../inventory/machines.ts';
import { ipv4ToNumber } from '../net/ipv4.ts';
import { parseOption43, type AnswerConfig } from './answer.ts';
import type { Client } from './classify.ts';
import type { RespondConfig } from './respond.ts';
import type { Option43Settings } from './settings.ts';

/** One served interface's answer settings, as plain cloneable data. */
export interface PlainRespondConfig {
  server: string;
  httpPort: number;
  binaries: AnswerConfig['binaries'];
  option43: Option43Settings;
  relays: string[];
  relayPort: number;
}

/** "10.0.0.0/8" or "10.1.2.3" → a predicate over dotted quads. */
export function relayMatcher(cidrs: string[]): (ip: string) => boolean {
  const nets = cidrs.map((c) => {
    const [addr, bits] = c.split('/');
    const n = Number(bits ?? 32);
    const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
    return { net: (ipv4ToNumber(addr!) & mask) >>> 0, mask };
  });
  // A storm arrives through one relay or a few: the last answer is kept for the next packet from the same giaddr.
  let last = '';
  let lastAllowed = false;
  return (ip) => {
    if (ip === last) return lastAllowed;
    const v = ipv4ToNumber(ip);
    let allowed = false;
    for (const x of nets) {
      if (((v & x.mask) >>> 0) === x.net) {
        allowed = true;
        break;
      }
    }
    last = ip;
    lastAllowed = allowed;
    return allowed;
  };
}

/**
 * The machines an operator rejected, by identity, held in memory: asked for every packet, so it must not be a
 * database query. It follows the inventory's identity rule (Machines.resolve): a UUID names its machine; a NIC
 * names its machine unless it arrives with a different UUID, which means the card moved to another box (resolve()
 * moves it to that box on the next sighting, and the set is reloaded then).
 */
export class RejectionSet {
  private readonly uuids: ReadonlySet<string>;
  private readonly nics: ReadonlyMap<string, string | null>;
  /** Asked for every packet, and nearly always empty. */
  private readonly empty: boolean;

  constructor(ids: RejectedIdentities = { uuids: [], nics: [] }) {
    this.uuids = new Set(ids.uuids);
    this.nics = new Map(ids.nics);
    this.empty = this.uuids.size === 0 && this.nics.size === 0;
  }

  get size(): number {
    return this.uuids.size + this.nics.size;
  }

  has(c: Pick<Client, 'mac' | 'uuid'>): boolean {
    if (this.empty) return false;
    if (c.uuid !== undefined && this.uuids.has(c.uuid)) return true;
    const owner = this.nics.get(c.mac);
    if (owner === undefined) return false;
    return !(c.uuid !== undefined && owner !== null && owner !== c.uuid);
  }
}

export function respondConfig(p: PlainRespondConfig, rejected: () => RejectionSet): RespondConfig {
  const relayAllowed = relayMatcher(p.relays);
  return {
    answer: { server: p.server, httpPort: p.httpPort, binaries: p.binaries, option43: parseOption43(p.option43) },
    relayAllowed,
    rejected: (c) => rejected().has(c),
    relayPort: p.relayPort,
  };
}
