// The iPXE binaries over HTTP for UEFI HTTP Boot: the firmware sends HEAD (wants Content-Length), then GET.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { sendFileRange } from '../http/sendfile.ts';
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
        await sendFileRange(reply, await open(b.path, constants.O_RDONLY), 0, b.size - 1);
        return reply;
      },
    });
  }
}
