import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { Settings } from './settings.ts';

export type { Logger };

/** Fields every log line about a machine carries, so one grep follows a machine through DHCP, TFTP, HTTP and gRPC. */
export interface MachineFields {
  mac?: string | undefined;
  uuid?: string | undefined;
  ip?: string | undefined;
  machine?: string | undefined;
}

// Defence in depth: code never logs secrets on purpose, and these paths catch the accidents.
const REDACT = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'config',
  '*.config',
  'body',
  '*.body',
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
  'secret',
  '*.secret',
];

export function createLogger(s: Pick<Settings, 'log'>, destination?: NodeJS.WritableStream): Logger {
  const opts: pino.LoggerOptions = {
    level: s.log.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  };
  if (s.log.format === 'pretty') {
    return pino(opts, pretty({ colorize: process.stdout.isTTY, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination: destination ?? 1 }));
  }
  return pino(opts, destination ?? batchedStdout());
}

/** Longest a line waits in the buffer. */
const FLUSH_MS = 100;

/**
 * stdout, written synchronously but in batches of 4 KiB or every FLUSH_MS, and at exit. A write per line cost the
 * boot storm 5% of the main thread: each one woke the reader of the pipe (journald, a supervisor), which on a busy
 * machine took the CPU from heph then and there. What a kill -9 can lose is the last FLUSH_MS of lines.
 */
function batchedStdout(): pino.DestinationStream {
  const dest = pino.destination({ dest: 1, sync: true, minLength: 4096 });
  const flush = (): void => {
    try {
      dest.flushSync();
    } catch {
      // stdout is gone (EPIPE) or not ready yet: nothing to do about it from here.
    }
  };
  setInterval(flush, FLUSH_MS).unref();
  process.on('exit', flush);
  return dest;
}

/** A child logger for one machine; undefined fields are left out rather than logged as null. */
export function forMachine(log: Logger, fields: MachineFields): Logger {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== '') clean[k] = v;
  return log.child(clean);
}
