import { parseArgs } from 'node:util';

// Kept apart from cli.ts so that module commands can use it without importing the CLI (and so its command list).

/** Thrown for a malformed command line: usage goes to stderr and the exit code is 2. */
export class UsageError extends Error {}

export type ParsedArgs = { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };

/** Strict flag parsing shared by every command: an unknown flag is a usage error (exit 2), never ignored. */
export function parse(argv: string[], usageText: string, extra: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {}): ParsedArgs {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: { help: { type: 'boolean', short: 'h' }, ...extra } });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${usageText}`);
  }
}
