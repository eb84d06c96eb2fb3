import { transition } from '../boot/lifecycle.ts';
import type { Context } from '../context.ts';
import { forMachine } from '../log.ts';
import { counter } from '../metrics.ts';
import type { EventDecoder } from './decode.ts';
import type { KmsgLine } from './kmsg.ts';
import { summarize, type TalosEvent } from './model.ts';
import type { FeedbackStore } from './store.ts';

/** A request that is not an EventRequest at all: the transport answers INVALID_ARGUMENT. */
export class MalformedRequest extends Error {}

/**
 * What heph does with Talos feedback, between the transports (gRPC sink, kernel-log sockets) and the inventory:
 * names the machine by the sender's IP, keeps every event once, moves the lifecycle and writes the timeline.
 * Events and log lines from an IP no machine is known at are kept under that IP, never dropped.
 */
export class Feedback {
  private readonly m;
  // Talos re-sends its addresses every 10 minutes: only a change goes on the timeline.
  private readonly lastAddresses = new Map<string, string>();

  constructor(
    private readonly ctx: Pick<Context, 'machines' | 'timeline' | 'log' | 'metrics' | 'durable'>,
    private readonly store: FeedbackStore,
    private readonly decoder: EventDecoder,
  ) {
    const r = ctx.metrics;
    this.m = {
      events: counter(r, 'heph_talos_events_total', 'Talos events received and kept, by payload type (unknown: a type heph does not decode).', ['type']),
      duplicates: counter(r, 'heph_talos_events_duplicate_total', 'Talos events received again with an id already kept (replays after a reconnect).'),
      malformed: counter(r, 'heph_talos_events_malformed_total', 'Talos event requests or payloads that could not be decoded.', ['what']),
      unidentified: counter(r, 'heph_talos_events_unidentified_total', 'Talos events from an IP no machine is known at (kept under the IP).'),
      transitions: counter(r, 'heph_lifecycle_transitions_total', 'Machine lifecycle changes caused by Talos events, by new state.', ['state']),
      kmsg: counter(r, 'heph_kmsg_lines_total', 'Kernel log lines received and kept.', ['proto']),
      kmsgDropped: counter(r, 'heph_kmsg_dropped_total', 'Kernel log lines dropped, by reason.', ['proto', 'reason']),
    };
  }

  /** One EventRequest (its protobuf bytes) from `ip`. Throws MalformedRequest when the bytes are not one. */
  publish(ip: string, bytes: Uint8Array, at = Date.now()): void {
    let raw;
    try {
      raw = this.decoder.decodeRequest(bytes);
    } catch (err) {
      this.m.malformed.inc({ what: 'request' });
      throw new MalformedRequest(`not an events.EventRequest: ${(err as Error).message}`);
    }
    if (this.store.seen(raw.id)) {
      this.m.duplicates.inc();
      return;
    }
    let decoded;
    try {
      decoded = this.decoder.decodePayload(raw);
    } catch (err) {
      // Acknowledged all the same: an error would make Talos reconnect and resend this event forever.
      this.m.malformed.inc({ what: 'payload' });
      this.ctx.log.warn({ ip, type: raw.typeName, eventId: raw.id, err: (err as Error).message }, 'Talos event payload does not decode; kept without data');
      this.store.addEvent({ eventId: raw.id, machineId: this.ctx.machines.idByIp(ip) ?? null, ip, at, type: raw.typeName, actorId: raw.actorId, data: {} });
      return;
    }
    const event = decoded.known ? decoded.event : undefined;
    const machine = event?.type === 'address' ? this.refreshIdentity(ip, event) : this.ctx.machines.findByIp(ip);
    if (!machine) this.m.unidentified.inc();
    this.store.addEvent({ eventId: raw.id, machineId: machine?.id ?? null, ip, at, type: raw.typeName || '(none)', actorId: raw.actorId, data: event ?? {} });
    this.m.events.inc({ type: event ? raw.typeName : 'unknown' });
    if (!event) return;

    // Unidentified events stay in the (bounded) event table only: the timeline is per machine and never trimmed.
    if (!machine) return;
    if (this.onTimeline(ip, event)) {
      this.ctx.timeline.append({ machineId: machine.id, source: 'events', kind: `talos.${event.type}`, message: summarize(event), ip, data: { ...event, eventId: raw.id }, at });
    }
    const t = transition(machine.state, event);
    if (t) {
      // The event is already acknowledged to Talos whatever happens here; its sync to disk is shared and not waited for.
      void this.ctx.durable
        .commit(() => this.ctx.machines.setState(machine.id, t.state, t.reason, at))
        .committed.catch((err: unknown) => forMachine(this.ctx.log, { machine: machine.id, ip }).error({ err, to: t.state }, 'lifecycle change could not be committed'));
      this.m.transitions.inc({ state: t.state });
      this.ctx.timeline.append({ machineId: machine.id, source: 'events', kind: 'talos.state', message: `${machine.state} → ${t.state}: ${t.reason}`, ip, data: { from: machine.state, to: t.state, eventId: raw.id }, at });
      forMachine(this.ctx.log, { machine: machine.id, ip }).info({ from: machine.state, to: t.state, reason: t.reason }, 'machine lifecycle changed');
    }
  }

  /** One kernel log line, already parsed, or the reason it was not. */
  kernelLine(ip: string, proto: 'tcp' | 'udp', line: KmsgLine | { error: string }, at = Date.now()): void {
    if ('error' in line) {
      this.m.kmsgDropped.inc({ proto, reason: line.error });
      return;
    }
    const machine = this.ctx.machines.findByIp(ip);
    this.store.addKmsg({ ...line, machineId: machine?.id ?? null, ip, at });
    this.m.kmsg.inc({ proto });
  }

  /** Counts a line the transport threw away before parsing (over-long, cut off). */
  kernelDropped(proto: 'tcp' | 'udp', reason: string): void {
    this.m.kmsgDropped.inc({ proto, reason });
  }

  /**
   * The peer IP names the machine; an AddressEvent can also name it by one of its addresses (e.g. the script was
   * fetched from another address than the one Talos now sends from) and moves the machine's IP to the peer's.
   */
  private refreshIdentity(ip: string, e: Extract<TalosEvent, { type: 'address' }>): ReturnType<Context['machines']['findByIp']> {
    let machine = this.ctx.machines.findByIp(ip);
    if (!machine) {
      for (const a of e.addresses) {
        machine = this.ctx.machines.findByIp(a.replace(/\/\d+$/, ''));
        if (machine) break;
      }
    }
    if (!machine) return undefined;
    const patch: { lastIp?: string; hostname?: string } = {};
    if (machine.lastIp !== ip) patch.lastIp = ip;
    if (e.hostname && machine.hostname !== e.hostname) patch.hostname = e.hostname;
    return Object.keys(patch).length ? this.ctx.machines.update(machine.id, patch) : machine;
  }

  private onTimeline(ip: string, e: TalosEvent): boolean {
    // Tasks come by the hundred per boot and say little the phases do not: kept in the event log only.
    if (e.type === 'task') return false;
    if (e.type !== 'address') return true;
    const key = `${e.hostname} ${e.addresses.join(',')}`;
    if (this.lastAddresses.get(ip) === key) return false;
    this.lastAddresses.set(ip, key);
    return true;
  }
}
