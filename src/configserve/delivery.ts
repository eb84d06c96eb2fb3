import { INSTALLED_STATES } from '../boot/decide.ts';
import type { Catalog } from '../boot/profiles.ts';
import { audit } from '../inventory/audit.ts';
import type { DB } from '../inventory/db.ts';
import type { DurableCommits } from '../inventory/durable.ts';
import type { Machine, Machines } from '../inventory/machines.ts';
import type { Timeline } from '../inventory/timeline.ts';
import type { Logger } from '../log.ts';
import type { Counter } from '../metrics.ts';
import { renderConfig, type RenderInput } from './render.ts';
import { tokenRef, type BootTokens } from './tokens.ts';

/** Appended to the profile's patches when the operator asked for a reprovision: Talos wipes the install disk. */
export const WIPE_PATCH = 'machine:\n  install:\n    wipe: true\n';

export type Delivery =
  | { status: 200; body: string; sha256: string }
  | { status: 403; reason: string }
  | { status: 500 | 503; reason: string };

export interface DeliveryDeps {
  db: DB;
  /** How the rows that must precede a config's bytes reach the disk (inventory/durable.ts). */
  durable: DurableCommits;
  machines: Machines;
  tokens: BootTokens;
  catalog: () => Catalog;
  timeline: Timeline;
  log: Logger;
  served: Counter<'result'>;
  /**
   * The MAC the kernel's ARP table holds for an IP (undefined: no entry). When given, a config request whose
   * source's MAC is not one of the machine's NICs is refused: the token was copied to another box.
   */
  neighbour?: ((ip: string) => string | undefined) | undefined;
  /** Whole documents every config carries (EventSinkConfig, KmsgLogConfig …), wired by the daemon. */
  configDocuments?: ((m: Machine) => string[]) | undefined;
}


/**
 * Decides whether a config request gets a config, and renders it. The only credential is the per-boot token, and
 * only from the IP its script went to; every answer is audited, and a config's audit row is committed before the
 * caller may send a byte of it.
 */
export class ConfigDelivery {
  constructor(private readonly d: DeliveryDeps) {}

  /** A request that carries no token (e.g. /config?uuid=…): identity claims never unlock a config. */
  refuseTokenless(ip: string, claimed: Record<string, string>): Delivery {
    return this.refuse(ip, 'no token', undefined, undefined, claimed);
  }

  async deliver(token: string, ip: string, now = Date.now()): Promise<Delivery> {
    const check = this.d.tokens.check(token, ip, now);
    if (!check.ok) {
      const ref = check.token && tokenRef(check.token.hash);
      if (check.why === 'wrong-ip') {
        // Someone holds a live token but is not the machine it was minted for: theft or spoofing, tell a person.
        this.d.log.error({ machine: check.token?.machineId, ip, expectedIp: check.token?.ip, tokenRef: ref }, 'ALERT: config token presented from another IP');
        this.d.timeline.appendNow({ machineId: check.token?.machineId ?? null, kind: 'alert.token-ip', source: 'http', ip, message: `config token used from ${ip}, minted for ${check.token?.ip}`, data: { tokenRef: ref }, at: now });
      }
      return this.refuse(ip, check.why, check.token?.machineId, ref);
    }
    const t = check.token;
    const ref = tokenRef(t.hash);
    const machine = this.d.machines.get(t.machineId);
    if (!machine || machine.acceptance !== 'accepted') return this.refuse(ip, 'machine not accepted', t.machineId, ref);
    const seen = this.d.neighbour?.(ip);
    if (seen && !machine.macs.includes(seen)) {
      this.d.log.error({ machine: machine.id, ip, neighbour: seen, tokenRef: ref }, 'ALERT: config token presented by a NIC that is not the machine\'s');
      this.d.timeline.appendNow({ machineId: machine.id, kind: 'alert.token-mac', source: 'http', ip, message: `config token used from ${ip} by NIC ${seen}, not one of this machine's`, data: { tokenRef: ref }, at: now });
      return this.refuse(ip, 'wrong-mac', machine.id, ref);
    }
    const profile = this.d.catalog().profiles.get(t.profile);
    if (!profile) return this.fail(503, machine, ip, `profile ${t.profile} no longer exists`, now);
    const input: RenderInput = {
      base: profile.base,
      patches: t.wipe ? [...profile.patches, WIPE_PATCH] : profile.patches,
      machine: {
        ...(machine.hostname ? { hostname: machine.hostname } : {}),
        ...(profile.install.disk ? { installDisk: profile.install.disk } : {}),
        ...(profile.install.diskSelector ? { installDiskSelector: profile.install.diskSelector } : {}),
        labels: machine.labels,
      },
    };
    const extra = this.d.configDocuments?.(machine);
    if (extra?.length) input.extraDocuments = extra;
    const r = renderConfig(input);
    if (!r.ok) {
      this.d.log.error({ machine: machine.id, profile: profile.name, errors: r.errors }, 'config does not render; Talos will retry');
      return this.fail(500, machine, ip, `profile ${profile.name} does not render: ${r.errors.join('; ')}`, now);
    }
    // Fail closed: if these rows cannot be written, or not synced to disk, the caller gets an exception and answers
    // 5xx, not the config. One commit for all of them, its sync shared with whatever else commits meanwhile.
    // Rendered on this thread, between the checks above and this commit: nothing else can have revoked the token
    // or rejected the machine meanwhile.
    const served = this.d.durable.commit(() => {
      audit(this.d.db, {
        actor: `machine:${machine.id}`,
        action: 'config.served',
        machineId: machine.id,
        ip,
        at: now,
        detail: { sha256: r.sha256, tokenRef: ref, profile: profile.name, wipe: t.wipe, bytes: Buffer.byteLength(r.yaml) },
      });
      this.d.tokens.recordUse(t.hash, now);
      if (t.wipe && machine.reprovision) this.d.machines.update(machine.id, { reprovision: false }, now);
      if (!INSTALLED_STATES.includes(machine.state)) this.d.machines.setState(machine.id, 'config-served', `profile ${profile.name}`, now);
      this.d.timeline.appendNow({ machineId: machine.id, kind: 'config.served', source: 'http', ip, message: `config served (profile ${profile.name}${t.wipe ? ', wipes the disk' : ''})`, data: { sha256: r.sha256, profile: profile.name, uses: t.uses + 1 }, at: now });
    });
    await served.durable;
    this.d.served.inc({ result: 'served' });
    this.d.log.info({ machine: machine.id, ip, profile: profile.name, sha256: r.sha256, tokenRef: ref }, 'config served');
    return { status: 200, body: r.yaml, sha256: r.sha256 };
  }

  private refuse(ip: string, why: string, machineId: string | undefined, ref: string | undefined, claimed?: Record<string, string>): Delivery {
    audit(this.d.db, { actor: `ip:${ip}`, action: 'config.refused', machineId: machineId ?? null, ip, detail: { why, ...(ref ? { tokenRef: ref } : {}), ...(claimed ? { claimed } : {}) } });
    if (machineId) this.d.timeline.append({ machineId, kind: 'config.refused', source: 'http', ip, message: `config refused: ${why}` });
    this.d.served.inc({ result: 'refused' });
    this.d.log.warn({ machine: machineId, ip, why, tokenRef: ref }, 'config refused');
    return { status: 403, reason: why };
  }

  private fail(status: 500 | 503, machine: Machine, ip: string, reason: string, now: number): Delivery {
    this.d.timeline.append({ machineId: machine.id, kind: 'config.error', source: 'http', ip, message: reason, at: now });
    this.d.served.inc({ result: 'error' });
    return { status, reason };
  }
}
