// Machine operations shared by the REST routes and the admin gRPC service: one place decides what an accept or a
// profile change does (audit row first, then the change, and a timeline event the web page shows live).
import { loadCatalog } from '../boot/profiles.ts';
import { chooseProfile } from '../boot/selectors.ts';
import type { Context } from '../context.ts';
import { audit } from '../inventory/audit.ts';
import type { Machine } from '../inventory/machines.ts';
import { badRequest, notFound } from './errors.ts';
import { buildMachineQuery, type MachineFilter } from './machine-query.ts';

/** Who asked: the audit actor (token:<id>, cert:<CN>), a display name and the peer address. */
export interface Caller {
  actor: string;
  name: string | null;
  ip: string | null;
}

export type MachinePatch = { hostname?: string | null; profile?: string | null; labels?: Record<string, string> };

export const MACHINE_ACTIONS = {
  accept: { action: 'machine.accept', message: 'accepted by an operator', patch: { acceptance: 'accepted' } },
  reject: { action: 'machine.reject', message: 'rejected by an operator', patch: { acceptance: 'rejected', reprovision: false } },
  reprovision: { action: 'machine.reprovision', message: 'reprovision requested', patch: { reprovision: true } },
} as const;
export type MachineAction = keyof typeof MACHINE_ACTIONS;

export function getMachine(ctx: Context, id: string): Machine {
  const m = ctx.machines.get(id);
  if (!m) throw notFound(`machine ${id}`);
  return m;
}

export function listMachines(ctx: Context, f: MachineFilter): { machines: Machine[]; total: number } {
  const built = buildMachineQuery(f);
  const total = ctx.db.prepare(`SELECT count(*) FROM machines m ${built.where}`).pluck().get(built.params) as number;
  const ids = ctx.db
    .prepare(`SELECT m.id FROM machines m ${built.where} ORDER BY ${built.order} LIMIT @limit OFFSET @offset`)
    .pluck()
    .all({ ...built.params, limit: f.limit, offset: f.offset }) as string[];
  return { machines: ids.flatMap((id) => ctx.machines.get(id) ?? []), total };
}

function record(ctx: Context, who: Caller, m: Machine, action: string, message: string, detail: Record<string, unknown>, change: () => void): Machine {
  ctx.db.transaction(() => {
    audit(ctx.db, { actor: who.actor, action, machineId: m.id, ip: who.ip, detail });
    change();
    ctx.timeline.appendNow({ machineId: m.id, kind: action, source: 'api', message, ip: who.ip ?? undefined, data: { by: who.name, ...detail } });
  }).immediate();
  return getMachine(ctx, m.id);
}

export function actOnMachine(ctx: Context, who: Caller, id: string, what: MachineAction, reason?: string): Machine {
  const m = getMachine(ctx, id);
  const a = MACHINE_ACTIONS[what];
  return record(ctx, who, m, a.action, reason ? `${a.message}: ${reason}` : a.message, reason ? { reason } : {}, () => ctx.machines.update(m.id, a.patch));
}

export function profileExists(ctx: Context, name: string): boolean {
  return loadCatalog(ctx.settings.profiles.dir || undefined, ctx.db).profiles.has(name);
}

export function updateMachine(ctx: Context, who: Caller, id: string, patch: MachinePatch): Machine {
  const m = getMachine(ctx, id);
  if (typeof patch.profile === 'string' && !profileExists(ctx, patch.profile)) throw badRequest('profile', `no profile named ${JSON.stringify(patch.profile)}`);
  // update() skips undefined fields, and null clears a column.
  return record(ctx, who, m, 'machine.update', `${Object.keys(patch).join(', ')} changed`, { changes: patch }, () => ctx.machines.update(m.id, patch as Parameters<Context['machines']['update']>[1]));
}

export function deleteMachine(ctx: Context, who: Caller, id: string): void {
  const m = getMachine(ctx, id);
  ctx.writer.flush();
  ctx.db.transaction(() => {
    audit(ctx.db, { actor: who.actor, action: 'machine.delete', machineId: m.id, ip: who.ip, detail: { hostname: m.hostname, macs: m.macs, uuid: m.uuid } });
    ctx.machines.delete(m.id);
  }).immediate();
}

export interface ProfileExplanation {
  profile: string | null;
  via: 'assignment' | 'selector' | null;
  selector: string | null;
  reason: string;
  autoAccept: boolean;
  profileExists: boolean;
  catalogErrors: string[];
}

/** Which profile the machine would get and why, from src/boot's rule over the current catalog. */
export function explainProfile(ctx: Context, id: string): ProfileExplanation {
  const m = getMachine(ctx, id);
  const catalog = loadCatalog(ctx.settings.profiles.dir || undefined, ctx.db);
  const c = chooseProfile(m, catalog.selectors);
  return {
    profile: c.profile,
    via: c.profile === null ? null : c.via,
    selector: c.profile !== null && c.via === 'selector' ? c.selector : null,
    reason: c.reason,
    autoAccept: c.autoAccept,
    profileExists: c.profile !== null && catalog.profiles.has(c.profile),
    catalogErrors: catalog.errors,
  };
}
