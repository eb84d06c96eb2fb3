// HTTP GETs through bench/http-client.c: many at once in one epoll loop, each timed by the helper from request to
// last byte. Large downloads (kernel, initrd, the asset step) are counted and dropped in the kernel (recv
// MSG_TRUNC); with `keepBytes`, the small pages a machine reads (the iPXE script, its config) come back as text.
import { CStage } from '../c-stage.ts';
import type { Timed } from './machine.ts';

export interface Download extends Timed {
  status: number;
  /** With `keepBytes` only. */
  body?: string;
}

/** `request('<source ip> <url>')` resolves with the response's status, body bytes and time. */
export function httpStage(path: string, timeoutMs: number, keepBytes?: number): CStage<Download> {
  return new CStage(path, ['-m', String(timeoutMs), ...(keepBytes ? ['-k', String(keepBytes)] : [])], (rest) => {
    const m = /^status (\d+) bytes (\d+) seconds ([0-9.]+)(?: body ([0-9a-f]*))?$/.exec(rest);
    if (!m || (m[4] === undefined) !== !keepBytes) return undefined;
    return { status: Number(m[1]), bytes: Number(m[2]), ms: Number(m[3]) * 1000, ...(m[4] === undefined ? {} : { body: Buffer.from(m[4], 'hex').toString('utf8') }) };
  });
}
