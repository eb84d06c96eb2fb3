// The bytes heph puts on the wire, pinned: every reply respond() builds for firmware-shaped requests and for the
// warm-up set, byte for byte, plus a digest of what it makes of 100k fuzz inputs (reply bytes, reasons, the client
// it read). Written once from the code before the data-plane fast path, so a speed-up that changes anything a
// client or the main thread sees fails here. After an intended wire change: HEPH_WRITE_GOLDEN=1 rewrites the file.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { it } from 'node:test';
import fc from 'fast-check';
import { RejectionSet, respondConfig, type PlainRespondConfig } from '../../src/dhcp/policy.ts';
import { respond, type Arrival, type Outcome, type RespondConfig } from '../../src/dhcp/respond.ts';
import { dhcpSettings } from '../../src/dhcp/settings.ts';
import { warmupRequests } from '../../src/dhcp/warmup.ts';
import { biosPxe, ipxeBios, ipxeEfi, mutated, opt, ovmfBootServerRequest, ovmfHttp, ovmfPxe, packet, plausible, structured, UUID, via } from './dhcp-fixtures.ts';

const GOLDEN = new URL('../golden/dhcp-replies.json', import.meta.url);

const base: PlainRespondConfig = {
  server: '192.0.2.10',
  httpPort: 8080,
  binaries: { bios: 'undionly.kpxe', x86_64: 'ipxe.efi', arm64: 'snp-arm64.efi' },
  option43: dhcpSettings.shape.option43.default,
  relays: ['10.9.0.0/16', '192.0.2.1'],
  relayPort: 67,
};
const rejections = new RejectionSet({ uuids: ['7e57b001-0000-4000-8000-0000000000ff'], nics: [['52:54:00:00:00:99', null], ['52:54:00:00:00:98', UUID]] });
const configs: Record<string, RespondConfig> = {
  default: respondConfig(base, () => rejections),
  custom: respondConfig(
    {
      ...base,
      server: '10.200.30.4',
      httpPort: 80,
      binaries: { bios: 'undionly.kpxe', x86_64: `${'x'.repeat(120)}.efi` },
      option43: { bios: { '6': '08' }, x86_64: { '6': '08', '10': '00:50:58:45', '9': 'ab'.repeat(200) } },
    },
    () => rejections,
  ),
};

const dhcp: Arrival = { via: 'dhcp', from: { address: '0.0.0.0', port: 68 } };
const relay: Arrival = { via: 'dhcp', from: { address: '10.9.0.1', port: 67 } };
const proxy: Arrival = { via: 'proxy', from: { address: '10.0.0.50', port: 4011 } };
const o82 = [...opt(82, [1, 4, ...Buffer.from('eth9'), 2, 2, 0xab, 0xcd])];
const long82 = [...opt(82, Array.from({ length: 200 }, (_, i) => (i % 2 ? 1 : 8))), ...opt(82, Array.from({ length: 100 }, () => 7))];
const end = (o: number[]) => o.slice(0, -1);
const mac = (last: number) => [0x52, 0x54, 0, 0, 0, last];

const requests: [string, Buffer, Arrival][] = [
  ...warmupRequests().map((w, i): [string, Buffer, Arrival] => [`warmup ${i}`, w.bytes, w.arrival]),
  ['OVMF PXE', packet(ovmfPxe(), { flags: 0x8000 }), dhcp],
  ['OVMF PXE, chaddr with trailing bytes', packet(ovmfPxe(), { chaddr: [0x52, 0x54, 0, 0x12, 0x34, 0x56, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0] }), dhcp],
  ['OVMF HTTP', packet(ovmfHttp()), dhcp],
  ['iPXE EFI', packet(ipxeEfi()), dhcp],
  ['iPXE BIOS', packet(ipxeBios()), dhcp],
  ['BIOS PXE', packet(biosPxe(), { xid: 0x01020304, flags: 1 }), dhcp],
  ['4011 REQUEST', packet(ovmfBootServerRequest(), { ciaddr: [10, 0, 0, 50] }), proxy],
  ['4011 REQUEST from BIOS', packet([...end(biosPxe()).map((b, i) => (i === 2 ? 3 : b)), ...opt(43, [...opt(71, [0x80, 0, 0, 0]), 255]), 255], { ciaddr: [10, 0, 0, 51] }), proxy],
  ['relayed', packet([...end(ovmfPxe()), ...o82, 255], { giaddr: [10, 9, 0, 1] }), relay],
  ['relayed, long 82', packet([...end(ovmfPxe()), ...long82, 255], { giaddr: [10, 9, 3, 4] }), relay],
  ['relayed without 82', packet(ovmfPxe(), { giaddr: [10, 9, 0, 1] }), relay],
  ['relay not allowed', packet(ovmfPxe(), { giaddr: [203, 0, 113, 7] }), relay],
  ['giaddr on 4011', packet([...end(ovmfBootServerRequest()), ...o82, 255], { giaddr: [10, 9, 0, 1] }), proxy],
  ['lease REQUEST on 67', packet(ovmfPxe(3)), dhcp],
  ['DISCOVER on 4011', packet(ovmfPxe(1)), proxy],
  ['rejected by MAC', packet(ovmfPxe(), { chaddr: mac(0x99) }), dhcp],
  ['rejected NIC with its own UUID', packet(ovmfPxe(), { chaddr: mac(0x98) }), dhcp],
  ['rejected NIC moved to another UUID', packet(ovmfPxe(1, [...Array(15).fill(0x11), 0x22]), { chaddr: mac(0x98) }), dhcp],
  ['rejected by UUID', packet(ovmfPxe(1, [0x01, 0xb0, 0x57, 0x7e, 0, 0, 0, 0x40, 0x80, 0, 0, 0, 0, 0, 0, 0xff]), { chaddr: mac(0x42) }), dhcp],
  ['all-zero UUID', packet(ovmfPxe(1, Array(16).fill(0))), dhcp],
  ['all-FF UUID', packet(ovmfPxe(1, Array(16).fill(0xff))), dhcp],
  ['bad UUID', packet([...opt(53, [1]), ...opt(97, [1, 2, 3]), ...opt(93, [0, 7]), ...opt(60, [...Buffer.from('PXEClient')]), 255]), dhcp],
  ['several arches, first unbootable', packet([...opt(53, [1]), ...opt(93, [0, 6, 0, 11, 0, 7]), ...opt(60, [...Buffer.from('PXEClient')]), 255]), dhcp],
  ['unknown arch', packet([...opt(53, [1]), ...opt(93, [0x12, 0x34]), ...opt(60, [...Buffer.from('PXEClient')]), 255]), dhcp],
  ['unsupported arch', packet([...opt(53, [1]), ...opt(93, [0, 6]), ...opt(60, [...Buffer.from('PXEClient')]), 255]), dhcp],
  ['arm64 HTTP', packet([...opt(53, [1]), ...opt(93, [0, 19]), ...opt(60, [...Buffer.from('HTTPClient')]), 255]), dhcp],
  ['user class RFC 3004 iPXE', packet([...opt(53, [1]), ...opt(93, [0, 7]), ...opt(60, [...Buffer.from('PXEClient')]), ...opt(77, [3, 1, 2, 3, 4, ...Buffer.from('iPXE')]), 255]), dhcp],
  ['option 57 576', packet([...opt(53, [1]), ...opt(57, [2, 0x40]), ...opt(93, [0, 0]), ...opt(60, [...Buffer.from('PXEClient')]), 255]), dhcp],
  ['option 57 too small', packet([...opt(53, [1]), ...opt(57, [1, 0]), ...opt(93, [0, 7]), ...opt(60, [...Buffer.from('PXEClient')]), 255]), dhcp],
  ['overload 3', packet([...opt(53, [1]), ...opt(52, [3]), 255], { file: [...opt(60, [...Buffer.from('PXECli')]), 255], sname: [...opt(60, [...Buffer.from('ent')]), ...opt(93, [0, 7]), 255] }), dhcp],
  ['split option 60 and 97', packet([...opt(53, [1]), ...opt(60, [...Buffer.from('PXE')]), ...opt(97, [0, 1, 2, 3]), ...opt(93, [0, 7]), ...opt(60, [...Buffer.from('Client')]), ...opt(97, Array(13).fill(5)), 255]), dhcp],
  ['two 53s', packet([...opt(53, [1]), ...opt(53, [1]), 255]), dhcp],
  ['message type 8', packet([...opt(53, [8]), 255]), dhcp],
  ['op 2', packet(ovmfPxe(), { op: 2 }), dhcp],
  ['htype 6', packet(ovmfPxe(), { htype: 6 }), dhcp],
  ['multicast MAC', packet(ovmfPxe(), { chaddr: [1, 0, 0x5e, 0, 0, 1] }), dhcp],
  ['zero MAC', packet(ovmfPxe(), { chaddr: [0, 0, 0, 0, 0, 0] }), dhcp],
  ['truncated option', packet([...opt(53, [1]), 60, 200, 1], {}, false), dhcp],
  ['no cookie', Buffer.alloc(300), dhcp],
];

/** The pinned value under `key` (HEPH_WRITE_GOLDEN=1: first replaced by `value`). */
function pinned<T>(key: string, value: T): T {
  const read = (): Record<string, unknown> => {
    try {
      return JSON.parse(readFileSync(GOLDEN, 'utf8')) as Record<string, unknown>;
    } catch {
      return {};
    }
  };
  if (process.env.HEPH_WRITE_GOLDEN === '1') writeFileSync(GOLDEN, `${JSON.stringify({ ...read(), [key]: value }, null, 1)}\n`);
  return read()[key] as T;
}

const json = (v: unknown): string => JSON.stringify(v, (_, x) => (x && x.type === 'Buffer' && Array.isArray(x.data) ? Buffer.from(x.data).toString('hex') : x));

/** Everything an Outcome carries, as plain data: the reply's bytes as hex, the client with its Buffers as hex. */
function summary(o: Outcome): unknown {
  if (o.kind === 'reply') return { ...o, bytes: o.bytes.toString('hex') };
  return o;
}

it('replies to firmware-shaped and warm-up requests are byte-identical to the pinned ones', () => {
  const got: Record<string, string> = {};
  for (const [cname, cfg] of Object.entries(configs)) {
    for (const [name, bytes, arrival] of requests) {
      // A dirty send slot, as the data plane's are: nothing of it may leak into a reply.
      const slot = Buffer.alloc(1500, 0xee);
      got[`${cname}: ${name}`] = json(summary(respond(bytes, arrival, cfg, slot)));
      assert.equal(json(summary(respond(bytes, arrival, cfg))), got[`${cname}: ${name}`], `${cname}: ${name} without a send slot`);
    }
  }
  const want = pinned('replies', got);
  assert.deepEqual(Object.keys(got), Object.keys(want));
  for (const k of Object.keys(want)) assert.equal(got[k], want[k], k);
});

it('what respond() makes of 100k fuzz inputs digests to the pinned value', () => {
  const h = createHash('sha256');
  const inputs = [
    ...fc.sample(fc.tuple(fc.uint8Array({ maxLength: 600 }), via), { numRuns: 10_000, seed: 11 }),
    ...fc.sample(fc.tuple(structured, via), { numRuns: 30_000, seed: 12 }),
    ...fc.sample(fc.tuple(mutated, via), { numRuns: 30_000, seed: 13 }),
    ...fc.sample(fc.tuple(plausible, via), { numRuns: 30_000, seed: 14 }),
  ];
  const slot = Buffer.alloc(1500);
  let replies = 0;
  for (const [bytes, v] of inputs) {
    for (const cfg of Object.values(configs)) {
      const o = respond(Buffer.from(bytes), { via: v, from: { address: '10.9.0.1', port: 67 } }, cfg, slot);
      if (o.kind === 'reply') replies++;
      h.update(json(summary(o)));
    }
  }
  assert.ok(replies > 10_000, `the inputs reach the reply path (${replies})`);
  const digest = h.digest('hex');
  assert.equal(digest, pinned('fuzz', digest));
});
