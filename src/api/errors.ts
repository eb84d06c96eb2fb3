import type { FastifyError, FastifyInstance } from 'fastify';

/** An error meant for the client: status, a stable machine-readable code and a sentence for a person. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string): ApiError => new ApiError(404, 'not_found', `${what} not found`);
export const badRequest = (field: string, message: string): ApiError => new ApiError(400, 'bad_request', `${field}: ${message}`);

export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

interface ValidationIssue {
  instancePath: string;
  message?: string;
  keyword: string;
  params: Record<string, unknown>;
}

/** Turns the first schema violation into "field: what is wrong", naming the field the way the client wrote it. */
export function describeValidation(context: string | undefined, issues: ValidationIssue[]): string {
  const v = issues[0];
  if (!v) return 'invalid request';
  const base = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const join = (k: string): string => (base ? `${base}.${k}` : k);
  let field = base;
  let message = v.message ?? 'is invalid';
  if (v.keyword === 'required') field = join(String(v.params.missingProperty));
  if (v.keyword === 'additionalProperties') {
    field = join(String(v.params.additionalProperty));
    message = 'is not a known field';
  }
  const part = context ?? 'request';
  if (!field) return `${part}: ${message}`;
  return context === 'body' ? `${field}: ${message}` : `${part} ${field}: ${message}`;
}

/** JSON errors everywhere on the admin app, including fastify's own (bad JSON, too large, unknown route). */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError & { validation?: ValidationIssue[]; validationContext?: string }, req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send(errorBody(err.code, err.message));
    if (err.validation) return reply.code(400).send(errorBody('bad_request', describeValidation(err.validationContext, err.validation)));
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      req.log.error({ err, url: req.url }, 'admin request failed');
      return reply.code(status).send(errorBody('internal', 'internal error; see the heph log'));
    }
    return reply.code(status).send(errorBody(err.code ? err.code.replace(/^FST_ERR_/, '').toLowerCase() : 'bad_request', err.message));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));
}
