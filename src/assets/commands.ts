import { need, subcommand, table, withInventory, iso } from '../boot/cli-support.ts';
import { UsageError } from '../args.ts';
import type { Command } from '../commands.ts';
import { importRelease, ImportError } from './import.ts';
import { AssetStore } from './store.ts';

const USAGE = `usage: heph assets <subcommand> [--config FILE] [--set path=value]...

  import DIR|URL [--version v1.x.y] [--arch amd64,arm64]
                 import a Talos release's vmlinuz-<arch> and initramfs-<arch>.xz, checked against its
                 sha512sum.txt, e.g. https://github.com/siderolabs/talos/releases/download/v1.13.9
                 (the version is read from the path when it names one)
  list           imported assets
  verify         re-hash every asset against its SHA-512; exit 1 if one does not match
  --config FILE, --set path=value   the settings \`heph serve\` uses (dataDir)`;

const MiB = 1024 * 1024;

export const assetsCommand: Command = {
  name: 'assets',
  summary: 'import, list and verify Talos kernels and initramfs images',
  usage: USAGE,
  async run(argv) {
    const { sub, args, values } = subcommand(argv, USAGE, { version: { type: 'string' }, arch: { type: 'string' } });
    if (values.help) return (console.log(USAGE), 0);
    return withInventory(values, async (inv) => {
      switch (sub) {
        case 'import': {
          need(args, 1, USAGE);
          const arches = typeof values.arch === 'string' ? values.arch.split(',').map((a) => a.trim()).filter(Boolean) : [];
          for (const a of arches) if (a !== 'amd64' && a !== 'arm64') throw new UsageError(`--arch: ${a} is not a Talos arch (amd64, arm64)`);
          const shown = new Map<string, number>();
          const tty = process.stderr.isTTY;
          try {
            const done = await importRelease({
              db: inv.db,
              dataDir: inv.dataDir,
              source: args[0]!,
              version: typeof values.version === 'string' ? values.version : undefined,
              arches,
              progress(name, n, total) {
                const line = `${name}: ${(n / MiB).toFixed(0)}${total ? `/${(total / MiB).toFixed(0)} MiB (${Math.floor((100 * n) / total)}%)` : ' MiB'}`;
                // A terminal gets a live line; a log file gets a line each time another 10 % is done.
                if (tty) process.stderr.write(`\r${line}   `);
                else if (total) {
                  const tenth = Math.floor((10 * n) / total);
                  if (tenth > (shown.get(name) ?? 0)) {
                    shown.set(name, tenth);
                    process.stderr.write(`${line}\n`);
                  }
                }
              },
            });
            if (tty) process.stderr.write('\n');
            for (const a of done) console.log(`imported ${a.name} (${a.arch}, ${(a.size / MiB).toFixed(1)} MiB) sha512 ${a.id.slice(0, 16)}… verified`);
            return 0;
          } catch (err) {
            if (err instanceof ImportError) {
              console.error(`heph: import failed: ${err.message}`);
              return 1;
            }
            throw err;
          }
        }
        case 'list': {
          need(args, 0, USAGE);
          const rows = new AssetStore(inv.db, inv.dataDir).list().map((a) => [a.version, a.arch, a.name, `${(a.size / MiB).toFixed(1)} MiB`, `${a.id.slice(0, 16)}…`, iso(a.importedAt)]);
          console.log(table([['VERSION', 'ARCH', 'NAME', 'SIZE', 'SHA512', 'IMPORTED'], ...rows]));
          return 0;
        }
        case 'verify': {
          need(args, 0, USAGE);
          const store = new AssetStore(inv.db, inv.dataDir);
          let bad = 0;
          for (const a of store.list()) {
            const problem = await store.problem(a);
            if (problem) bad++;
            console.log(`${problem ? 'BAD' : 'ok '} ${a.version} ${a.name}${problem ? `: ${problem}` : ''}`);
          }
          await store.close();
          return bad ? 1 : 0;
        }
        default:
          throw new UsageError(`${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\n${USAGE}`);
      }
    });
  },
};
