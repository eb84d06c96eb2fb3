// Drives N simulated machines through the flow with bounded concurrency and collects what each saw.
import { protocEncode, INSTALL_RUN } from '../../test/helpers/talos-events.ts';
import { inPool } from '../lib.ts';
import { bootOnce, identity, StepError, type MachineIdentity, type Relay, type Step, type Target, type Trace } from './machine.ts';
import { machineIp } from './lab.ts';

const ID_PLACEHOLDER = 'XXXXXXXXXXXXXXXXXXXX';

/**
 * The first Talos install events (sequence initialize, machine status, phases), encoded once by protoc with a
 * placeholder id that each machine overwrites with its own.
 */
export function stormEvents(count = 4): Target['events'] {
  return INSTALL_RUN.slice(0, count).map(([type, text]) => {
    const bytes = protocEncode('events.EventRequest', `data { [type.googleapis.com/machine.${type}] { ${text} } } id: "${ID_PLACEHOLDER}"`);
    return { bytes, idAt: bytes.indexOf(ID_PLACEHOLDER, 0, 'latin1') };
  });
}

export interface MachineResult {
  m: MachineIdentity;
  trace: Trace;
  /** Failed attempts, each with the step and reason. */
  failures: { step: Step; message: string }[];
  done: boolean;
}

export interface StormOptions {
  n: number;
  /** The first machine's index (identity and address): a warm-up's machines follow the measured ones. */
  first?: number;
  /** Machine i's source address (default: the lab's i-th). */
  ipOf?: (index: number) => string;
  concurrency: number;
  relay: Relay;
  target: Target;
  runId: string;
  /** Keep retrying a machine from DHCP (as firmware does after a failed boot) until this time; else one attempt. */
  retryUntil?: number;
  retryDelayMs?: number;
  /** Called after each machine's attempt, finished or not (the fault tests watch progress with it). */
  onProgress?: (r: MachineResult) => void;
}

export async function runStorm(o: StormOptions): Promise<MachineResult[]> {
  const first = o.first ?? 0;
  const ipOf = o.ipOf ?? machineIp;
  const results: MachineResult[] = Array.from({ length: o.n }, (_, i) => ({ m: identity(first + i, ipOf(first + i)), trace: { ms: {}, bytes: {} }, failures: [], done: false }));
  await inPool(results, o.concurrency, async (r) => {
    for (let attempt = 0; ; attempt++) {
      try {
        r.trace = await bootOnce(r.m, o.relay, o.target, attempt, o.runId, { ms: {}, bytes: {} });
        r.done = true;
      } catch (err) {
        const e = err instanceof StepError ? err : new StepError('dhcp-pxe', (err as Error).message);
        r.failures.push({ step: e.step, message: e.message });
      }
      o.onProgress?.(r);
      if (r.done || o.retryUntil === undefined || Date.now() > o.retryUntil) break;
      await new Promise((res) => setTimeout(res, o.retryDelayMs ?? 500));
    }
  });
  return results;
}
