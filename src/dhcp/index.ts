import { constants, networkInterfaces } from 'node:os';
import type { Context } from '../context.ts';
import type { RejectedIdentities } from '../inventory/machines.ts';
import { bindFailure, StartupError } from '../errors.ts';
import { ipxeBinaries } from '../ipxe/binaries.ts';
import { counter } from '../metrics.ts';
import type { ServedInterface } from '../network.ts';
import { disabledService, type Service, type ServiceHealth } from '../service.ts';
import { priorityShortfall } from '../threads.ts';
import { loadSys } from '../net/syscalls.ts';
import type { AnswerConfig } from './answer.ts';
import type { Client } from './classify.ts';
import { MAX_REQUEST } from './codec.ts';
import { DATAPATH_THREAD, DataPath, type WorkerInit } from './datapath.ts';
import { deviceFd } from './device-socket.ts';
import { registerBinaryRoutes } from './http-boot.ts';
import { Intake, type Look } from './intake.ts';
import { OUTCOME_CODES, type OutcomeReader } from './outcome-log.ts';
import { RejectionSet, respondConfig, type PlainRespondConfig } from './policy.ts';
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

/** Where the machine is, when the packet says: its ciaddr, else the source of a unicast 4011 request. */
function clientIp(c: Client, arrival: Arrival): string | undefined {
  return c.ciaddr ?? (arrival.via === 'proxy' ? arrival.from.address : undefined);
}

/** How often the main thread looks for acceptance changes made by another process (the CLI). */
const DATA_VERSION_MS = 1000;
/** Datagrams per recvmmsg/sendmmsg. */
const BATCH = 64;
/** How long the worker holds its records before waking the main thread: counters and sightings lag by at most this. */
const FLUSH_MS = 50;
/** How often the served interfaces are looked up again (checkLinks). */
const LINK_CHECK_MS = 2000;

class DhcpService implements Service {
  readonly name = 'dhcp';
  private fds: number[] = [];
  private dataPath: DataPath | undefined;
  private state: ServiceHealth = { state: 'stopped' };
  private readonly log;
  private readonly sightings;
  private readonly m;
  private readonly lastWarn = new Map<string, number>();
  private readonly rogue;
  private readonly intake;
  /** Per interface index: what the worker is started with, and the same for re-deriving an outcome it reported. */
  private plain: PlainRespondConfig[] = [];
  private configs: RespondConfig[] = [];
  /** The rejected machines, as the worker is started with them and as this thread checks them. */
  private rejected: RejectedIdentities = { uuids: [], nics: [] };
  private rejections = new RejectionSet();
  private listening: Record<string, string> = {};
  /** Each served interface's kernel index when its sockets were bound. */
  private links: number[] = [];
  private linkTimer: NodeJS.Timeout | undefined;
  private linkCheck: Promise<void> | undefined;
  /** Health says an interface is gone (cleared when it is back). */
  private linksGone = false;
  private reloadQueued = false;
  private unwatch: (() => void) | undefined;
  private versionTimer: NodeJS.Timeout | undefined;
  private dataVersion = 0;

  constructor(
    private readonly ctx: Context,
    private readonly binaries: AnswerConfig['binaries'],
  ) {
    this.log = ctx.log.child({ svc: 'dhcp' });
    this.sightings = new Sightings({ ...ctx, log: this.log });
    this.rogue = new RogueWatch(ctx, this.log);
    this.intake = new Intake(this.sightings, (key) => this.due(key));
    this.m = {
      received: counter(ctx.metrics, 'heph_dhcp_received_total', 'DHCP datagrams received, by port role (dhcp = 67, proxy = 4011).', ['port']),
      answered: counter(ctx.metrics, 'heph_dhcp_answered_total', 'Proxy-DHCP replies sent, by type (offer, ack).', ['type']),
      ignored: counter(ctx.metrics, 'heph_dhcp_ignored_total', 'Well-formed DHCP datagrams not answered, by reason.', ['reason']),
      malformed: counter(ctx.metrics, 'heph_dhcp_malformed_total', 'DHCP datagrams dropped as malformed, by reason.', ['reason']),
      sendErrors: counter(ctx.metrics, 'heph_dhcp_send_errors_total', 'Proxy-DHCP replies the kernel refused to send.'),
      restarts: counter(ctx.metrics, 'heph_dhcp_dataplane_restarts_total', 'Times the DHCP data-plane worker died and was started again.'),
      rebinds: counter(ctx.metrics, 'heph_dhcp_rebinds_total', 'Times the DHCP sockets were bound again because a served interface was deleted and created again.'),
      sightingsDropped: counter(ctx.metrics, 'heph_dhcp_sightings_dropped_total', 'PXE sightings not written to the inventory because new machines arrived faster than the write budget (flood protection).'),
    };
  }

  async start(): Promise<void> {
    this.state = { state: 'starting' };
    try {
      this.rejected = this.ctx.machines.rejectedIdentities();
      this.rejections = new RejectionSet(this.rejected);
      this.dataVersion = this.ctx.machines.dataVersion();
      this.plain = this.ctx.interfaces.map((iface) => this.config(iface));
      this.configs = this.plain.map((p) => respondConfig(p, () => this.rejections));
      this.links = this.linkIndexes();
      await this.open();
    } catch (err) {
      await this.stop();
      this.state = { state: 'failed', detail: (err as Error).message };
      throw err;
    }
    // In-process writers say when; the CLI writes from another process, which only data_version shows.
    this.unwatch = this.ctx.machines.onRejectionsChange(() => this.queueReload());
    this.versionTimer = setInterval(() => {
      const v = this.guarded(() => this.ctx.machines.dataVersion());
      if (v !== undefined && v !== this.dataVersion) {
        this.dataVersion = v;
        this.queueReload();
      }
    }, DATA_VERSION_MS);
    this.versionTimer.unref();
    this.linkTimer = setInterval(() => {
      this.linkCheck ??= this.checkLinks().finally(() => (this.linkCheck = undefined));
    }, LINK_CHECK_MS);
    this.linkTimer.unref();
    this.state = { state: 'up', listening: this.listening };
  }

  async stop(): Promise<void> {
    this.unwatch?.();
    this.unwatch = undefined;
    clearInterval(this.versionTimer);
    clearInterval(this.linkTimer);
    // A rebind under way would otherwise open sockets after these are closed.
    await this.linkCheck;
    await this.close();
    this.state = { state: 'stopped' };
  }

  /** The device-bound sockets, the data plane serving them and the foreign-offer watch. */
  private async open(): Promise<void> {
    const { port, proxyPort } = this.ctx.settings.dhcp;
    const listening: Record<string, string> = {};
    const sockets: WorkerInit['sockets'] = [];
    for (const [index, iface] of this.ctx.interfaces.entries()) {
      for (const [via, p, setting] of [['dhcp', port, 'dhcp.port'], ['proxy', proxyPort, 'dhcp.proxyPort']] as const) {
        let fd: number;
        try {
          fd = deviceFd(iface.name, p);
        } catch (err) {
          throw bindFailure({ service: 'dhcp', proto: 'UDP', address: `0.0.0.0 (device ${iface.name})`, port: p, setting, disable: 'dhcp.enabled', err });
        }
        this.fds.push(fd);
        sockets.push({ fd, iface: index, via });
        listening[`udp/${via}/${iface.name}`] = `0.0.0.0:${p}`;
      }
    }
    this.dataPath = await DataPath.start(
      { sockets, configs: this.plain, rejections: this.rejected, batch: BATCH, flushMs: FLUSH_MS },
      {
        outcomes: (m) => this.guarded(() => this.onOutcomes(m.records, m.length, m.sendErrors, m.lastSendError)),
        socketError: (iface, message) => this.log.error({ err: message, iface: this.ctx.interfaces[iface]?.name }, 'DHCP socket error'),
        died: (err, retryMs) => {
          this.m.restarts.inc();
          this.log.error({ err, retryMs }, 'the DHCP data plane stopped: proxy-DHCP is not answering until it restarts');
          this.state = { state: 'failed', detail: `data-plane worker: ${err.message}; restarting in ${retryMs} ms` };
        },
        restarted: () => {
          this.log.warn('the DHCP data plane restarted: proxy-DHCP answers again');
          this.state = { state: 'up', listening: this.listening };
        },
      },
      this.ctx.settings.threads.packetPriority,
    );
    const shortfall = priorityShortfall(DATAPATH_THREAD, this.ctx.settings.threads.packetPriority);
    if (shortfall) this.log.warn({ setting: 'threads.packetPriority' }, `proxy-DHCP answers at normal priority: ${shortfall}`);
    if (this.ctx.settings.dhcp.watchForeign) for (const name of await this.rogue.start(this.ctx.interfaces)) listening[`udp/watch/${name}`] = `0.0.0.0:${CLIENT_PORT}`;
    this.listening = listening;
  }

  private async close(): Promise<void> {
    const dp = this.dataPath;
    this.dataPath = undefined;
    await Promise.all([this.rogue.stop(), dp?.stop()]);
    for (const fd of this.fds) loadSys().close(fd);
    this.fds = [];
  }

  /** The kernel's index of each served interface; 0 while one does not exist. */
  private linkIndexes(): number[] {
    const sys = loadSys();
    return this.ctx.interfaces.map((i) => sys.if_nametoindex(i.name));
  }

  /**
   * A socket bound to a device keeps the index the device had: once the interface is deleted and created again (a
   * bridge rebuilt by the network manager, a VLAN re-added) it hears nothing, with no error anywhere. So the
   * interfaces are looked up every LINK_CHECK_MS, and a new index means new sockets.
   */
  private async checkLinks(): Promise<void> {
    const now = this.linkIndexes();
    const gone = this.ctx.interfaces.filter((_, k) => now[k] === 0).map((i) => i.name);
    if (gone.length > 0) {
      const detail = `interface ${gone.join(', ')} is gone: no proxy-DHCP answers there until it is back`;
      if (this.state.detail !== detail) this.log.error({ interfaces: gone }, 'a served interface is gone: proxy-DHCP cannot answer on it until it is back');
      this.state = { state: 'failed', detail };
      this.linksGone = true;
      return;
    }
    const recreated = this.ctx.interfaces.filter((_, k) => now[k] !== this.links[k]).map((i) => i.name);
    if (recreated.length === 0) {
      // Back under the index it had (renamed away and back): the sockets never lost it.
      if (this.linksGone) {
        this.linksGone = false;
        this.log.warn('the served interfaces are back under the same kernel index: proxy-DHCP answers again');
        this.state = this.upState();
      }
      return;
    }
    try {
      await this.close();
      await this.open();
      this.links = now;
      this.linksGone = false;
      this.m.rebinds.inc();
      this.log.warn({ interfaces: recreated }, 'a served interface was created again: the DHCP sockets are bound to it anew');
      this.state = this.upState();
      if (this.state.detail) this.log.error({ moved: this.state.detail }, 'a served interface came back with another address: machines are still told the old one until heph restarts');
    } catch (err) {
      // The index stays the old one, so the next check tries again.
      this.log.error({ err }, 'could not bind the DHCP sockets to a recreated interface; retrying');
      this.state = { state: 'failed', detail: `rebinding to a recreated interface: ${(err as Error).message}` };
    }
  }

  /** Up, serving every interface; the detail says when one came back with another address than heph started with. */
  private upState(): ServiceHealth {
    const moved = this.movedAddresses();
    return moved.length === 0 ? { state: 'up', listening: this.listening } : { state: 'up', listening: this.listening, detail: `${moved.join('; ')}: restart heph to tell machines the new address` };
  }

  /** Served interfaces whose first IPv4 address is no longer the one heph started with. */
  private movedAddresses(): string[] {
    const now = networkInterfaces();
    return this.ctx.interfaces.flatMap((i) => {
      const v4 = now[i.name]?.find((a) => a.family === 'IPv4')?.address;
      return v4 === undefined || v4 === i.address ? [] : [`${i.name} is now ${v4}, was ${i.address}`];
    });
  }

  health(): ServiceHealth {
    return this.state;
  }

  private config(iface: ServedInterface): PlainRespondConfig {
    const s = this.ctx.settings;
    return {
      // Multi-homed: each network is told the address it can reach, unless the operator pinned one.
      // The bound port (the daemon starts HTTP before DHCP), which differs from the setting when that is 0.
      server: s.network.advertiseAddress || iface.address,
      httpPort: this.ctx.http.port || s.http.port,
      binaries: this.binaries,
      option43: s.dhcp.option43,
      relays: s.dhcp.relays,
      relayPort: s.dhcp.port,
    };
  }

  /** After the writer's transaction (a listener may run inside it), once per burst of changes. */
  private queueReload(): void {
    if (this.reloadQueued) return;
    this.reloadQueued = true;
    setImmediate(() => {
      this.reloadQueued = false;
      this.guarded(() => {
        const ids = this.ctx.machines.rejectedIdentities();
        this.rejected = ids;
        this.rejections = new RejectionSet(ids);
        this.dataPath?.setRejections(ids);
      });
    });
  }

  /** The inventory side must not take the data plane down with it: a bad day there costs bookkeeping, not answers. */
  private guarded<T>(f: () => T): T | undefined {
    try {
      return f();
    } catch (err) {
      this.log.error({ err }, 'DHCP bookkeeping failed');
      return undefined;
    }
  }

  /**
   * Counts what the worker did, then looks closer only where something is to be written: a sighting the budget
   * admits, a warning that is due, a debug line. Looking closer re-runs the pure respond() on the datagram.
   */
  private onOutcomes(records: ArrayBuffer, length: number, sendErrors: number, lastSendError: { errno: number; to: { address: string; port: number } } | undefined): void {
    const t = this.intake;
    t.add(records, length, this.log.isLevelEnabled('debug'), this.look);
    const { dhcp, proxy, counts, dropped } = t;
    if (dhcp) this.m.received.inc({ port: 'dhcp' }, dhcp);
    if (proxy) this.m.received.inc({ port: 'proxy' }, proxy);
    counts.forEach((n, i) => {
      if (n === 0) return;
      const c = OUTCOME_CODES[i]!;
      if (c.kind === 'reply') this.m.answered.inc({ type: c.type }, n);
      else if (c.kind === 'ignored') this.m.ignored.inc({ reason: c.reason }, n);
      else this.m.malformed.inc({ reason: c.reason }, n);
    });
    if (dropped) this.m.sightingsDropped.inc(dropped);
    t.reset();
    if (sendErrors) {
      this.m.sendErrors.inc(sendErrors);
      const code = Object.entries(constants.errno).find(([, v]) => v === lastSendError?.errno)?.[0] ?? `errno ${lastSendError?.errno}`;
      this.warnOnce('send', { err: code, to: lastSendError?.to, count: sendErrors }, 'could not send a proxy-DHCP reply');
    }
  }

  /** A record the intake picked (see Intake): looking closer re-runs the pure respond() on its datagram. */
  private readonly look = (r: OutcomeReader, why: Look): void => {
    if (why === 'oversize') {
      this.warnOnce('malformed:oversize', { reason: 'oversize', detail: `longer than ${MAX_REQUEST} bytes`, from: r.from(), iface: this.ifaceName(r.iface) }, 'dropped a malformed DHCP datagram');
      return;
    }
    const arrival: Arrival = { via: r.via, from: r.from() };
    this.note(respond(r.datagram(), arrival, this.configs[r.iface]!), arrival, r.iface);
  };

  private ifaceName(i: number): string | undefined {
    return this.ctx.interfaces[i]?.name;
  }

  private sighting(...args: Parameters<Sightings['record']>): void {
    if (!this.sightings.record(...args)) this.m.sightingsDropped.inc();
  }

  /** The bookkeeping for one datagram's outcome: sightings and log lines (the counters are kept per batch). */
  private note(out: Outcome, arrival: Arrival, ifaceIndex: number): void {
    const iface = this.ifaceName(ifaceIndex);
    switch (out.kind) {
      case 'malformed':
        this.warnOnce(`malformed:${out.reason}`, { reason: out.reason, detail: out.detail, from: arrival.from, iface }, 'dropped a malformed DHCP datagram');
        return;
      case 'ignored':
        if (out.client) {
          const ip = clientIp(out.client, arrival);
          const kind = out.client.messageType === 1 ? 'dhcp.discover' : 'dhcp.request';
          this.sighting(out.client, kind, `${kind === 'dhcp.discover' ? 'DISCOVER' : 'REQUEST'} not answered: ${out.reason}`, { ip, data: { reason: out.reason } });
        }
        if (out.reason === 'relay-not-allowed') this.warnOnce('relay', { giaddr: out.giaddr, iface }, 'ignored a relayed request from a giaddr outside dhcp.relays');
        return;
      case 'reply': {
        const c = out.client;
        const ip = clientIp(c, arrival);
        const kind = out.type === 'offer' ? 'dhcp.discover' : 'dhcp.request';
        const what = out.type === 'offer' ? 'DISCOVER answered with a proxy OFFER' : 'boot-server REQUEST answered with an ACK';
        this.sighting(c, kind, `${what}: ${out.file}`, { ip, data: { file: out.file, ...(out.giaddr !== '0.0.0.0' ? { relay: out.giaddr } : {}) } });
        if (this.log.isLevelEnabled('debug')) this.log.debug({ mac: c.mac, uuid: c.uuid, ip, arch: c.arch.name, firmware: c.firmware, file: out.file, to: out.to, iface }, what);
      }
    }
  }

  private due(key: string): boolean {
    return (this.lastWarn.get(key) ?? 0) + 10_000 <= Date.now();
  }

  /** At most one line per key per 10 s: a flood of junk must not become a flood of logs. */
  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    if (!this.due(key)) return;
    this.lastWarn.set(key, Date.now());
    this.log.warn(fields, msg);
  }
}
