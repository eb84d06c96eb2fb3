// The main thread's share of every datagram the data-plane worker handled: count it by outcome, and pick the few
// worth a closer look (a sighting the budget admits, a warning that is due, a debug line). It runs once per
// record of a storm, so it reads the records in place and builds no string for a record it does not look at.
import { OUTCOME_CODES, OutcomeReader } from './outcome-log.ts';
import type { Sightings } from './sightings.ts';

/** Why a record is looked at closer: the service re-runs respond() on it, or warns that it was oversize. */
export type Look = 'closer' | 'oversize';

/** The rate-limit key of each outcome's warning (undefined: never warned about), built once. */
const WARN_KEYS = OUTCOME_CODES.map((c) => (c.kind === 'malformed' ? `malformed:${c.reason}` : c.kind === 'ignored' && c.reason === 'relay-not-allowed' ? 'relay' : undefined));
const REPLY = OUTCOME_CODES.map((c) => c.kind === 'reply');
const OVERSIZE = OUTCOME_CODES.findIndex((c) => c.kind === 'malformed' && c.reason === 'oversize');

export class Intake {
  /** Records per OUTCOME_CODES index since the last reset(). */
  readonly counts = new Uint32Array(OUTCOME_CODES.length);
  dhcp = 0;
  proxy = 0;
  /** Sightings the budget dropped. */
  dropped = 0;

  constructor(
    private readonly sightings: Pick<Sightings, 'reserve'>,
    /** Is a warning under this key due (rate-limited)? */
    private readonly due: (key: string) => boolean,
  ) {}

  /** Counts one flush of records; `look` gets the reader positioned on each record to look at closer. */
  add(records: ArrayBuffer, length: number, debug: boolean, look: (r: OutcomeReader, why: Look) => void): void {
    // One clock read per flush: the budget's refill does not need finer time than the flush interval.
    const now = performance.now();
    const r = new OutcomeReader(records, length);
    while (r.next()) {
      const code = r.code;
      this.counts[code]!++;
      if (r.via === 'dhcp') this.dhcp++;
      else this.proxy++;
      let closer = debug && REPLY[code] === true;
      if (r.hasClient) {
        if (this.sightings.reserve(r.bytes, r.chaddrAt, now)) closer = true;
        else this.dropped++;
      }
      const warn = WARN_KEYS[code];
      if (warn !== undefined && this.due(warn)) {
        if (code === OVERSIZE) look(r, 'oversize');
        else closer = true;
      }
      if (closer) look(r, 'closer');
    }
  }

  reset(): void {
    this.counts.fill(0);
    this.dhcp = 0;
    this.proxy = 0;
    this.dropped = 0;
  }
}
