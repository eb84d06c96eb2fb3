import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INITIAL_TOKEN_FILE } from '../../src/api/index.ts';
import { Tokens, type Scope } from '../../src/api/tokens.ts';
import type { HttpService } from '../../src/http/server.ts';
import { inProcessHeph } from './heph.ts';

export interface ApiHeph {
  /** Base URL of the admin listener, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The admin token heph wrote on first start. */
  admin: string;
  daemon: Awaited<ReturnType<typeof inProcessHeph>>['daemon'];
  dir: string;
  token(scope: Scope, name?: string): string;
  call(method: string, path: string, opts?: { token?: string | undefined; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  stop(): Promise<void>;
}

/** An in-process heph with its admin listener (and, if asked, the admin gRPC service) on free loopback ports. */
export async function apiHeph(opts: { grpc?: boolean } = {}): Promise<ApiHeph> {
  const h = await inProcessHeph({ api: { grpc: { enabled: opts.grpc ?? false } } });
  const svc = h.daemon.services.find((s) => s.name === 'api') as HttpService;
  const url = `http://127.0.0.1:${svc.port}`;
  const admin = readFileSync(join(h.dir, INITIAL_TOKEN_FILE), 'utf8').trim();
  const tokens = new Tokens(h.daemon.ctx.db);
  return {
    url,
    admin,
    daemon: h.daemon,
    dir: h.dir,
    token: (scope, name = `test-${scope}`) => tokens.create(name, scope).token,
    async call(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      const token = 'token' in opts ? opts.token : admin;
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
      const init: RequestInit = { method, headers };
      if (opts.body !== undefined) init.body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      const res = await fetch(`${url}${path}`, init);
      const text = await res.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {}
      return { status: res.status, body, headers: res.headers };
    },
    stop: h.stop,
  };
}
