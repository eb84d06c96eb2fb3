// Large downloads (kernel, initrd, the asset step) through bench/http-client.c: many at once in one epoll loop,
// bodies counted and dropped in the kernel (recv MSG_TRUNC), each timed by the helper from request to last byte.
import { CStage } from '../c-stage.ts';

export interface Download {
  status: number;
  bytes: number;
  ms: number;
}

/** `request('<source ip> <url>')` resolves with the response's status, body bytes and time. */
export function httpStage(path: string, timeoutMs: number): CStage<Download> {
  return new CStage(path, ['-m', String(timeoutMs)], (rest) => {
    const m = /^status (\d+) bytes (\d+) seconds ([0-9.]+)$/.exec(rest);
    return m ? { status: Number(m[1]), bytes: Number(m[2]), ms: Number(m[3]) * 1000 } : undefined;
  });
}
