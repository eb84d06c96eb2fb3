import { parse, UsageError, type ParsedArgs } from '../args.ts';
import { openInventory, type DB } from '../inventory/db.ts';
import { Machines, type Machine } from '../inventory/machines.ts';
import { parseMac, parseUuid } from '../ipxe/identity.ts';
import { SETTINGS_FLAGS, settingsFromFlags, type Settings } from '../settings.ts';

export interface Inventory {
  settings: Settings;
  db: DB;
  dataDir: string;
  machines: Machines;
}

/** Opens the daemon's inventory (WAL: safe next to a running `heph serve`), runs `fn`, closes it. */
export async function withInventory<T>(values: ParsedArgs['values'], fn: (inv: Inventory) => Promise<T> | T): Promise<T> {
  const { settings } = settingsFromFlags(values);
  const { db, file } = openInventory(settings.dataDir);
  try {
    return await fn({ settings, db, dataDir: file.slice(0, file.lastIndexOf('/')), machines: new Machines(db) });
  } finally {
    db.close();
  }
}

/** A machine named by its heph id, a MAC or a UUID. */
export function findMachine(machines: Machines, ref: string): Machine {
  const mac = parseMac(ref);
  const uuid = parseUuid(ref);
  const m = ref.startsWith('m-') ? machines.get(ref) : mac ? machines.findByMac(mac) : uuid.ok && uuid.uuid ? machines.findByUuid(uuid.uuid) : undefined;
  if (!m) throw new UsageError(`no machine ${JSON.stringify(ref)} (give its id m-…, a MAC or a UUID; \`heph machines list\` shows them)`);
  return m;
}

/** Parses `<sub> [args…]` with the shared settings flags plus `extra`. */
export function subcommand(argv: string[], usage: string, extra: Parameters<typeof parse>[2] = {}): { sub: string | undefined; args: string[]; values: ParsedArgs['values'] } {
  const { values, positionals } = parse(argv, usage, { ...SETTINGS_FLAGS, ...extra });
  const [sub, ...args] = positionals;
  return { sub, args, values };
}

export function need(args: string[], n: number, usage: string): void {
  if (args.length < n) throw new UsageError(`missing argument\n\n${usage}`);
  if (args.length > n) throw new UsageError(`unexpected argument "${args[n]}"\n\n${usage}`);
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z'));
