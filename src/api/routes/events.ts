import type { FastifyInstance } from 'fastify';
import type { Context } from '../../context.ts';
import type { Gauge } from '../../metrics.ts';
import { eventJson, iso } from '../json.ts';
import { eventSchema, pageQuery } from '../schemas.ts';

interface EventRow {
  id: number;
  machine_id: string | null;
  at: number;
  kind: string;
  source: string;
  ip: string | null;
  message: string;
  data: string;
}

// A page that cannot keep up is cut off rather than buffered without bound; it reconnects and reloads.
const MAX_BUFFERED = 1 << 20;
const HEARTBEAT_MS = 20_000;

export function eventRoutes(app: FastifyInstance, ctx: Context, streams: Gauge): void {
  app.get('/api/v1/events', {
    config: { scope: 'read' },
    schema: {
      summary: 'Timeline events of every machine, newest first',
      tags: ['events'],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { machine: { type: 'string', maxLength: 64 }, kind: { type: 'string', maxLength: 64 }, before: { type: 'integer', minimum: 1, description: 'only events with a smaller id (paging)' }, ...pageQuery },
      },
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: eventSchema } } } },
    },
    handler: async (req) => {
      const q = req.query as { machine?: string; kind?: string; before?: number; limit: number; offset: number };
      ctx.writer.flush();
      const rows = ctx.db
        .prepare<Record<string, unknown>, EventRow>(
          `SELECT * FROM timeline WHERE (@machine IS NULL OR machine_id = @machine) AND (@kind IS NULL OR kind = @kind) AND (@before IS NULL OR id < @before)
           ORDER BY id DESC LIMIT @limit OFFSET @offset`,
        )
        .all({ machine: q.machine ?? null, kind: q.kind ?? null, before: q.before ?? null, limit: q.limit, offset: q.offset });
      return { items: rows.map((r) => eventJson({ id: r.id, machineId: r.machine_id, at: r.at, kind: r.kind, source: r.source as never, ip: r.ip, message: r.message, data: JSON.parse(r.data) as Record<string, unknown> })) };
    },
  });

  app.get('/api/v1/events/stream', {
    config: { scope: 'read' },
    schema: {
      summary: 'Live timeline events as Server-Sent Events (event: timeline, data: one event as JSON)',
      tags: ['events'],
      querystring: { type: 'object', additionalProperties: false, properties: { machine: { type: 'string', maxLength: 64 } } },
      produces: ['text/event-stream'],
    },
    handler: async (req, reply) => {
      const only = (req.query as { machine?: string }).machine;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        connection: 'keep-alive',
      });
      res.write('retry: 3000\n\n');
      streams.inc();
      const send = (chunk: string): void => {
        if (res.writableLength > MAX_BUFFERED) return void res.destroy();
        res.write(chunk);
      };
      const unsubscribe = ctx.timeline.subscribe((e) => {
        if (only !== undefined && e.machineId !== only) return;
        send(`event: timeline\ndata: ${JSON.stringify(eventJson(e))}\n\n`);
      });
      const beat = setInterval(() => send(`: ${iso(Date.now())}\n\n`), HEARTBEAT_MS);
      res.on('close', () => {
        clearInterval(beat);
        unsubscribe();
        streams.dec();
      });
    },
  });
}
