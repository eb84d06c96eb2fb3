// The API's view of stored rows: times as UTC ISO-8601, JSON columns as objects. Shared by REST and SSE.
import type { Machine } from '../inventory/machines.ts';
import type { StoredTimelineEvent, TimelineEvent } from '../inventory/timeline.ts';

export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function machineJson(m: Machine): Record<string, unknown> {
  return {
    id: m.id,
    uuid: m.uuid,
    serial: m.serial,
    hostname: m.hostname,
    arch: m.arch,
    platform: m.platform,
    manufacturer: m.manufacturer,
    product: m.product,
    vendorClass: m.vendorClass,
    state: m.state,
    stateReason: m.stateReason,
    acceptance: m.acceptance,
    profile: m.profile,
    labels: m.labels,
    reprovision: m.reprovision,
    ip: m.lastIp,
    macs: m.macs,
    firstSeen: iso(m.firstSeen),
    lastSeen: iso(m.lastSeen),
    updatedAt: iso(m.updatedAt),
  };
}

export function eventJson(e: StoredTimelineEvent | (TimelineEvent & { at: number; id?: number })): Record<string, unknown> {
  return {
    id: e.id ?? null,
    machineId: e.machineId,
    at: iso(e.at),
    kind: e.kind,
    source: e.source,
    ip: e.ip ?? null,
    message: e.message,
    data: e.data ?? {},
  };
}
