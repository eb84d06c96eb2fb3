import { readFileSync } from 'node:fs';
import { parse, UsageError } from './args.ts';
import { moduleCommands, type Command } from './commands.ts';
import { startDaemon } from './daemon.ts';
import { StartupError } from './errors.ts';
import { createLogger } from './log.ts';
import { exampleSettings, SETTINGS_FLAGS, SettingsError, settingsFromFlags } from './settings.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const SERVE_USAGE = `usage: heph serve [--config FILE] [--set path=value]...

Runs the daemon: proxy-DHCP, TFTP, iPXE scripts, configs, inventory and event sink, as the settings say.
  --config FILE       settings file (default: ./heph.yaml if it exists, else built-in defaults; env HEPH_CONFIG)
  --set path=value    override one setting, e.g. --set http.port=9080 (repeatable)
Every setting can also come from an environment variable: see \`heph settings example\`.`;

const SETTINGS_USAGE = `usage: heph settings example | check [--config FILE] | show [--config FILE]

  example   print a complete settings file with every default, explained
  check     validate the settings (file, HEPH_* environment, --set) and say what is wrong
  show      print the effective settings as YAML`;

export const builtinCommands: Command[] = [
  { name: 'serve', summary: 'run the daemon', usage: SERVE_USAGE, run: serve },
  { name: 'settings', summary: 'print an example settings file, check or show the settings', usage: SETTINGS_USAGE, run: settingsCommand },
];

function commands(): Command[] {
  return [...builtinCommands, ...moduleCommands];
}

function usage(): string {
  const lines = commands().map((c) => `  ${c.name.padEnd(10)} ${c.summary}`);
  return `heph ${VERSION}: netboots bare-metal machines into Talos Linux and keeps their inventory.

usage: heph <command> [options]

commands:
${lines.join('\n')}

  heph --help, heph <command> --help, heph --version`;
}

async function serve(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, SERVE_USAGE, SETTINGS_FLAGS);
  if (values.help) return (console.log(SERVE_USAGE), 0);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"\n\n${SERVE_USAGE}`);
  const { settings, file } = settingsFromFlags(values);
  const log = createLogger(settings);
  log.info({ version: VERSION, settings: file ?? 'built-in defaults' }, 'heph starting');
  const daemon = await startDaemon(settings, log);
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      // A second signal means "now": the operator has given up waiting.
      process.once(sig, () => process.exit(130));
      void daemon.stop(`received ${sig}`).then(resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  return 0;
}

async function settingsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, SETTINGS_USAGE, SETTINGS_FLAGS);
  if (values.help) return (console.log(SETTINGS_USAGE), 0);
  const [sub, ...rest] = positionals;
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"\n\n${SETTINGS_USAGE}`);
  switch (sub) {
    case 'example':
      process.stdout.write(exampleSettings());
      return 0;
    case 'check': {
      const { file } = settingsFromFlags(values);
      console.log(`settings OK (${file ?? 'built-in defaults'})`);
      return 0;
    }
    case 'show': {
      const { stringify } = await import('yaml');
      process.stdout.write(stringify(settingsFromFlags(values).settings));
      return 0;
    }
    default:
      throw new UsageError(`${sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`}\n\n${SETTINGS_USAGE}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  try {
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      if (first === undefined) throw new UsageError('missing command');
      console.log(usage());
      return 0;
    }
    if (first === '--version' || first === '-V' || first === 'version') {
      console.log(VERSION);
      return 0;
    }
    const cmd = commands().find((c) => c.name === first);
    if (!cmd) throw new UsageError(`unknown ${first.startsWith('-') ? 'option' : 'command'} "${first}"`);
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`heph: ${err.message.includes('usage:') ? err.message : `${err.message}\n\n${usage()}`}`);
      return 2;
    }
    if (err instanceof SettingsError) {
      console.error(`heph: ${err.message}`);
      return 1;
    }
    if (err instanceof StartupError) {
      console.error(`heph: ${err.message}${err.hint ? `\n  fix: ${err.hint}` : ''}`);
      return 1;
    }
    console.error(`heph: unexpected error: ${(err as Error).stack ?? String(err)}`);
    return 1;
  }
}
