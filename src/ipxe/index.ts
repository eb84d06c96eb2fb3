import { accessSync, constants, statSync } from 'node:fs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { registerAssetRoutes } from '../assets/serve.ts';
import { AssetStore, urlId } from '../assets/store.ts';
import { decideBoot, INSTALLED_STATES, type BootDecision, type BootProfile } from '../boot/decide.ts';
import { CatalogCache, loadCatalog, profileAssets, type Catalog, type Profile } from '../boot/profiles.ts';
import { chooseProfile, type ProfileChoice } from '../boot/selectors.ts';
import { registerConfigRoutes } from '../configserve/index.ts';
import { ConfigDelivery } from '../configserve/delivery.ts';
import { BootTokens, TOKEN_LENGTH } from '../configserve/tokens.ts';
import type { Context } from '../context.ts';
import { StartupError } from '../errors.ts';
import { audit } from '../inventory/audit.ts';
import { newMachineId, type Machine } from '../inventory/machines.ts';
import { forMachine } from '../log.ts';
import { counter } from '../metrics.ts';
import type { Service, ServiceHealth } from '../service.ts';
import { parseBootClaims, peerAddress, type BootClaims } from './identity.ts';
import { neighbourMac, neighbourSource } from './neighbour.ts';
import { renderChainScript, renderHoldScript, renderInstallScript, renderLocalScript, toScriptText } from './scripts.ts';

/**
 * What other capabilities add to every Talos boot, wired by the daemon: the event sink and kernel-log arguments
 * (`talos.events.sink=…`, `talos.logging.kernel=…`) and the matching EventSinkConfig/KmsgLogConfig documents,
 * which survive install where kernel arguments may not (protocols.md §1.4).
 */
export interface BootHooks {
  kernelArgs?: (m: Machine) => string[];
  configDocuments?: (m: Machine) => string[];
  /**
   * Where Talos fetches its config from, for a profile's Talos version: an https base plus the kernel arguments
   * that make Talos trust it (talos.config.early). Undefined: plain HTTP on the machine-facing port.
   */
  configOverTls?: (talosVersion: string) => { base: string; kernelArgs: string[] } | undefined;
}

export interface BootService extends Service {
  assets: AssetStore;
  tokens: BootTokens;
  catalog(): Catalog;
}

function send(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/plain; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-length', String(Buffer.byteLength(body)))
    .send(body);
}

/**
 * The boot flow over HTTP: /boot.ipxe, /ipxe (machine, profile, decision, script), /config/<token> and
 * /assets/…. Routes are added now; start() verifies every imported asset before DHCP points machines here.
 */
export function createBootService(ctx: Context, hooks: BootHooks = {}): BootService {
  const s = ctx.settings;
  const log = ctx.log.child({ svc: 'boot' });
  const scripts = counter(ctx.metrics, 'heph_ipxe_scripts_total', 'iPXE scripts served, by decision.', ['action']);
  const rejected = counter(ctx.metrics, 'heph_ipxe_rejected_total', 'Script requests refused for malformed or spoofed claims.', ['field']);
  const assetFailures = counter(ctx.metrics, 'heph_asset_verification_failures_total', 'Assets that did not match their SHA-512 when checked.');
  const assets = new AssetStore(ctx.db, ctx.dataDir, (a, detail) => {
    assetFailures.inc();
    log.error({ asset: a.name, version: a.version, arch: a.arch, detail }, 'ALERT: asset failed verification; it will not be served');
    ctx.timeline.appendNow({ machineId: null, kind: 'alert.asset', source: 'system', message: `${a.name} (${a.version}/${a.arch}) failed verification: ${detail}`, data: { asset: a.id.slice(0, 16) } });
  });
  const tokens = new BootTokens(ctx.db);
  const cache = new CatalogCache(
    () => loadCatalog(s.profiles.dir || undefined, ctx.db),
    2000,
    (errors) => log.error({ errors }, 'some profiles or selectors are invalid and were left out'),
  );
  const delivery = new ConfigDelivery({
    db: ctx.db,
    durable: ctx.durable,
    machines: ctx.machines,
    tokens,
    catalog: () => cache.get(),
    timeline: ctx.timeline,
    log,
    served: counter(ctx.metrics, 'heph_configs_total', 'Config requests, by result.', ['result']),
    configDocuments: hooks.configDocuments,
    neighbour: s.boot.neighbourCheck === 'off' ? undefined : (ip) => neighbourMac(ip),
  });
  const app = ctx.http.app;
  const base = (): string => `http://${ctx.advertise}:${ctx.http.port}`;

  const signed = ctx.signer !== undefined;

  app.get('/boot.ipxe', async (_req, reply) => send(reply, 200, renderChainScript(base(), s.boot.holdSeconds, signed)));

  /**
   * The machine a GET would resolve, without creating or changing anything: HEAD must be exactly as long as GET
   * (UEFI firmware and caches ask) yet mint no token, accept no machine and move no state.
   */
  function prospective(claims: BootClaims, ip: string): Machine {
    const { mac, ...facts } = claims;
    const known = (claims.uuid && ctx.machines.findByUuid(claims.uuid)) || (mac && ctx.machines.findByMac(mac)) || undefined;
    if (known) return { ...known, ...facts, lastIp: ip };
    const now = Date.now();
    const none = { uuid: null, serial: null, hostname: null, arch: null, platform: null, manufacturer: null, product: null };
    return { id: newMachineId(), ...none, ...facts, vendorClass: null, state: 'discovered', stateReason: null, acceptance: 'pending', profile: null, labels: {}, reprovision: false, lastIp: ip, firstSeen: now, lastSeen: now, updatedAt: now, macs: mac ? [mac] : [] };
  }

  const ipxe = (dry: boolean) => async (req: FastifyRequest<{ Querystring: Record<string, unknown> }>, reply: FastifyReply): Promise<FastifyReply> => {
    const ip = peerAddress(req.socket.remoteAddress);
    const parsed = parseBootClaims(req.query);
    if (!parsed.ok) {
      rejected.inc({ field: parsed.field });
      log.warn({ ip, field: parsed.field, why: parsed.reason }, 'script request refused');
      return send(reply, 400, `heph: ${parsed.field}: ${parsed.reason}\n`);
    }
    const { claims } = parsed;
    if (s.boot.neighbourCheck !== 'off' && claims.mac) {
      const seen = neighbourMac(ip);
      if ((seen && seen !== claims.mac) || (!seen && s.boot.neighbourCheck === 'strict')) {
        rejected.inc({ field: 'neighbour' });
        log.error({ ip, mac: claims.mac, neighbour: seen ?? null }, 'ALERT: claimed MAC does not match the ARP entry of the requesting IP');
        return send(reply, 403, 'heph: the claimed MAC does not match this address\n');
      }
    }
    // Its sync is not waited for here: the script's own commit below syncs it too (one sync covers every earlier
    // commit). Its commit is, as the script below depends on the machine's row.
    const resolved = dry ? undefined : ctx.durable.commit(() => ctx.machines.resolve({ ...claims, ip }));
    if (resolved) await resolved.committed;
    const { machine: found, created } = resolved ? resolved.value : { machine: prospective(claims, ip), created: false };
    let machine = found;
    const mlog = forMachine(log, { machine: machine.id, mac: claims.mac, uuid: claims.uuid, ip });
    if (created) ctx.timeline.append({ machineId: machine.id, kind: 'machine.discovered', source: 'http', ip, message: 'first seen asking for an iPXE script' });

    const catalog = cache.get();
    const choice = resolveProfile(machine, catalog);
    const profile = choice.profile ? catalog.profiles.get(choice.profile) : undefined;
    let files: Awaited<ReturnType<typeof profileAssets>> | undefined;
    if (profile) files = await profileAssets(assets, profile, machine.arch);
    const view: BootProfile | null = profile ? { name: profile.name, assetsProblem: files && 'problem' in files ? files.problem : undefined, autoAccept: choice.autoAccept } : null;
    const decision = decideBoot(machine, view, s.boot, Date.now());
    mlog[dry ? 'debug' : 'info'](
      { head: dry || undefined, inputs: { acceptance: machine.acceptance, state: machine.state, reprovision: machine.reprovision, profile: view, choice: choice.reason, policy: s.boot.unknownMachines, dropped: parsed.dropped }, decision },
      'boot decision',
    );
    if (dry) return send(reply, 200, render(decision, machine, profile, files, ip, true));
    // What this answer records (the acceptance and its audit row, the token, the state) commits at once, and the
    // script leaves only once that is on disk: the token it carries must exist after a crash.
    const { value: body, durable: synced } = ctx.durable.commit(() => {
      if (decision.autoAccepted) {
        machine = ctx.machines.update(machine.id, { acceptance: 'accepted' }) ?? machine;
        audit(ctx.db, { actor: 'system', action: 'machine.accept', machineId: machine.id, ip, detail: { via: choice.reason } });
      }
      return render(decision, machine, profile, files, ip, false);
    });
    await synced;
    scripts.inc({ action: decision.action });
    ctx.timeline.append({ machineId: machine.id, kind: 'ipxe.script', source: 'http', ip, message: `${decision.action}: ${decision.reason}`, data: { action: decision.action, reason: decision.reason, profile: profile?.name ?? null, choice: choice.reason } });
    return send(reply, 200, body);
  };

  function resolveProfile(m: Machine, catalog: Catalog): ProfileChoice {
    const choice = chooseProfile(m, catalog.selectors);
    if (choice.profile && !catalog.profiles.has(choice.profile)) return { profile: null, reason: `${choice.reason}, but profile ${choice.profile} does not exist`, autoAccept: false };
    return choice;
  }

  function render(d: BootDecision, m: Machine, profile: Profile | undefined, files: Awaited<ReturnType<typeof profileAssets>> | undefined, ip: string, dry: boolean): string {
    switch (d.action) {
      case 'local':
        return renderLocalScript(s.boot.localBoot);
      case 'hold':
        return renderHoldScript(base(), `${m.id} ${holdText(d, m)}`, s.boot.holdSeconds, signed);
      case 'install':
      case 'maintenance': {
        if (!profile || !files || 'problem' in files) throw new Error('decision to boot Talos without ready assets');
        const common = {
          base: base(),
          machineId: m.id,
          profile: profile.name,
          kernelUrl: `${base()}/assets/${urlId(files.kernel)}/${files.kernel.name}`,
          initrdUrl: `${base()}/assets/${urlId(files.initrd)}/${files.initrd.name}`,
          kernelArgs: [...profile.kernelArgs, ...(hooks.kernelArgs?.(m) ?? [])],
          efi: m.platform === 'efi',
          retries: s.boot.fetchRetries,
          signed,
        };
        if (d.action === 'maintenance') return renderInstallScript(common);
        // Over TLS (Talos fetching its config over HTTPS) the CA rides along in talos.config.early.
        const tls = hooks.configOverTls?.(profile.talosVersion);
        const install = tls ? { ...common, kernelArgs: [...common.kernelArgs, ...tls.kernelArgs] } : common;
        const configBase = tls ? tls.base : base();
        if (dry) return renderInstallScript({ ...install, configUrl: `${configBase}/config/${'x'.repeat(TOKEN_LENGTH)}` });
        // Minted (and committed) before the script that carries it leaves; re-minting revokes the previous one.
        const { token } = tokens.mint({ machineId: m.id, ip, profile: profile.name, wipe: d.wipe, ttlMs: s.boot.tokenTtlMinutes * 60_000 });
        if (m.state === 'discovered' || m.state === 'failed' || INSTALLED_STATES.includes(m.state)) ctx.machines.setState(m.id, 'booting', `install script served (profile ${profile.name})`);
        return renderInstallScript({ ...install, configUrl: `${configBase}/config/${token}` });
      }
    }
  }

  app.route({ method: 'GET', url: '/ipxe', exposeHeadRoute: false, handler: ipxe(false) });
  app.head('/ipxe', ipxe(true));
  registerConfigRoutes(app, delivery, log);
  registerAssetRoutes(app, assets, {
    onFetch(a, ip) {
      ctx.timeline.append({ machineId: ctx.machines.idByIp(ip) ?? null, kind: `asset.${a.kind}`, source: 'http', ip, message: `${a.name} (${a.version}) download started`, data: { size: a.size } });
    },
    onRefused(a, ip) {
      const id = ctx.machines.idByIp(ip);
      if (id) ctx.timeline.append({ machineId: id, kind: 'asset.refused', source: 'http', ip, message: `${a.name} refused: failed verification` });
    },
  });

  let health: ServiceHealth = { state: 'stopped' };
  return {
    name: 'boot',
    assets,
    tokens,
    catalog: () => cache.get(),
    async start() {
      health = { state: 'starting' };
      if (s.profiles.dir) {
        try {
          if (!statSync(s.profiles.dir).isDirectory()) throw new Error('not a directory');
          accessSync(s.profiles.dir, constants.R_OK | constants.X_OK);
        } catch (err) {
          health = { state: 'failed', detail: `profiles.dir ${s.profiles.dir}: ${(err as Error).message}` };
          throw new StartupError(`profiles.dir: ${s.profiles.dir} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`, 'Point profiles.dir at the directory holding your profile and selector YAML files, or set it to "" to use only profiles stored in the inventory.', { cause: err });
        }
      }
      const bad: string[] = [];
      for (const a of assets.list()) {
        const problem = await assets.problem(a);
        if (problem) bad.push(`${a.name} ${a.version}: ${problem}`);
      }
      const errors = cache.get().errors;
      const detail = [...bad.map((b) => `asset refused: ${b}`), ...errors].join('; ');
      health = detail ? { state: 'up', detail } : { state: 'up' };
      const neighbours = s.boot.neighbourCheck === 'off' ? 'off' : neighbourSource();
      log.info({ assets: assets.list().length, refused: bad.length, profiles: cache.get().profiles.size, selectors: cache.get().selectors.length, neighbourCheck: neighbours }, 'boot flow ready');
    },
    async stop() {
      health = { state: 'stopped' };
      await assets.close();
    },
    health: () => health,
  };
}

function holdText(d: BootDecision, m: Machine): string {
  if (m.acceptance === 'pending') return 'waits for an operator: heph machines accept ' + m.id;
  return toScriptText(d.reason);
}
