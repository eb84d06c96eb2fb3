import type { Context } from '../context.ts';
import { StartupError } from '../errors.ts';
import { ipxeBinaries } from '../ipxe/binaries.ts';
import { disabledService, type Service } from '../service.ts';
import { FileTable } from './files.ts';
import { tftpMetrics } from './metrics.ts';
import { TftpServer, type EndReason, type TransferInfo, type TransferReporter } from './server.ts';

export { FileTable } from './files.ts';
export { TftpServer } from './server.ts';

/**
 * The addresses TFTP listens on. Node cannot tell which local address a datagram on a 0.0.0.0 socket was sent
 * to, so heph listens on each address separately and answers every transfer from the one its request used.
 */
export function tftpAddresses(ctx: Pick<Context, 'settings' | 'interfaces' | 'advertise'>): string[] {
  const configured = ctx.settings.tftp.addresses;
  const chosen = configured.length > 0 ? configured : [...ctx.interfaces.map((i) => i.address), ctx.advertise, '127.0.0.1'];
  if (chosen.includes('0.0.0.0')) {
    throw new StartupError(
      'tftp.addresses: 0.0.0.0 cannot be used: every transfer must answer from the address its request arrived on.',
      'List the server addresses machines use (e.g. [192.0.2.10]), or leave tftp.addresses empty to use network.interfaces and network.advertiseAddress.',
    );
  }
  return [...new Set(chosen)];
}

/** EDK2 asks for the size and then ends the transfer on purpose: say so rather than call it an abort. */
function message(t: TransferInfo, how: { reason: EndReason; detail?: string; bytes: number; ms: number }): string {
  if (how.reason === 'done') return `TFTP ${t.file} sent in ${how.ms} ms`;
  if (how.reason === 'client-ended' && how.bytes === 0 && t.options.tsize !== undefined) return `TFTP ${t.file} size asked (${t.size} bytes); the client ended that request (${how.detail})`;
  return `TFTP ${t.file} ${how.reason}${how.detail ? `: ${how.detail}` : ''}`;
}

/**
 * The TFTP service. Its file table starts with the iPXE binaries (checked at start: a missing one stops
 * startup); other modules may `files.register(name, pathOrBytes)` more names (narrow with `instanceof TftpServer`).
 * Nothing outside the table is served.
 */
export function createTftpService(ctx: Context): Service {
  const s = ctx.settings.tftp;
  if (!s.enabled) return disabledService('tftp', 'tftp.enabled is false');
  const log = ctx.log.child({ svc: 'tftp' });
  const files = new FileTable();
  // The machine is looked up once per transfer, at its start; the log lines carry the same fields forMachine adds,
  // without a child logger per transfer (at 50 transfers at once, that was a visible share of the main thread).
  const machines = new WeakMap<TransferInfo, string | null>();
  const who = (t: TransferInfo): Record<string, string> => {
    const machine = machines.get(t);
    return machine ? { ip: t.client, machine } : { ip: t.client };
  };
  const reporter: TransferReporter = {
    started(t) {
      const machine = ctx.machines.idByIp(t.client) ?? null;
      machines.set(t, machine);
      if (log.isLevelEnabled('debug')) log.debug({ ...who(t), file: t.file, size: t.size, blksize: t.blksize, windowsize: t.windowsize, options: t.options }, 'TFTP transfer started');
      ctx.timeline.append({
        machineId: machine,
        kind: 'tftp.start',
        source: 'tftp',
        ip: t.client,
        message: `TFTP ${t.file} started (${t.size} bytes, blksize ${t.blksize}, windowsize ${t.windowsize})`,
        data: { file: t.file, size: t.size, blksize: t.blksize, windowsize: t.windowsize, options: t.options, server: t.local },
      });
    },
    ended(t, how) {
      const fields = { ...who(t), file: t.file, reason: how.reason, detail: how.detail, bytes: how.bytes, ms: how.ms };
      if (how.reason === 'done') log.info(fields, 'TFTP transfer done');
      else if (how.reason === 'client-ended' || how.reason === 'stopped') log.debug(fields, 'TFTP transfer ended early');
      else log.warn(fields, 'TFTP transfer aborted');
      ctx.timeline.append({
        machineId: machines.get(t) ?? null,
        kind: how.reason === 'done' ? 'tftp.done' : 'tftp.abort',
        source: 'tftp',
        ip: t.client,
        message: message(t, how),
        data: { file: t.file, reason: how.reason, bytes: how.bytes, ms: how.ms, ...(how.detail ? { detail: how.detail } : {}) },
      });
    },
  };
  return new TftpServer(
    {
      addresses: tftpAddresses(ctx),
      port: s.port,
      maxBlksize: s.maxBlksize,
      maxWindowsize: s.maxWindowsize,
      retryTimeoutMs: s.retryTimeoutMs,
      retries: s.retries,
      busyPollMicros: s.busyPollMicros,
      priorityBoost: ctx.settings.threads.packetPriority,
      maxTransfers: s.maxTransfers,
      maxTransfersPerClient: s.maxTransfersPerClient,
    },
    files,
    log,
    tftpMetrics(ctx.metrics),
    reporter,
    () => {
      for (const b of ipxeBinaries(ctx.settings)) files.register(b.name, b.path);
    },
  );
}
