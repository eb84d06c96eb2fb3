// HTTP GETs through bench/http-client.c: many at once in one epoll loop, each timed by the helper from request to
// last byte. Large downloads (kernel, initrd, the asset step) are counted and dropped in the kernel (recv
// MSG_TRUNC); the small pages a machine reads (the iPXE script, its config) come back as text when asked for.
import { CStage } from '../c-stage.ts';
import type { Timed } from './machine.ts';

export interface Download extends Timed {
  status: number;
  /** For a request marked `keep` only. */
  body?: string;
}

export interface HttpStageOptions {
  /** The longest body a request marked `keep` may have. */
  keepBytes?: number;
  /** Connections pooled per source and server as iPXE pools them (http-client.c -r); else one per request. */
  pooled?: boolean;
}

/**
 * `request('<source ip> <url>')` resolves with the response's status, body bytes and time;
 * `request('<source ip> <url> keep')` with its body too.
 */
export function httpStage(path: string, timeoutMs: number, opts: HttpStageOptions = {}): CStage<Download> {
  const args = ['-m', String(timeoutMs), ...(opts.keepBytes ? ['-k', String(opts.keepBytes)] : []), ...(opts.pooled ? ['-r'] : [])];
  return new CStage(path, args, (rest) => {
    const m = /^status (\d+) bytes (\d+) seconds ([0-9.]+)(?: body ([0-9a-f]*))?$/.exec(rest);
    if (!m) return undefined;
    return { status: Number(m[1]), bytes: Number(m[2]), ms: Number(m[3]) * 1000, ...(m[4] === undefined ? {} : { body: Buffer.from(m[4], 'hex').toString('utf8') }) };
  });
}
