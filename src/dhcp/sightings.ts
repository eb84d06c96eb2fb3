// PXE sightings into the inventory without an fsync per packet: one pending entry per MAC, merged until the
// write-behind tick resolves it, so a DISCOVER storm from one machine costs one upsert per tick.
//
// New entries are rate-limited (token bucket): each costs a Machines.resolve() (~0.1–0.3 ms on these cores)
// inside the write-behind tick, on the same thread that answers DHCP. A flood of random MACs (perfdhcp,
// security.md (b) 11) would otherwise turn into event-loop stalls and missed offers for real machines. A real
// boot storm stays far below the budget; what is over it is dropped and counted, and the next retransmit of
// that client (every few seconds) is recorded instead.
import type { Context } from '../context.ts';
import type { Sighting } from '../inventory/machines.ts';
import { macString, type Client } from './classify.ts';

export type SightingKind = 'dhcp.discover' | 'dhcp.request';

interface Pending {
  sighting: Sighting;
  events: Map<SightingKind, { message: string; ip?: string | undefined; data: Record<string, unknown> }>;
}

export interface SightingBudget {
  perSecond: number;
  burst: number;
}

/** The six bytes at `at` as one number: a Map key that costs no string (2^48 fits a double exactly). */
function macKey(b: Buffer, at: number): number {
  return (b[at]! * 0x100 + b[at + 1]!) * 0x100000000 + (((b[at + 2]! << 24) | (b[at + 3]! << 16) | (b[at + 4]! << 8) | b[at + 5]!) >>> 0);
}

export class Sightings {
  /** By macKey: the main thread asks for every record of a storm, before it has (or needs) the MAC as text. */
  private readonly pending = new Map<number, Pending>();
  private readonly macBytes = Buffer.alloc(6);
  private tokens: number;
  private refilled = performance.now();
  /** Sightings dropped by the budget since start. */
  dropped = 0;

  constructor(
    private readonly ctx: Pick<Context, 'writer' | 'machines' | 'timeline' | 'log'>,
    private readonly budget: SightingBudget = { perSecond: 100, burst: 20 },
  ) {
    this.tokens = budget.burst;
  }

  private take(now: number): boolean {
    this.tokens = Math.min(this.budget.burst, this.tokens + ((now - this.refilled) / 1000) * this.budget.perSecond);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * The budget decision alone, for a caller that has only the hardware address so far (the data plane's records:
   * chaddr at b[at]): true when that MAC is pending (it merges for free) or a token was taken for it, and then
   * record() must follow; false when the budget dropped it (counted). `now` (performance.now()) may be read once
   * for a batch of records.
   */
  reserve(b: Buffer, at: number, now = performance.now()): boolean {
    const key = macKey(b, at);
    if (this.pending.has(key)) return true;
    if (!this.take(now)) {
      this.dropped++;
      return false;
    }
    this.pending.set(key, { sighting: { mac: macString(b, at) }, events: new Map() });
    this.ctx.writer.enqueue(() => this.write(key));
    return true;
  }

  /** Returns false when the budget dropped it. */
  record(client: Client, kind: SightingKind, message: string, extra: { ip?: string | undefined; data?: Record<string, unknown> } = {}): boolean {
    this.macBytes.write(client.mac.replaceAll(':', ''), 'hex');
    if (!this.reserve(this.macBytes, 0)) return false;
    const p = this.pending.get(macKey(this.macBytes, 0))!;
    const s = p.sighting;
    if (client.uuid) s.uuid = client.uuid;
    s.arch = client.arch.name;
    s.vendorClass = client.vendorClass;
    if (extra.ip) s.ip = extra.ip;
    s.at = Date.now();
    p.events.set(kind, { message, ip: extra.ip, data: { arch: client.arch.code, firmware: client.firmware, vendorClass: client.vendorClass, ...extra.data } });
    return true;
  }

  private write(key: number): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    const mac = p.sighting.mac;
    // Reserved but never recorded: nothing was learnt.
    if (p.events.size === 0) return;
    const { machine, created } = this.ctx.machines.resolve(p.sighting);
    if (created) this.ctx.log.info({ machine: machine.id, mac, uuid: machine.uuid ?? undefined, arch: machine.arch }, 'new machine seen by proxy-DHCP');
    for (const [kind, e] of p.events) {
      this.ctx.timeline.append({ machineId: machine.id, kind, source: 'dhcp', message: e.message, ip: e.ip, data: { mac, ...e.data } });
    }
  }
}
