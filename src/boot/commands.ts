import { stringify } from 'yaml';
import { AssetStore } from '../assets/store.ts';
import { UsageError } from '../args.ts';
import type { Command } from '../commands.ts';
import { renderConfig } from '../configserve/render.ts';
import { BootTokens } from '../configserve/tokens.ts';
import { audit } from '../inventory/audit.ts';
import { MACHINE_STATES, type Machine, type MachineState } from '../inventory/machines.ts';
import { Timeline } from '../inventory/timeline.ts';
import { WriteBehind } from '../inventory/writebehind.ts';
import { findMachine, iso, need, subcommand, table, withInventory, type Inventory } from './cli-support.ts';
import { decideBoot } from './decide.ts';
import { loadCatalog, profileAssets, type Catalog } from './profiles.ts';
import { chooseProfile } from './selectors.ts';

const SETTINGS_HELP = '  --config FILE, --set path=value   the settings `heph serve` uses (dataDir, profiles.dir)';

const MACHINES_USAGE = `usage: heph machines <subcommand> [--config FILE] [--set path=value]...

  list [--state STATE]          machines in the inventory
  show MACHINE                  one machine, its profile (and why) and its recent timeline
  accept MACHINE                allow it to be installed (it gets an install script and a config token)
  reject MACHINE                never provision it (it is told to boot from its disk); revokes its tokens
  reprovision MACHINE           reinstall it at its next network boot, wiping the install disk
  assign MACHINE PROFILE|-      pin a profile (wins over selectors); - removes the pin
MACHINE is a heph id (m-…), a MAC or a UUID.
${SETTINGS_HELP}`;

const PROFILES_USAGE = `usage: heph profiles <subcommand> [--config FILE] [--set path=value]...

  list                          profiles and the selectors that pick them
  show NAME                     one profile (its config is not printed: it holds cluster secrets)
  validate                      load every profile and selector and render each profile's config; exit 1 on a problem
  which MACHINE                 which profile a machine gets, why, and what its next boot would do
${SETTINGS_HELP}`;

function change(inv: Inventory, m: Machine, action: string, message: string, patch: Parameters<Inventory['machines']['update']>[1]): void {
  inv.db.transaction(() => {
    inv.machines.update(m.id, patch);
    audit(inv.db, { actor: 'cli', action, machineId: m.id, detail: patch as Record<string, unknown> });
    new Timeline(inv.db, new WriteBehind(inv.db)).appendNow({ machineId: m.id, kind: action, source: 'cli', message });
  }).immediate();
}

export const machinesCommand: Command = {
  name: 'machines',
  summary: 'list, show, accept, reject or reprovision machines',
  usage: MACHINES_USAGE,
  async run(argv) {
    const { sub, args, values } = subcommand(argv, MACHINES_USAGE, { state: { type: 'string' } });
    if (values.help) return (console.log(MACHINES_USAGE), 0);
    return withInventory(values, async (inv) => {
      switch (sub) {
        case 'list': {
          need(args, 0, MACHINES_USAGE);
          const state = values.state as string | undefined;
          if (state !== undefined && !(MACHINE_STATES as readonly string[]).includes(state)) throw new UsageError(`--state must be one of ${MACHINE_STATES.join(', ')}`);
          const rows = inv.machines.list({ ...(state ? { state: state as MachineState } : {}), limit: 100000 });
          console.log(table([['ID', 'STATE', 'ACCEPTANCE', 'MACS', 'UUID', 'HOSTNAME', 'PROFILE', 'IP', 'LAST SEEN'], ...rows.map((m) => [m.id, m.state + (m.reprovision ? '*' : ''), m.acceptance, m.macs.join(',') || '-', m.uuid ?? '-', m.hostname ?? '-', m.profile ?? '-', m.lastIp ?? '-', iso(m.lastSeen)])]));
          return 0;
        }
        case 'show': {
          need(args, 1, MACHINES_USAGE);
          const m = findMachine(inv.machines, args[0]!);
          const catalog = loadCatalog(inv.settings.profiles.dir || undefined, inv.db);
          const choice = chooseProfile(m, catalog.selectors);
          const events = new Timeline(inv.db, new WriteBehind(inv.db)).list(m.id).slice(-20);
          process.stdout.write(
            stringify({
              ...m,
              firstSeen: iso(m.firstSeen),
              lastSeen: iso(m.lastSeen),
              updatedAt: iso(m.updatedAt),
              wouldGet: { profile: choice.profile, why: choice.reason },
              timeline: events.map((e) => `${iso(e.at)} ${e.kind} ${e.message}`),
            }),
          );
          return 0;
        }
        case 'accept':
        case 'reject':
        case 'reprovision': {
          need(args, 1, MACHINES_USAGE);
          const m = findMachine(inv.machines, args[0]!);
          if (sub === 'accept') change(inv, m, 'machine.accept', 'accepted by an operator (cli)', { acceptance: 'accepted' });
          else if (sub === 'reject') {
            change(inv, m, 'machine.reject', 'rejected by an operator (cli)', { acceptance: 'rejected' });
            new BootTokens(inv.db).revokeMachine(m.id);
          } else {
            if (m.acceptance !== 'accepted') throw new UsageError(`${m.id} is ${m.acceptance}: accept it first (heph machines accept ${m.id})`);
            change(inv, m, 'machine.reprovision', 'reprovision requested (cli): next network boot reinstalls and wipes the disk', { reprovision: true });
          }
          console.log(`${m.id}: ${sub === 'reprovision' ? 'will be reinstalled at its next network boot' : `${sub}ed`}`);
          return 0;
        }
        case 'assign': {
          need(args, 2, MACHINES_USAGE);
          const m = findMachine(inv.machines, args[0]!);
          const name = args[1]!;
          if (name !== '-' && !loadCatalog(inv.settings.profiles.dir || undefined, inv.db).profiles.has(name)) throw new UsageError(`no profile named ${name} (heph profiles list)`);
          change(inv, m, 'machine.assign', name === '-' ? 'profile pin removed (cli)' : `profile ${name} assigned (cli)`, { profile: name === '-' ? null : name });
          console.log(`${m.id}: ${name === '-' ? 'profile pin removed' : `pinned to profile ${name}`}`);
          return 0;
        }
        default:
          throw new UsageError(`${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\n${MACHINES_USAGE}`);
      }
    });
  },
};

/** Renders each profile against a sample machine: what Talos would reject shows now, not at the first boot. */
export function validateCatalog(c: Catalog): string[] {
  const problems = [...c.errors];
  for (const p of c.profiles.values()) {
    const r = renderConfig({
      base: p.base,
      patches: p.patches,
      machine: { hostname: 'validate-example', ...(p.install.disk ? { installDisk: p.install.disk } : {}), ...(p.install.diskSelector ? { installDiskSelector: p.install.diskSelector } : {}), labels: {} },
    });
    if (!r.ok) problems.push(...r.errors.map((e) => `profile ${p.name} (${p.source}): ${e}`));
  }
  return problems;
}

export const profilesCommand: Command = {
  name: 'profiles',
  summary: 'list, show and validate profiles; which profile a machine gets',
  usage: PROFILES_USAGE,
  async run(argv) {
    const { sub, args, values } = subcommand(argv, PROFILES_USAGE);
    if (values.help) return (console.log(PROFILES_USAGE), 0);
    return withInventory(values, async (inv) => {
      const catalog = loadCatalog(inv.settings.profiles.dir || undefined, inv.db);
      switch (sub) {
        case 'list': {
          need(args, 0, PROFILES_USAGE);
          const rows = [...catalog.profiles.values()].map((p) => [p.name, p.talosVersion, p.arch ?? 'machine', catalog.selectors.filter((s) => s.profile === p.name).map((s) => s.name + (s.autoAccept ? '(auto-accept)' : '')).join(',') || '-', p.source]);
          console.log(table([['NAME', 'TALOS', 'ARCH', 'SELECTORS', 'SOURCE'], ...rows]));
          for (const e of catalog.errors) console.error(`invalid: ${e}`);
          return 0;
        }
        case 'show': {
          need(args, 1, PROFILES_USAGE);
          const p = catalog.profiles.get(args[0]!);
          if (!p) throw new UsageError(`no profile named ${args[0]} (heph profiles list)`);
          process.stdout.write(
            stringify({
              name: p.name,
              source: p.source,
              talosVersion: p.talosVersion,
              arch: p.arch ?? 'from the machine',
              kernelArgs: p.kernelArgs,
              install: p.install,
              baseConfig: `${p.base.split('\n').length} lines (not shown: it holds cluster secrets)`,
              patches: p.patches.length,
              selectors: catalog.selectors.filter((s) => s.profile === p.name).map((s) => ({ name: s.name, match: s.match, autoAccept: s.autoAccept })),
            }),
          );
          return 0;
        }
        case 'validate': {
          need(args, 0, PROFILES_USAGE);
          const problems = validateCatalog(catalog);
          for (const e of problems) console.error(`heph: ${e}`);
          if (problems.length) return 1;
          console.log(`${catalog.profiles.size} profile(s) and ${catalog.selectors.length} selector(s) OK`);
          return 0;
        }
        case 'which': {
          need(args, 1, PROFILES_USAGE);
          const m = findMachine(inv.machines, args[0]!);
          const choice = chooseProfile(m, catalog.selectors);
          const profile = choice.profile ? catalog.profiles.get(choice.profile) : undefined;
          console.log(`${m.id}: ${profile ? `profile ${profile.name}` : 'no profile'} — ${choice.reason}${choice.profile && !profile ? `, but profile ${choice.profile} does not exist` : ''}`);
          const store = new AssetStore(inv.db, inv.dataDir);
          const files = profile ? await profileAssets(store, profile, m.arch) : undefined;
          await store.close();
          const d = decideBoot(m, profile ? { name: profile.name, assetsProblem: files && 'problem' in files ? files.problem : undefined, autoAccept: choice.autoAccept } : null, inv.settings.boot, Date.now());
          console.log(`next network boot: ${d.action} — ${d.reason}`);
          return 0;
        }
        default:
          throw new UsageError(`${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\n${PROFILES_USAGE}`);
      }
    });
  },
};
