import type { Command } from '../commands.ts';
import { parse, UsageError } from '../args.ts';

const PATHS = ['bios-ipxe', 'uefi-pxe', 'uefi-http'] as const;
type LabPath = (typeof PATHS)[number];

const USAGE = `usage: heph lab [--machines N] [--path bios-ipxe|uefi-pxe|uefi-http|mixed] [--port PORT] [--keep]

A netboot lab on this machine, for a first look at heph before real hardware (needs root, QEMU, OVMF, iPXE,
dnsmasq; run from a checkout). It builds the stand-in Talos payload (test/e2e/payload/build.sh, cached in
.cache/e2e/), creates network namespaces (site DHCP server, heph, a bridge for the machines), runs \`heph serve\`
from this checkout in its namespace and boots N QEMU machines (TCG) that netboot against it, fetch their config,
"install" it, report Talos events and kernel logs, reboot and are sent to their disk. Ctrl-C removes everything.
  --machines N   how many machines (1-8, default 1)
  --path P       firmware path: bios-ipxe (SeaBIOS + iPXE ROM, fastest), uefi-pxe (OVMF PXE + TFTP ipxe.efi),
                 uefi-http (OVMF UEFI HTTP Boot), or mixed (one after the other; default bios-ipxe)
  --port PORT    host port on 127.0.0.1 forwarded to heph's admin listener in its namespace
                 (default 9080; 0: any free port)
  --keep         keep the lab directory (logs, serial consoles, disks) after Ctrl-C`;

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, USAGE, { machines: { type: 'string', short: 'n' }, path: { type: 'string' }, port: { type: 'string' }, keep: { type: 'boolean' } });
  if (values.help) return (console.log(USAGE), 0);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"\n\n${USAGE}`);
  const count = Number(values.machines ?? 1);
  if (!Number.isInteger(count) || count < 1 || count > 8) throw new UsageError(`--machines must be 1..8\n\n${USAGE}`);
  const pathArg = String(values.path ?? 'bios-ipxe');
  if (pathArg !== 'mixed' && !(PATHS as readonly string[]).includes(pathArg)) throw new UsageError(`--path must be one of ${PATHS.join(', ')}, mixed\n\n${USAGE}`);
  const port = Number(values.port ?? 9080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a TCP port\n\n${USAGE}`);
  const paths: LabPath[] = Array.from({ length: count }, (_, i) => (pathArg === 'mixed' ? PATHS[i % PATHS.length]! : (pathArg as LabPath)));
  // The lab is test machinery from the checkout: loaded only when someone asks for it.
  const { runLab } = await import('../../test/e2e/lab/interactive.ts');
  return runLab({ paths, port, keep: values.keep === true });
}

export const labCommands: Command[] = [{ name: 'lab', summary: 'boot QEMU machines against a local heph in network namespaces (demo)', usage: USAGE, run }];
