// The iPXE binaries over HTTP for UEFI HTTP Boot: the firmware sends HEAD (wants Content-Length), then GET.
import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { IpxeBinary } from '../ipxe/binaries.ts';

/** One exact route per allowlisted binary: no path is ever built from what the client asked for. */
export function registerBinaryRoutes(app: FastifyInstance, binaries: IpxeBinary[]): void {
  for (const b of binaries) {
    app.route({
      method: ['GET', 'HEAD'],
      url: `/${b.name}`,
      exposeHeadRoute: false,
      handler: async (req, reply) => {
        reply.header('content-type', 'application/efi').header('content-length', b.size).header('cache-control', 'no-cache');
        if (req.method === 'HEAD') return reply.send();
        return reply.send(createReadStream(b.path, { highWaterMark: 1 << 20 }));
      },
    });
  }
}
