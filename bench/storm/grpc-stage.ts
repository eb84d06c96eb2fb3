// Unary gRPC calls through bench/grpc-client.c: each line's messages sent one after another on one HTTP/2
// connection from a source address of its own, timed by the helper from request to the last call's end.
import { CStage } from '../c-stage.ts';
import type { Timed } from './machine.ts';

/** `request('<source ip> <ip:port> <hex>,<hex>…')` resolves with the frames' bytes and the time. */
export function grpcStage(path: string, timeoutMs: number, rpcPath: string): CStage<Timed> {
  return new CStage(path, ['-p', rpcPath, '-m', String(timeoutMs)], (rest) => {
    const m = /^bytes (\d+) seconds ([0-9.]+)$/.exec(rest);
    return m ? { bytes: Number(m[1]), ms: Number(m[2]) * 1000 } : undefined;
  });
}
