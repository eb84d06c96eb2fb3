import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PAYLOAD_DIR = fileURLToPath(new URL('../payload/', import.meta.url));

export interface Payload {
  kernel: string;
  initrd: string;
  kernelVersion: string;
}

/** Builds the payload if its inputs changed (test/e2e/payload/build.sh, cached under .cache/e2e/) and returns it. */
export function ensurePayload(): Payload {
  const out = execFileSync(join(PAYLOAD_DIR, 'build.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 }).trim();
  const dir = out.split('\n').at(-1)!;
  return { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initramfs.gz'), kernelVersion: readFileSync(join(dir, 'kernel-version'), 'utf8').trim() };
}

/** What the payload "installed": the header line it wrote to the disk, checked, and the config bytes after it. */
export function readInstalled(diskFile: string): { config: Buffer; sha256: string } | undefined {
  const disk = readFileSync(diskFile);
  const nl = disk.indexOf(0x0a);
  const header = disk.subarray(0, Math.max(nl, 0)).toString('latin1');
  const m = /^HEPH-PAYLOAD-INSTALL (\d+) ([0-9a-f]{64})$/.exec(header);
  if (!m) return undefined;
  const config = disk.subarray(nl + 1, nl + 1 + Number(m[1]));
  const sha256 = createHash('sha256').update(config).digest('hex');
  if (sha256 !== m[2]) throw new Error(`installed config on ${diskFile} does not match its own checksum`);
  return { config, sha256 };
}

export interface DecodedEvent {
  id: string;
  /** The Any's message name, e.g. machine.SequenceEvent. */
  type: string;
  /** The payload message in protoc's text format. */
  text: string;
}

/**
 * Decodes an events.EventRequest. The envelope's fields are split here (protoc --decode prints an Any's value as an
 * escaped string), the message itself is decoded by Debian's protoc: a decoder independent of both ends.
 */
export function decodeEventRequest(message: Buffer): DecodedEvent {
  const outer = lengthDelimited(message);
  const any = lengthDelimited(one(outer, 1));
  const typeUrl = one(any, 1).toString();
  const type = typeUrl.replace(/^type\.googleapis\.com\//, '');
  const text = execFileSync('protoc', [`-I${PAYLOAD_DIR}`, '-I/usr/include', `--decode=${type}`, 'talos-events.proto', 'talos-machine.proto'], { cwd: PAYLOAD_DIR, input: one(any, 2), encoding: 'utf8' });
  return { id: one(outer, 2).toString(), type, text };
}

function one(fields: Map<number, Buffer>, n: number): Buffer {
  const v = fields.get(n);
  if (!v) throw new Error(`protobuf field ${n} missing`);
  return v;
}

/** The length-delimited fields (wire type 2) of a protobuf message by field number; other wire types are skipped. */
function lengthDelimited(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let i = 0;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = buf[i++];
      if (b === undefined || shift > 35) throw new Error('bad varint');
      v += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const wire = key & 7;
    if (wire === 2) {
      const len = varint();
      if (i + len > buf.length) throw new Error('truncated protobuf field');
      out.set(Math.floor(key / 8), buf.subarray(i, i + len));
      i += len;
    } else if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}
