import type { DB } from './inventory/db.ts';
import type { DurableCommits } from './inventory/durable.ts';
import type { Machines } from './inventory/machines.ts';
import type { Timeline } from './inventory/timeline.ts';
import type { WriteBehind } from './inventory/writebehind.ts';
import type { HttpService } from './http/server.ts';
import type { Logger } from './log.ts';
import type { Registry } from './metrics.ts';
import type { ServedInterface } from './network.ts';
import type { CA } from './pki/ca.ts';
import type { Signer } from './pki/sign.ts';
import type { Secrets } from './secrets/index.ts';
import type { Settings } from './settings.ts';

/** Everything a service may use, built once by the daemon. Services never reach for globals. */
export interface Context {
  settings: Settings;
  log: Logger;
  /** Absolute data directory (0700). */
  dataDir: string;
  db: DB;
  machines: Machines;
  timeline: Timeline;
  writer: WriteBehind;
  /** Commits whose sync to disk happens off the event loop, shared by everything committing meanwhile. */
  durable: DurableCommits;
  metrics: Registry;
  /** The machine-facing HTTP server; add routes before the daemon starts it. */
  http: HttpService;
  /** The IPv4 address machines are told to use. */
  advertise: string;
  interfaces: ServedInterface[];
  /** heph's CA (<dataDir>/pki): issues server and client certificates. */
  ca: CA;
  /** Signs boot artefacts; undefined when signing.enabled is false. */
  signer: Signer | undefined;
  /** Encrypts secret columns at rest. */
  secrets: Secrets;
  /** `talos.config.early=…` carrying the CA, when tls.enabled (Talos then fetches its config over HTTPS). */
  talosTrustArg: string | undefined;
}
