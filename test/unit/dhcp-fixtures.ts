// DISCOVERs shaped like what real firmware sends (netboot-lab.md "What the firmware sent"), assembled byte by
// byte here, independently of src/dhcp/codec.ts, so the codec is checked against bytes it did not write.
import fc from 'fast-check';

export const MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/** VM uuid 7e57b001-0000-4000-8000-000000000001 as SMBIOS sends it (first three fields little-endian). */
export const UUID_WIRE = [0x01, 0xb0, 0x57, 0x7e, 0x00, 0x00, 0x00, 0x40, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
export const UUID = '7e57b001-0000-4000-8000-000000000001';

const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];
export const opt = (code: number, bytes: number[]): number[] => [code, bytes.length, ...bytes];

export interface Header {
  op?: number;
  htype?: number;
  hlen?: number;
  xid?: number;
  flags?: number;
  ciaddr?: number[];
  giaddr?: number[];
  chaddr?: number[];
  sname?: number[];
  file?: number[];
}

/** A BOOTP header + cookie + the given raw option bytes, zero-padded to 300 bytes like most clients do. */
export function packet(options: number[], h: Header = {}, pad = true): Buffer {
  const b = Buffer.alloc(Math.max(pad ? 300 : 0, 240 + options.length));
  b[0] = h.op ?? 1;
  b[1] = h.htype ?? 1;
  b[2] = h.hlen ?? 6;
  b.writeUInt32BE(h.xid ?? 0xdeadbeef, 4);
  b.writeUInt16BE(h.flags ?? 0, 10);
  Buffer.from(h.ciaddr ?? [0, 0, 0, 0]).copy(b, 12);
  Buffer.from(h.giaddr ?? [0, 0, 0, 0]).copy(b, 24);
  Buffer.from(h.chaddr ?? MAC).copy(b, 28);
  Buffer.from(h.sname ?? []).copy(b, 44);
  Buffer.from(h.file ?? []).copy(b, 108);
  b.writeUInt32BE(0x63825363, 236);
  Buffer.from(options).copy(b, 240);
  return b;
}

const PRL_EDK2 = [1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135];
const PRL_IPXE = [1, 3, 6, 7, 12, 15, 17, 26, 42, 43, 60, 66, 67, 119, 121, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203];
// iPXE's option 175: bus id (177, PCI 0x1af4:0x1000), version 1.0.0 (235), then one-byte feature flags.
const IPXE_175 = [...opt(0xb1, [1, 0x1a, 0xf4, 0x10, 0x00]), ...opt(0xeb, [1, 0, 0]), ...opt(0x13, [1]), ...opt(0x15, [1]), ...opt(0x17, [1]), ...opt(0x24, [1])];

export function ovmfPxe(type = 1, uuidWire = UUID_WIRE): number[] {
  return [...opt(53, [type]), ...opt(57, [0x05, 0xc0]), ...opt(55, PRL_EDK2), ...opt(97, [0, ...uuidWire]), ...opt(94, [1, 3, 0]), ...opt(93, [0, 7]), ...opt(60, ascii('PXEClient:Arch:00007:UNDI:003000')), 255];
}
export function ovmfHttp(): number[] {
  return [...opt(53, [1]), ...opt(57, [0x05, 0xc0]), ...opt(55, PRL_EDK2), ...opt(97, [0, ...UUID_WIRE]), ...opt(94, [1, 3, 0]), ...opt(93, [0, 16]), ...opt(60, ascii('HTTPClient:Arch:00016:UNDI:003000')), 255];
}
export function ipxeEfi(): number[] {
  return [...opt(53, [1]), ...opt(57, [0x05, 0xc0]), ...opt(93, [0, 7]), ...opt(94, [1, 3, 10]), ...opt(60, ascii('PXEClient:Arch:00007:UNDI:003010')), ...opt(77, ascii('iPXE')), ...opt(55, PRL_IPXE), ...opt(175, IPXE_175), ...opt(61, [1, ...MAC]), ...opt(97, [0, ...UUID_WIRE]), 255];
}
export function ipxeBios(): number[] {
  return [...opt(53, [1]), ...opt(57, [0x05, 0xc0]), ...opt(93, [0, 0]), ...opt(94, [1, 2, 1]), ...opt(60, ascii('PXEClient:Arch:00000:UNDI:002001')), ...opt(77, ascii('iPXE')), ...opt(55, PRL_IPXE), ...opt(175, IPXE_175), ...opt(61, [1, ...MAC]), ...opt(97, [0, ...UUID_WIRE]), 255];
}
/** A BIOS PXE ROM (pxelinux-era Intel/SeaBIOS iPXE-less ROM): arch 0, UNDI 2.1, no user class. */
export function biosPxe(): number[] {
  return [...opt(53, [1]), ...opt(57, [0x04, 0xec]), ...opt(93, [0, 0]), ...opt(94, [1, 2, 1]), ...opt(97, [0, ...UUID_WIRE]), ...opt(60, ascii('PXEClient:Arch:00000:UNDI:002001')), 255];
}
/** EDK2's boot-server REQUEST to 4011: ciaddr set, 43.71 boot item type 0 layer 0. */
export function ovmfBootServerRequest(): number[] {
  return [...opt(53, [3]), ...opt(57, [0x05, 0xc0]), ...opt(55, PRL_EDK2), ...opt(97, [0, ...UUID_WIRE]), ...opt(94, [1, 3, 0]), ...opt(93, [0, 7]), ...opt(60, ascii('PXEClient:Arch:00007:UNDI:003000')), ...opt(43, [...opt(71, [0, 0, 0, 0]), 255]), 255];
}

// Fuzz inputs (dhcp-fuzz runs them for escapes, dhcp-replies pins what respond() makes of them).
const seeds = [ovmfPxe(), ovmfHttp(), ipxeEfi(), biosPxe(), ovmfBootServerRequest()].map((o) => packet(o));
export const via = fc.constantFrom<'dhcp' | 'proxy'>('dhcp', 'proxy');

/** A header plus options made of plausible and hostile TLVs (interesting codes, wild lengths, overload). */
export const structured = fc
  .tuple(
    fc.uint8Array({ minLength: 236, maxLength: 236 }),
    fc.array(
      fc.oneof(
        fc.tuple(fc.constantFrom(0, 1, 43, 52, 53, 54, 57, 60, 61, 77, 82, 93, 94, 97, 175, 255), fc.uint8Array({ maxLength: 40 })).map(([c, v]) => [c, v.length, ...v]),
        fc.tuple(fc.constantFrom(52, 53, 93, 97), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 4 })).map(([c, l, v]) => [c, l, ...v]),
        fc.constant([53, 1, 1]),
        fc.constant([60, 9, ...Buffer.from('PXEClient')]),
        fc.constant([93, 2, 0, 7]),
      ),
      { maxLength: 30 },
    ),
    fc.boolean(),
  )
  .map(([head, opts, end]) => {
    const h = Buffer.from(head);
    h[0] = 1;
    h[1] = 1;
    h[2] = 6;
    return Buffer.concat([h, Buffer.from([0x63, 0x82, 0x53, 0x63]), Buffer.from(opts.flat()), Buffer.from(end ? [255] : [])]);
  });

/** A real firmware packet with bytes flipped, truncated or extended. */
export const mutated = fc
  .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(), fc.uint8Array({ maxLength: 20 }))
  .map(([seed, flips, cut, tail]) => {
    const b = Buffer.from(seed);
    for (const [at, v] of flips) b[240 + (at % Math.max(1, b.length - 240))] = v;
    return Buffer.concat([b.subarray(0, 236 + (cut % (b.length - 235))), Buffer.from(tail)]);
  });

/** Requests that mostly get an answer: a random header around the options a PXE client sends, in any order. */
export const plausible = fc
  .record({
    head: fc.uint8Array({ minLength: 236, maxLength: 236 }),
    giaddr: fc.constantFrom([0, 0, 0, 0], [10, 9, 0, 1], [10, 9, 200, 7], [203, 0, 113, 7]),
    type: fc.constantFrom(1, 1, 1, 3),
    vc: fc.tuple(fc.constantFrom('PXEClient', 'HTTPClient', 'PXEClient:Arch:00007:UNDI:003000'), fc.uint8Array({ maxLength: 8 })),
    arch: fc.array(fc.constantFrom(0, 6, 7, 9, 11, 16, 19, 27, 300), { minLength: 1, maxLength: 3 }),
    extra: fc.array(
      fc.oneof(
        fc.uint8Array({ minLength: 16, maxLength: 16 }).map((u) => opt(97, [0, ...u])),
        fc.constantFrom(opt(97, [0, ...Array(16).fill(0)]), opt(77, [...Buffer.from('iPXE')]), opt(175, [0xeb, 3, 1, 0, 0]), opt(57, [2, 0x40]), opt(57, [5, 0xc0])),
        fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => opt(43, [...opt(71, [...b]), 255])),
        fc.uint8Array({ maxLength: 255 }).map((b) => opt(82, [...b])),
        fc.tuple(fc.integer({ min: 1, max: 254 }), fc.uint8Array({ maxLength: 30 })).map(([c, b]) => opt(c === 52 ? 12 : c, [...b])),
        fc.constant([0, 0, 0]),
      ),
      { maxLength: 8 },
    ),
  })
  .map(({ head, giaddr, type, vc, arch, extra }) => {
    const h = Buffer.from(head);
    h[0] = 1;
    h[1] = 1;
    h[2] = 6;
    h[28]! &= 0xfe;
    h.set(giaddr, 24);
    const options = [...opt(53, [type]), ...opt(60, [...Buffer.from(vc[0]), ...vc[1]]), ...opt(93, arch.flatMap((a) => [a >> 8, a & 0xff])), ...extra.flat()];
    return Buffer.concat([h, Buffer.from([0x63, 0x82, 0x53, 0x63, ...options, 255])]);
  });
