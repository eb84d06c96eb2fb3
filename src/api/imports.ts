import { randomBytes } from 'node:crypto';
import { ImportError, importRelease, type Imported } from '../assets/import.ts';
import type { Context } from '../context.ts';
import { audit } from '../inventory/audit.ts';
import type { Caller } from './operations.ts';

export interface ImportJob {
  id: string;
  source: string;
  version: string | null;
  state: 'running' | 'done' | 'failed';
  startedAt: number;
  finishedAt: number | null;
  /** Bytes so far per file, and the size when the source said it. */
  files: Record<string, { done: number; total: number | null }>;
  imported: Imported[];
  error: string | null;
}

const KEEP = 20;

/**
 * Asset imports started from the API run in the background (a Talos initramfs is ~100 MB); their progress lives
 * here, in memory, for the page and for scripts to poll. The finished assets are in the inventory either way.
 */
export class ImportJobs {
  private readonly jobs = new Map<string, ImportJob>();

  constructor(private readonly ctx: Context) {}

  list(): ImportJob[] {
    return [...this.jobs.values()].sort((a, b) => b.startedAt - a.startedAt);
  }

  get(id: string): ImportJob | undefined {
    return this.jobs.get(id);
  }

  start(who: Caller, req: { source: string; version?: string | undefined; arches?: string[] | undefined }): ImportJob {
    const job: ImportJob = { id: randomBytes(6).toString('hex'), source: req.source, version: req.version ?? null, state: 'running', startedAt: Date.now(), finishedAt: null, files: {}, imported: [], error: null };
    audit(this.ctx.db, { actor: who.actor, action: 'asset.import', ip: who.ip, detail: { job: job.id, source: req.source, version: req.version ?? null, arches: req.arches ?? [] } });
    this.jobs.set(job.id, job);
    for (const old of this.list().slice(KEEP)) if (old.state !== 'running') this.jobs.delete(old.id);
    const log = this.ctx.log.child({ svc: 'api', job: job.id });
    void importRelease({
      db: this.ctx.db,
      dataDir: this.ctx.dataDir,
      source: req.source,
      version: req.version,
      arches: req.arches ?? [],
      progress: (name, done, total) => void (job.files[name] = { done, total: total ?? null }),
    }).then(
      (imported) => {
        Object.assign(job, { state: 'done', imported, finishedAt: Date.now() });
        log.info({ source: req.source, assets: imported.map((a) => a.name) }, 'asset import finished');
      },
      (err: unknown) => {
        const message = err instanceof ImportError ? err.message : `unexpected: ${(err as Error).message}`;
        Object.assign(job, { state: 'failed', error: message, finishedAt: Date.now() });
        log.warn({ source: req.source, err: message }, 'asset import failed');
      },
    );
    return job;
  }
}
