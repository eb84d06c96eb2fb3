// PXE sightings into the inventory without an fsync per packet: one pending entry per MAC, merged until the
// write-behind tick resolves it, so a DISCOVER storm from one machine costs one upsert per tick.
import type { Context } from '../context.ts';
import type { Sighting } from '../inventory/machines.ts';
import type { Client } from './classify.ts';

export type SightingKind = 'dhcp.discover' | 'dhcp.request';

interface Pending {
  sighting: Sighting;
  events: Map<SightingKind, { message: string; ip?: string | undefined; data: Record<string, unknown> }>;
}

export class Sightings {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly ctx: Pick<Context, 'writer' | 'machines' | 'timeline' | 'log'>) {}

  record(client: Client, kind: SightingKind, message: string, extra: { ip?: string | undefined; data?: Record<string, unknown> } = {}): void {
    let p = this.pending.get(client.mac);
    if (!p) {
      p = { sighting: { mac: client.mac }, events: new Map() };
      this.pending.set(client.mac, p);
      const mac = client.mac;
      this.ctx.writer.enqueue(() => this.write(mac));
    }
    const s = p.sighting;
    if (client.uuid) s.uuid = client.uuid;
    s.arch = client.arch.name;
    s.vendorClass = client.vendorClass;
    if (extra.ip) s.ip = extra.ip;
    s.at = Date.now();
    p.events.set(kind, { message, ip: extra.ip, data: { arch: client.arch.code, firmware: client.firmware, vendorClass: client.vendorClass, ...extra.data } });
  }

  private write(mac: string): void {
    const p = this.pending.get(mac);
    if (!p) return;
    this.pending.delete(mac);
    const { machine, created } = this.ctx.machines.resolve(p.sighting);
    if (created) this.ctx.log.info({ machine: machine.id, mac, uuid: machine.uuid ?? undefined, arch: machine.arch }, 'new machine seen by proxy-DHCP');
    for (const [kind, e] of p.events) {
      this.ctx.timeline.append({ machineId: machine.id, kind, source: 'dhcp', message: e.message, ip: e.ip, data: { mac, ...e.data } });
    }
  }
}
