import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Ajv, type ValidateFunction } from 'ajv';
import type { Context } from '../context.ts';
import { bindFailure, StartupError } from '../errors.ts';
import type { Machine } from '../inventory/machines.ts';
import { issueServerCert, loadOrCreateCA } from '../pki/ca.ts';
import type { Service, ServiceHealth } from '../service.ts';
import { describeValidation, ApiError } from './errors.ts';
import { iso } from './json.ts';
import { parseLabelFilter } from './machine-query.ts';
import { actOnMachine, deleteMachine, explainProfile, getMachine, listMachines, updateMachine, type Caller, type MachineAction, type MachinePatch } from './operations.ts';
import { listQuery, patchBody, reasonBody } from './routes/machines.ts';
import { SCOPE_PREFIX, SCOPES, scopeAllows, type Scope } from './tokens.ts';

export const ADMIN_PROTO = fileURLToPath(new URL('../../proto/admin/admin.proto', import.meta.url));

type Call = grpc.ServerUnaryCall<Record<string, unknown>, unknown>;
type Handler = (req: Record<string, unknown>, who: Caller) => unknown;

const PROTO_OPTIONS = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true } as const;

export function loadAdminProto(): grpc.GrpcObject {
  try {
    return grpc.loadPackageDefinition(loadSync(ADMIN_PROTO, PROTO_OPTIONS));
  } catch (err) {
    throw new StartupError(`admin gRPC: cannot load ${ADMIN_PROTO}: ${(err as Error).message}`, 'The proto/ directory ships with heph; reinstall it.', { cause: err });
  }
}

export function adminServiceDefinition(pkg: grpc.GrpcObject): grpc.ServiceDefinition {
  return (((pkg.heph as grpc.GrpcObject).admin as grpc.GrpcObject).v1 as grpc.GrpcObject & { Admin: grpc.ServiceClientConstructor }).Admin.service;
}

/** The scope a verified client certificate grants, from its subject O; undefined when it names none. */
export function certScope(organization: string | undefined): Scope | undefined {
  const s = organization?.startsWith(SCOPE_PREFIX) ? organization.slice(SCOPE_PREFIX.length) : undefined;
  return (SCOPES as readonly string[]).includes(s ?? '') ? (s as Scope) : undefined;
}

/** API errors → gRPC status codes, so automation can tell "no such machine" from "bad request". */
function grpcCode(status: number): grpc.status {
  switch (status) {
    case 400:
      return grpc.status.INVALID_ARGUMENT;
    case 401:
      return grpc.status.UNAUTHENTICATED;
    case 403:
      return grpc.status.PERMISSION_DENIED;
    case 404:
      return grpc.status.NOT_FOUND;
    case 409:
      return grpc.status.FAILED_PRECONDITION;
    default:
      return grpc.status.INTERNAL;
  }
}

function machineMessage(m: Machine): Record<string, unknown> {
  return {
    id: m.id,
    uuid: m.uuid ?? '',
    serial: m.serial ?? '',
    hostname: m.hostname ?? '',
    arch: m.arch ?? '',
    state: m.state,
    acceptance: m.acceptance,
    profile: m.profile ?? '',
    labels: m.labels,
    reprovision: m.reprovision,
    ip: m.lastIp ?? '',
    macs: m.macs,
    firstSeen: iso(m.firstSeen),
    lastSeen: iso(m.lastSeen),
  };
}

/**
 * The admin gRPC service: the machine and profile operations of the REST API, for automation, over mutual TLS.
 * Requests are checked against the same JSON schemas as the REST bodies, and go through the same operations.
 */
export class AdminGrpcService implements Service {
  readonly name = 'admin-grpc';
  private server: grpc.Server | undefined;
  private state: ServiceHealth = { state: 'stopped' };
  port = 0;
  private readonly check: { list: ValidateFunction; patch: ValidateFunction; reason: ValidateFunction };

  constructor(private readonly ctx: Context) {
    const ajv = new Ajv({ allErrors: false, removeAdditional: false, useDefaults: true, strict: false });
    this.check = { list: ajv.compile(listQuery), patch: ajv.compile(patchBody), reason: ajv.compile(reasonBody) };
  }

  private valid<T>(v: ValidateFunction, value: unknown, part: string): T {
    if (!v(value)) throw new ApiError(400, 'bad_request', describeValidation(part, v.errors ?? []));
    return value as T;
  }

  private handlers(): Record<string, { scope: Scope; run: Handler }> {
    const { ctx } = this;
    const id = (req: Record<string, unknown>): string => String(req.id ?? '');
    const act = (what: MachineAction): Handler => (req, who) => {
      const body = this.valid<{ reason?: string }>(this.check.reason, req.reason ? { reason: req.reason } : {}, 'body');
      return machineMessage(actOnMachine(ctx, who, id(req), what, body.reason));
    };
    return {
      ListMachines: {
        scope: 'read',
        run: (req) => {
          const labels = Object.entries((req.labels ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`);
          const q: Record<string, unknown> = { limit: req.limit || 50, offset: req.offset ?? 0 };
          if (req.state) q.state = req.state;
          if (req.acceptance) q.acceptance = req.acceptance;
          if (req.profile !== undefined && req.profile !== null) q.profile = req.profile;
          if (labels.length) q.label = labels;
          if (req.query) q.q = req.query;
          const f = this.valid<{ state?: string; acceptance?: string; profile?: string; label?: string[]; q?: string; limit: number; offset: number }>(this.check.list, q, 'request');
          const { machines, total } = listMachines(ctx, { ...f, labels: (f.label ?? []).map((l) => parseLabelFilter(l)!) });
          return { machines: machines.map(machineMessage), total };
        },
      },
      GetMachine: { scope: 'read', run: (req) => machineMessage(getMachine(ctx, id(req))) },
      ExplainProfile: {
        scope: 'read',
        run: (req) => {
          const e = explainProfile(ctx, id(req));
          return { ...e, profile: e.profile ?? '', via: e.via ?? '', selector: e.selector ?? '' };
        },
      },
      ListProfiles: {
        scope: 'read',
        run: () => ({
          profiles: (ctx.db.prepare('SELECT name, source, spec FROM profiles ORDER BY name').all() as { name: string; source: string; spec: string }[]).map((r) => ({
            name: r.name,
            source: r.source,
            talosVersion: String((JSON.parse(r.spec) as { talosVersion?: unknown }).talosVersion ?? ''),
          })),
        }),
      },
      AcceptMachine: { scope: 'operator', run: act('accept') },
      RejectMachine: { scope: 'operator', run: act('reject') },
      ReprovisionMachine: { scope: 'operator', run: act('reprovision') },
      UpdateMachine: {
        scope: 'operator',
        run: (req, who) => {
          const patch: Record<string, unknown> = {};
          if (req.hostname !== undefined && req.hostname !== null) patch.hostname = req.hostname === '' ? null : req.hostname;
          if (req.profile !== undefined && req.profile !== null) patch.profile = req.profile === '' ? null : req.profile;
          if (req.setLabels) patch.labels = req.labels ?? {};
          return machineMessage(updateMachine(ctx, who, id(req), this.valid<MachinePatch>(this.check.patch, patch, 'body')));
        },
      },
      DeleteMachine: {
        scope: 'operator',
        run: (req, who) => {
          deleteMachine(ctx, who, id(req));
          return {};
        },
      },
    };
  }

  async start(): Promise<void> {
    const s = this.ctx.settings.api.grpc;
    this.state = { state: 'starting' };
    const ca = await loadOrCreateCA(this.ctx.dataDir);
    const hosts = this.ctx.settings.api.hosts.map((h) => h.replace(/^\[|\]$/g, ''));
    const ips = [...new Set(['127.0.0.1', ...(s.listen === '0.0.0.0' ? [] : [s.listen]), ...hosts.filter((h) => isIP(h))])];
    const cert = await issueServerCert(ca, { commonName: 'heph admin gRPC', ipAddresses: ips, dnsNames: ['localhost', ...hosts.filter((h) => !isIP(h))] });
    // grpc-js writes its own errors to stderr; send them to heph's log instead (one logger per thread: the Talos
    // event sink's thread sets its own).
    grpc.setLogger({ error: (...args: unknown[]) => this.ctx.log.warn({ svc: 'api' }, `grpc-js: ${format(...args)}`) });
    const server = new grpc.Server();
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [method, h] of Object.entries(this.handlers())) {
      impl[method] = (call: Call, callback: grpc.sendUnaryData<unknown>) => {
        try {
          // As the REST API: the admin call's writes commit on their own (api/index.ts).
          this.ctx.durable.settle();
          const who = this.authorize(call, h.scope);
          callback(null, h.run(call.request, who) as never);
        } catch (err) {
          if (err instanceof ApiError) return callback({ code: grpcCode(err.status), details: err.message });
          this.ctx.log.error({ err, svc: this.name, method }, 'admin gRPC call failed');
          callback({ code: grpc.status.INTERNAL, details: 'internal error; see the heph log' });
        }
      };
    }
    server.addService(adminServiceDefinition(loadAdminProto()), impl);
    // checkClientCertificate: the TLS handshake itself refuses a client without a certificate from heph's CA.
    const creds = grpc.ServerCredentials.createSsl(Buffer.from(ca.certPem), [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.chainPem) }], true);
    try {
      this.port = await new Promise<number>((resolve, reject) => server.bindAsync(`${s.listen}:${s.port}`, creds, (err, p) => (err ? reject(err) : resolve(p))));
    } catch (err) {
      server.forceShutdown();
      this.state = { state: 'failed', detail: (err as Error).message };
      const code = /EADDRINUSE|EACCES|EADDRNOTAVAIL/.exec((err as Error).message)?.[0];
      throw bindFailure({ service: this.name, proto: 'TCP', address: s.listen, port: s.port, setting: 'api.grpc.port', disable: 'api.grpc.enabled', err: Object.assign(err as Error, code ? { code } : {}) });
    }
    this.server = server;
    this.state = { state: 'up', listening: { tcp: `${s.listen}:${this.port}` }, detail: `mutual TLS; CA ${ca.fingerprint}` };
  }

  /** The caller named by its verified certificate, if its scope covers the method. */
  private authorize(call: Call, needed: Scope): Caller {
    const peer = call.getAuthContext()?.sslPeerCertificate;
    if (!peer) throw new ApiError(401, 'unauthorized', 'a client certificate from heph\'s CA is required');
    const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
    const cn = first(peer.subject.CN) ?? '(no CN)';
    const scope = certScope(first(peer.subject.O));
    if (!scope) throw new ApiError(403, 'forbidden', `certificate ${cn} names no heph scope in its O (heph:read, heph:operator or heph:admin)`);
    if (!scopeAllows(scope, needed)) throw new ApiError(403, 'forbidden', `this needs the ${needed} scope; certificate ${cn} has ${scope}`);
    const ip = call.getPeer().replace(/^ipv[46]:/, '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    return { actor: `cert:${cn}`, name: cn, ip };
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.state = { state: 'stopped' };
    if (!server) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => (server.forceShutdown(), resolve()), 1000);
      server.tryShutdown(() => (clearTimeout(force), resolve()));
    });
  }

  health(): ServiceHealth {
    return this.state;
  }
}
