import { parse, UsageError } from '../args.ts';
import type { Command } from '../commands.ts';
import { openInventory } from '../inventory/db.ts';
import { Machines } from '../inventory/machines.ts';
import { WriteBehind } from '../inventory/writebehind.ts';
import { SETTINGS_FLAGS, settingsFromFlags } from '../settings.ts';
import { IPV4 } from '../schema.ts';
import { summarize, type TalosEvent } from './model.ts';
import { FeedbackStore, type Owner } from './store.ts';

const COMMON = {
  ...SETTINGS_FLAGS,
  limit: { type: 'string', short: 'n' },
  json: { type: 'boolean' },
} as const;

const EVENTS_USAGE = `usage: heph events [--machine M] [-n N] [--json] [--config FILE] [--set path=value]...

Prints the Talos events heph received, oldest first: sequences, phases, services, stages, errors.
  --machine M   only this machine: its id, a MAC, the SMBIOS UUID, or an IP (events from an IP no machine is
                known at are listed under that IP)
  -n, --limit N the newest N events (default 200)
  --json        one JSON object per line`;

const KMSG_USAGE = `usage: heph kmsg <machine> [-n N] [--json] [--config FILE] [--set path=value]...

Prints the kernel log a machine sent (talos.logging.kernel), oldest first.
  <machine>     its id, a MAC, the SMBIOS UUID, or an IP (lines from an IP no machine is known at are kept
                under that IP)
  -n, --limit N the newest N lines (default 200)
  --json        one JSON object per line`;

function open(values: Record<string, unknown>): { store: FeedbackStore; machines: Machines; close(): void } {
  const { settings } = settingsFromFlags(values);
  const { db } = openInventory(settings.dataDir);
  // Read-only use: the writer is never given anything to write.
  const store = new FeedbackStore(db, new WriteBehind(db), { events: settings.grpc.keepPerMachine, kmsg: settings.kmsg.keepPerMachine });
  return { store, machines: new Machines(db), close: () => db.close() };
}

function limitOf(v: unknown, usage: string): number {
  if (v === undefined) return 200;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--limit: expected a whole number above 0, got "${String(v)}"\n\n${usage}`);
  return n;
}

/** A machine named by id, MAC, UUID or IP; an IP no machine is known at names the rows kept under it. */
function ownerOf(machines: Machines, name: string): Owner | undefined {
  const lower = name.toLowerCase();
  const m = machines.get(name) ?? machines.findByMac(lower.replaceAll('-', ':')) ?? machines.findByUuid(lower) ?? (IPV4.test(name) ? machines.findByIp(name) : undefined);
  if (m) return { machineId: m.id };
  return IPV4.test(name) ? { ip: name } : undefined;
}

const time = (ms: number): string => new Date(ms).toISOString();

async function events(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, EVENTS_USAGE, { ...COMMON, machine: { type: 'string', short: 'm' } });
  if (values.help) return (console.log(EVENTS_USAGE), 0);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"\n\n${EVENTS_USAGE}`);
  const limit = limitOf(values.limit, EVENTS_USAGE);
  const { store, machines, close } = open(values);
  try {
    let who: Owner | undefined;
    if (typeof values.machine === 'string') {
      who = ownerOf(machines, values.machine);
      if (!who) return (console.error(`heph: no machine "${values.machine}" (give its id, a MAC, its UUID or an IP)`), 1);
    }
    for (const e of store.events(who, limit)) {
      if (values.json) console.log(JSON.stringify(e));
      else {
        const what = e.type.startsWith('machine.') && Object.keys(e.data).length ? summarize(e.data as unknown as TalosEvent) : `${e.type} (not decoded)`;
        console.log(`${time(e.at)}  ${e.machineId ?? '-'} ${e.ip}  ${what}`);
      }
    }
    return 0;
  } finally {
    close();
  }
}

async function kmsg(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, KMSG_USAGE, COMMON);
  if (values.help) return (console.log(KMSG_USAGE), 0);
  const [name, ...rest] = positionals;
  if (name === undefined) throw new UsageError(`missing <machine>\n\n${KMSG_USAGE}`);
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"\n\n${KMSG_USAGE}`);
  const limit = limitOf(values.limit, KMSG_USAGE);
  const { store, machines, close } = open(values);
  try {
    const who = ownerOf(machines, name);
    if (!who) return (console.error(`heph: no machine "${name}" (give its id, a MAC, its UUID or an IP)`), 1);
    for (const l of store.kmsg(who, limit)) {
      if (values.json) console.log(JSON.stringify(l));
      else console.log(`${l.talosTime ?? time(l.at)} ${(l.priority ?? '-').padEnd(7)} ${l.service ? `[${l.service}] ` : ''}${l.msg}`);
    }
    return 0;
  } finally {
    close();
  }
}

export const eventsCommands: Command[] = [
  { name: 'events', summary: 'print the Talos events machines sent', usage: EVENTS_USAGE, run: events },
  { name: 'kmsg', summary: "print a machine's kernel log", usage: KMSG_USAGE, run: kmsg },
];
