import { createAdminGrpcService, createApiService } from './api/index.ts';
import { createDhcpService } from './dhcp/index.ts';
import type { Context } from './context.ts';
import { StartupError } from './errors.ts';
import { createEventsService } from './events/index.ts';
import { feedbackDocuments, feedbackKernelArgs } from './events/talos-docs.ts';
import { startFilePump, stopFilePump } from './http/sendfile.ts';
import { HttpService, MACHINE_KEEP_ALIVE_MS, registerOpsRoutes } from './http/server.ts';
import { assetFile } from './assets/serve.ts';
import { createBootService } from './ipxe/index.ts';
import { openInventory } from './inventory/db.ts';
import { Machines } from './inventory/machines.ts';
import { Timeline } from './inventory/timeline.ts';
import { Checkpointer } from './inventory/checkpoint.ts';
import { DurableCommits } from './inventory/durable.ts';
import { WriteBehind } from './inventory/writebehind.ts';
import type { Logger } from './log.ts';
import { counter, createRegistry } from './metrics.ts';
import { advertiseAddress, servedInterfaces } from './network.ts';
import { HttpsService } from './pki/https.ts';
import { openTrust, talosReadsEarlyConfig, trustServices, type Trust } from './pki/index.ts';
import type { Service } from './service.ts';
import type { Settings } from './settings.ts';
import { createTftpService } from './tftp/index.ts';

export interface Daemon {
  ctx: Context;
  services: Service[];
  stop(reason?: string): Promise<void>;
}

/** How often the WAL is checkpointed (inventory/checkpoint.ts): a storm writes a few MB of WAL a second. */
const CHECKPOINT_INTERVAL_MS = 1000;

/**
 * Composes and starts every service. Either all of them are up when this resolves, or it rejects with a
 * StartupError after closing whatever had been opened (services in reverse order, then the database).
 */
export async function startDaemon(settings: Settings, log: Logger): Promise<Daemon> {
  const interfaces = servedInterfaces(settings);
  const { db, file, applied } = openInventory(settings.dataDir);
  const dataDir = file.slice(0, file.lastIndexOf('/'));
  for (const m of applied) log.info({ migration: m.name }, 'database migrated');
  const metrics = createRegistry();
  const writeErrors = counter(metrics, 'heph_inventory_write_errors_total', 'Buffered inventory writes that failed (retried when the disk was the cause).');
  const writesDropped = counter(metrics, 'heph_inventory_writes_dropped_total', 'Buffered inventory writes dropped because too many waited for the disk.');
  const durable = new DurableCommits(db);
  const writer = new WriteBehind(db, {
    // Nothing waits for these rows to be on disk: the commit only asks for the next shared sync.
    commit: (batch) =>
      void durable.alone(batch).durable.catch((err: unknown) => {
        writeErrors.inc();
        log.error({ err }, 'buffered inventory writes were committed but could not be synced to disk');
      }),
    onError: (err) => {
      writeErrors.inc();
      log.error({ err }, 'a buffered inventory write failed');
    },
    onDrop: (n) => {
      writesDropped.inc(n);
      log.error({ dropped: n }, 'inventory writes dropped: the disk has refused them for too long');
    },
  });
  const checkpointErrors = counter(metrics, 'heph_inventory_checkpoint_errors_total', 'WAL checkpoints that failed (the WAL grows until one succeeds).');
  const checkpointer = new Checkpointer(
    db,
    { file, intervalMs: CHECKPOINT_INTERVAL_MS },
    {
      failed: (message, first) => {
        checkpointErrors.inc();
        if (first) log.error({ err: message }, 'the database WAL cannot be checkpointed: it grows until this clears');
      },
      recovered: () => log.warn('the database WAL is checkpointed again'),
      died: (err, retryMs) => log.error({ err: err.message, retryMs }, 'the WAL checkpoint thread died; it is started again'),
      restarted: () => log.warn('the WAL checkpoint thread is back'),
    },
  );
  const http = new HttpService({ name: 'http', listen: settings.http.listen, port: settings.http.port, portSetting: 'http.port', keepAliveMs: MACHINE_KEEP_ALIVE_MS, log, onError: (err) => writer.noteInlineFailure(err) });
  let trust: Trust;
  try {
    trust = await openTrust(settings, dataDir, db, log);
  } catch (err) {
    db.close();
    throw err;
  }
  const ctx: Context = {
    settings,
    log,
    dataDir,
    db,
    machines: new Machines(db),
    timeline: new Timeline(db, writer),
    writer,
    durable,
    metrics,
    http,
    advertise: advertiseAddress(settings, interfaces),
    interfaces,
    ...trust,
  };

  let services: Service[] = [];
  const closeDb = async (): Promise<void> => {
    writer.flush();
    writer.close();
    if (writer.pending > 0) log.error({ pending: writer.pending, reason: writer.stalled }, 'inventory writes could not be saved before exit');
    await durable.close();
    await checkpointer.stop();
    // Closing the last connection checkpoints the WAL with synchronous=FULL: whatever is committed is on disk.
    db.close();
  };
  try {
    await checkpointer.start().catch((err: unknown) => {
      throw new StartupError(`the database's WAL checkpoint thread could not start: ${(err as Error).message}`, undefined, { cause: err });
    });
    await startFilePump().catch((err: unknown) => {
      throw new StartupError(`the sendfile thread could not start: ${(err as Error).message}`, undefined, { cause: err });
    });
    // DHCP goes last: machines are only pointed at heph once everything they will ask for is listening.
    const events = createEventsService(ctx);
    // Rendered per install script and config, after start: the ports are the bound ones even when settings say 0.
    const boot = createBootService(ctx, {
      kernelArgs: () => feedbackKernelArgs(events.ports, ctx.advertise),
      configDocuments: () => feedbackDocuments(events.ports, ctx.advertise),
      configOverTls: (talosVersion) => (https && ctx.talosTrustArg && talosReadsEarlyConfig(talosVersion) ? { base: `https://${ctx.advertise}:${https.port}`, kernelArgs: [ctx.talosTrustArg] } : undefined),
    });
    const trusted = trustServices(ctx, { resolveAsset: (path) => assetFile(boot.assets, ctx.dataDir, path) });
    const https = trusted.find((s): s is HttpsService => s instanceof HttpsService);
    services = [http, ...trusted, createApiService(ctx), createAdminGrpcService(ctx), events, createTftpService(ctx), boot, createDhcpService(ctx)];
  } catch (err) {
    await stopFilePump();
    await closeDb();
    throw err;
  }
  registerOpsRoutes(http.app, metrics, () => healthReport(services, ctx));

  const started: Service[] = [];
  for (const s of services) {
    try {
      await s.start();
      started.push(s);
    } catch (err) {
      await stopAll(started, settings.shutdown.graceMs, log);
      await stopFilePump();
      await closeDb();
      if (err instanceof StartupError) throw err;
      throw new StartupError(`${s.name}: could not start: ${(err as Error).message}`, undefined, { cause: err });
    }
  }
  log.info({ advertise: ctx.advertise, database: file, services: Object.fromEntries(services.map((s) => [s.name, s.health()])) }, 'heph is up');

  let stopping: Promise<void> | undefined;
  return {
    ctx,
    services,
    stop(reason = 'stop requested') {
      stopping ??= (async () => {
        log.info({ reason }, 'heph is stopping');
        await stopAll(started, settings.shutdown.graceMs, log);
        await stopFilePump();
        await closeDb();
        log.info('heph stopped');
      })();
      return stopping;
    },
  };
}

/** Stops services in reverse start order, all within one shared deadline so SIGTERM is honoured in time. */
async function stopAll(services: Service[], graceMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + graceMs;
  for (const s of [...services].reverse()) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), Math.max(0, deadline - Date.now()))));
    try {
      const outcome = await Promise.race([s.stop().then(() => 'done' as const), late]);
      if (outcome === 'late') log.warn({ svc: s.name, graceMs }, 'service did not stop in time; going on without it');
    } catch (err) {
      log.error({ err, svc: s.name }, 'service failed to stop cleanly');
    } finally {
      clearTimeout(timer);
    }
  }
}

function healthReport(services: Service[], ctx: Context): { ok: boolean; body: unknown } {
  const report: Record<string, unknown> = {};
  let ok = true;
  for (const s of services) {
    const h = s.health();
    report[s.name] = h;
    if (h.state !== 'up' && h.state !== 'disabled') ok = false;
  }
  try {
    ctx.db.prepare('SELECT 1').get();
    const problem = ctx.writer.diskProblem();
    if (problem) {
      ok = false;
      report.database = { state: 'degraded', detail: problem, pendingWrites: ctx.writer.pending };
    } else {
      report.database = { state: 'up', pendingWrites: ctx.writer.pending };
    }
  } catch (err) {
    ok = false;
    report.database = { state: 'failed', detail: (err as Error).message };
  }
  return { ok, body: { status: ok ? 'ok' : 'degraded', services: report } };
}
