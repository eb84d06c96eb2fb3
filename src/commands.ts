import { adminCertCommand, tokensCommand } from './api/commands.ts';
import { assetsCommand } from './assets/commands.ts';
import { machinesCommand, profilesCommand } from './boot/commands.ts';
import { eventsCommands } from './events/commands.ts';
import { labCommands } from './lab/command.ts';
import { pkiCommand } from './pki/commands.ts';

/**
 * Subcommands contributed by the capability modules (machines, profiles, assets, tokens …). Each module exports
 * its own list; cli.ts dispatches on the first word.
 */
export interface Command {
  name: string;
  summary: string;
  /** Full usage text for `heph NAME --help`. */
  usage: string;
  run(argv: string[]): Promise<number>;
}

export const moduleCommands: Command[] = [machinesCommand, profilesCommand, assetsCommand, ...eventsCommands, tokensCommand, adminCertCommand, ...labCommands, pkiCommand];
