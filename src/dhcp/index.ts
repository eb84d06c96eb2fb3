import type dgram from 'node:dgram';
import type { Context } from '../context.ts';
import { bindFailure, StartupError } from '../errors.ts';
import { ipxeBinaries } from '../ipxe/binaries.ts';
import { counter } from '../metrics.ts';
import type { ServedInterface } from '../network.ts';
import { disabledService, type Service, type ServiceHealth } from '../service.ts';
import { parseOption43, type AnswerConfig } from './answer.ts';
import type { Client } from './classify.ts';
import { deviceSocket } from './device-socket.ts';
import { registerBinaryRoutes } from './http-boot.ts';
import { respond, type Arrival, type Outcome, type RespondConfig } from './respond.ts';
import { CLIENT_PORT, RogueWatch } from './rogue.ts';
import { Sightings } from './sightings.ts';

export function createDhcpService(ctx: Context): Service {
  if (!ctx.settings.dhcp.enabled) return disabledService('dhcp', 'dhcp.enabled is false');
  if (ctx.interfaces.length === 0) {
    throw new StartupError(
      'dhcp: proxy-DHCP is enabled but network.interfaces names no interface to answer on.',
      'Set network.interfaces to the interface(s) facing the machines to provision, e.g. [eth1]. heph never answers DHCP on an interface it was not told to.',
    );
  }
  const binaries = ipxeBinaries(ctx.settings);
  registerBinaryRoutes(ctx.http.app, binaries);
  return new DhcpService(ctx, Object.fromEntries(binaries.map((b) => [b.arch, b.name])));
}

/** "10.0.0.0/8" or "10.1.2.3" → a predicate over dotted quads. */
export function relayMatcher(cidrs: string[]): (ip: string) => boolean {
  const nets = cidrs.map((c) => {
    const [addr, bits] = c.split('/');
    const n = Number(bits ?? 32);
    const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
    return { net: (toInt(addr!) & mask) >>> 0, mask };
  });
  return (ip) => {
    const v = toInt(ip);
    return nets.some((x) => ((v & x.mask) >>> 0) === x.net);
  };
}

function toInt(ip: string): number {
  return ip.split('.').reduce((a, p) => ((a << 8) | Number(p)) >>> 0, 0);
}

/** Where the machine is, when the packet says: its ciaddr, else the source of a unicast 4011 request. */
function clientIp(c: Client, arrival: Arrival): string | undefined {
  return c.ciaddr ?? (arrival.via === 'proxy' ? arrival.from.address : undefined);
}

class DhcpService implements Service {
  readonly name = 'dhcp';
  private sockets: dgram.Socket[] = [];
  private state: ServiceHealth = { state: 'stopped' };
  private readonly log;
  private readonly sightings;
  private readonly m;
  private readonly lastWarn = new Map<string, number>();
  private readonly rogue;

  constructor(
    private readonly ctx: Context,
    private readonly binaries: AnswerConfig['binaries'],
  ) {
    this.log = ctx.log.child({ svc: 'dhcp' });
    this.sightings = new Sightings({ ...ctx, log: this.log });
    this.rogue = new RogueWatch(ctx, this.log);
    this.m = {
      received: counter(ctx.metrics, 'heph_dhcp_received_total', 'DHCP datagrams received, by port role (dhcp = 67, proxy = 4011).', ['port']),
      answered: counter(ctx.metrics, 'heph_dhcp_answered_total', 'Proxy-DHCP replies sent, by type (offer, ack).', ['type']),
      ignored: counter(ctx.metrics, 'heph_dhcp_ignored_total', 'Well-formed DHCP datagrams not answered, by reason.', ['reason']),
      malformed: counter(ctx.metrics, 'heph_dhcp_malformed_total', 'DHCP datagrams dropped as malformed, by reason.', ['reason']),
      sendErrors: counter(ctx.metrics, 'heph_dhcp_send_errors_total', 'Proxy-DHCP replies the kernel refused to send.'),
      sightingsDropped: counter(ctx.metrics, 'heph_dhcp_sightings_dropped_total', 'PXE sightings not written to the inventory because new machines arrived faster than the write budget (flood protection).'),
    };
  }

  async start(): Promise<void> {
    this.state = { state: 'starting' };
    const { port, proxyPort } = this.ctx.settings.dhcp;
    const listening: Record<string, string> = {};
    try {
      for (const iface of this.ctx.interfaces) {
        const cfg = this.config(iface);
        for (const [via, p, setting] of [['dhcp', port, 'dhcp.port'], ['proxy', proxyPort, 'dhcp.proxyPort']] as const) {
          let sock: dgram.Socket;
          try {
            sock = await deviceSocket(iface.name, p);
          } catch (err) {
            throw bindFailure({ service: 'dhcp', proto: 'UDP', address: `0.0.0.0 (device ${iface.name})`, port: p, setting, disable: 'dhcp.enabled', err });
          }
          this.sockets.push(sock);
          sock.on('message', (buf, rinfo) => this.onMessage(sock, buf, { via, from: { address: rinfo.address, port: rinfo.port } }, cfg, iface));
          sock.on('error', (err) => this.log.error({ err, iface: iface.name }, 'DHCP socket error'));
          listening[`udp/${via}/${iface.name}`] = `0.0.0.0:${sock.address().port}`;
        }
      }
    } catch (err) {
      await this.stop();
      this.state = { state: 'failed', detail: (err as Error).message };
      throw err;
    }
    if (this.ctx.settings.dhcp.watchForeign) for (const name of await this.rogue.start(this.ctx.interfaces)) listening[`udp/watch/${name}`] = `0.0.0.0:${CLIENT_PORT}`;
    this.state = { state: 'up', listening };
  }

  async stop(): Promise<void> {
    const socks = this.sockets;
    this.sockets = [];
    await Promise.all([this.rogue.stop(), ...socks.map((s) => new Promise<void>((r) => s.close(() => r())))]);
    this.state = { state: 'stopped' };
  }

  health(): ServiceHealth {
    return this.state;
  }

  private config(iface: ServedInterface): RespondConfig {
    const s = this.ctx.settings;
    return {
      // Multi-homed: each network is told the address it can reach, unless the operator pinned one.
      // The bound port (the daemon starts HTTP before DHCP), which differs from the setting when that is 0.
      answer: { server: s.network.advertiseAddress || iface.address, httpPort: this.ctx.http.port || s.http.port, binaries: this.binaries, option43: parseOption43(s.dhcp.option43) },
      relayAllowed: relayMatcher(s.dhcp.relays),
      rejected: (c) => this.rejected(c),
      relayPort: s.dhcp.port,
    };
  }

  private rejected(c: Client): boolean {
    const m = (c.uuid ? this.ctx.machines.findByUuid(c.uuid) : undefined) ?? this.ctx.machines.findByMac(c.mac);
    return m?.acceptance === 'rejected';
  }

  private onMessage(sock: dgram.Socket, buf: Buffer, arrival: Arrival, cfg: RespondConfig, iface: ServedInterface): void {
    this.m.received.inc({ port: arrival.via });
    // respond() never throws on input; the inventory side is guarded too, so a bad day there costs one packet.
    const out: Outcome = respond(buf, arrival, cfg);
    // Reply first, bookkeeping after: the client's clock is running (iPXE waits 2 s for proxy offers).
    if (out.kind === 'reply') {
      sock.send(out.bytes, out.to.port, out.to.address, (err) => {
        if (err) {
          this.m.sendErrors.inc();
          this.warnOnce('send', { err, to: out.to }, 'could not send a proxy-DHCP reply');
        }
      });
    }
    try {
      this.account(out, arrival, iface);
    } catch (err) {
      this.log.error({ err }, 'DHCP bookkeeping failed');
    }
  }

  private sighting(...args: Parameters<Sightings['record']>): void {
    if (!this.sightings.record(...args)) this.m.sightingsDropped.inc();
  }

  private account(out: Outcome, arrival: Arrival, iface: ServedInterface): void {
    switch (out.kind) {
      case 'malformed':
        this.m.malformed.inc({ reason: out.reason });
        this.warnOnce(`malformed:${out.reason}`, { reason: out.reason, detail: out.detail, from: arrival.from, iface: iface.name }, 'dropped a malformed DHCP datagram');
        return;
      case 'ignored':
        this.m.ignored.inc({ reason: out.reason });
        if (out.client) {
          const ip = clientIp(out.client, arrival);
          const kind = out.client.messageType === 1 ? 'dhcp.discover' : 'dhcp.request';
          this.sighting(out.client, kind, `${kind === 'dhcp.discover' ? 'DISCOVER' : 'REQUEST'} not answered: ${out.reason}`, { ip, data: { reason: out.reason } });
        }
        if (out.reason === 'relay-not-allowed') this.warnOnce('relay', { giaddr: out.giaddr, iface: iface.name }, 'ignored a relayed request from a giaddr outside dhcp.relays');
        return;
      case 'reply': {
        this.m.answered.inc({ type: out.type });
        const c = out.client;
        const ip = clientIp(c, arrival);
        const kind = out.type === 'offer' ? 'dhcp.discover' : 'dhcp.request';
        const what = out.type === 'offer' ? 'DISCOVER answered with a proxy OFFER' : 'boot-server REQUEST answered with an ACK';
        this.sighting(c, kind, `${what}: ${out.file}`, { ip, data: { file: out.file, ...(out.giaddr !== '0.0.0.0' ? { relay: out.giaddr } : {}) } });
        if (this.log.isLevelEnabled('debug')) this.log.debug({ mac: c.mac, uuid: c.uuid, ip, arch: c.arch.name, firmware: c.firmware, file: out.file, to: out.to, iface: iface.name }, what);
      }
    }
  }

  /** At most one line per key per 10 s: a flood of junk must not become a flood of logs. */
  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if ((this.lastWarn.get(key) ?? 0) + 10_000 > now) return;
    this.lastWarn.set(key, now);
    this.log.warn(fields, msg);
  }
}
