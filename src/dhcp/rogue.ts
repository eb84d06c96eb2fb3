// Another PXE server on a served network: PXE clients take whichever offer they like best, so a second proxy-DHCP
// (or a site DHCP server that also hands out a boot file) makes boots go astray. Offers go to the client port
// (68), broadcast, so heph listens there on each served interface and reports every offer that carries PXE boot
// information from a server that is not heph. The decision is pure; the socket shell only counts and reports.
import type dgram from 'node:dgram';
import type { Context } from '../context.ts';
import { counter } from '../metrics.ts';
import type { ServedInterface } from '../network.ts';
import { decode, MessageType, Opt } from './codec.ts';
import { deviceSocket } from './device-socket.ts';

export const CLIENT_PORT = 68;

export interface ForeignOffer {
  /** Option 54, else the header's siaddr, else the datagram's source address. */
  server: string;
  /** proxy: yiaddr 0 (a proxy-DHCP); dhcp: a full DHCP server that also hands out a boot file. */
  kind: 'proxy' | 'dhcp';
  type: 'offer' | 'ack';
  /** The boot file or URL it offered ('' when only option 43 or 60 betrayed it). */
  file: string;
  mac: string;
}

/**
 * An OFFER or ACK that carries PXE boot information (option 60 "PXEClient"/"HTTPClient", option 43, a boot file)
 * from a server that is none of `own`; undefined for heph's own replies, ordinary DHCP, and anything malformed.
 */
export function foreignPxeOffer(buf: Buffer, from: string, own: ReadonlySet<string>): ForeignOffer | undefined {
  const d = decode(buf);
  if (!d.ok || d.packet.op !== 2) return undefined;
  const p = d.packet;
  const t = p.options.get(Opt.MESSAGE_TYPE)?.[0];
  if (t !== MessageType.OFFER && t !== MessageType.ACK) return undefined;
  const sid = p.options.get(Opt.SERVER_ID);
  const server = sid?.length === 4 ? [...sid].join('.') : p.siaddr !== '0.0.0.0' ? p.siaddr : from;
  if (own.has(server) || own.has(from)) return undefined;
  const vendor = p.options.get(Opt.VENDOR_CLASS)?.toString('latin1') ?? '';
  const file = (p.options.get(Opt.BOOTFILE)?.toString('latin1') ?? p.file).replace(/\0+$/, '');
  const pxe = vendor.startsWith('PXEClient') || vendor.startsWith('HTTPClient') || p.options.has(Opt.VENDOR) || file !== '';
  if (!pxe) return undefined;
  const mac = [...p.chaddr.subarray(0, Math.min(p.hlen, 16))].map((b) => b.toString(16).padStart(2, '0')).join(':');
  return { server, kind: p.yiaddr === '0.0.0.0' ? 'proxy' : 'dhcp', type: t === MessageType.OFFER ? 'offer' : 'ack', file, mac };
}

/** Reports each foreign server at most once per this interval on the timeline and in the log (the metric counts all). */
const REPORT_EVERY_MS = 10 * 60_000;

export class RogueWatch {
  private sockets: dgram.Socket[] = [];
  private readonly reported = new Map<string, number>();
  private readonly offers;

  constructor(
    private readonly ctx: Pick<Context, 'metrics' | 'timeline' | 'advertise' | 'settings'>,
    private readonly log: Context['log'],
  ) {
    this.offers = counter(ctx.metrics, 'heph_dhcp_foreign_pxe_offers_total', 'PXE offers seen on a served network from another server (a second proxy-DHCP or a DHCP server handing out boot files), by server and kind.', ['server', 'kind']);
  }

  /** Best effort: a port 68 that cannot be had (another DHCP client holding it exclusively) costs only this watch. */
  async start(interfaces: ServedInterface[]): Promise<string[]> {
    const own = new Set([this.ctx.advertise, ...interfaces.map((i) => i.address)]);
    if (this.ctx.settings.network.advertiseAddress) own.add(this.ctx.settings.network.advertiseAddress);
    const watching: string[] = [];
    for (const iface of interfaces) {
      let sock: dgram.Socket;
      try {
        sock = await deviceSocket(iface.name, CLIENT_PORT);
      } catch (err) {
        this.log.warn({ err, iface: iface.name }, 'cannot listen on UDP 68 to watch for other PXE servers on this interface');
        continue;
      }
      sock.on('message', (buf, rinfo) => this.onMessage(buf, rinfo.address, iface, own));
      sock.on('error', (err) => this.log.error({ err, iface: iface.name }, 'foreign-offer watch socket error'));
      this.sockets.push(sock);
      watching.push(iface.name);
    }
    return watching;
  }

  async stop(): Promise<void> {
    const socks = this.sockets;
    this.sockets = [];
    await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  private onMessage(buf: Buffer, from: string, iface: ServedInterface, own: ReadonlySet<string>): void {
    const f = foreignPxeOffer(buf, from, own);
    if (!f) return;
    this.offers.inc({ server: f.server, kind: f.kind });
    const now = Date.now();
    if ((this.reported.get(f.server) ?? -Infinity) + REPORT_EVERY_MS > now) return;
    this.reported.set(f.server, now);
    const what = f.kind === 'proxy' ? 'another proxy-DHCP server' : 'a DHCP server that also hands out boot files';
    const message = `${what} (${f.server}) answered a PXE client on ${iface.name}${f.file ? ` with ${f.file}` : ''}: machines may boot from it instead of heph`;
    this.log.warn({ server: f.server, kind: f.kind, type: f.type, file: f.file, mac: f.mac, iface: iface.name }, `ALERT: ${message}`);
    this.ctx.timeline.append({ machineId: null, kind: 'alert.dhcp-foreign', source: 'dhcp', message, ip: f.server, data: { server: f.server, kind: f.kind, type: f.type, file: f.file, mac: f.mac, iface: iface.name } });
  }
}
