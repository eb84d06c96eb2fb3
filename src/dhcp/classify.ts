// Who is asking: MAC, SMBIOS UUID, architecture and firmware kind, read from a decoded packet. Pure.
import type { FirmwareArch } from '../ipxe/binaries.ts';
import { bytesAt, decodeSubOptions, MessageType, Opt, type OptionLookup, type RequestFields } from './codec.ts';

const PXE_BOOT_ITEM = 71;

/** PXE ROM (firmware, wants an iPXE binary), iPXE (wants the script URL), UEFI HTTP Boot (wants an http:// URL). */
export type FirmwareKind = 'pxe' | 'ipxe' | 'http';

export interface ArchInfo {
  code: number;
  name: string;
  /** Which iPXE binary family serves it; undefined: heph has nothing to boot it with. */
  family?: FirmwareArch;
  /** An HTTP Boot code (RFC 4578 / IANA "… HTTP"). */
  http: boolean;
}

// IANA "Processor Architecture Types" (RFC 4578 §2.1 with erratum 4624: 7 = x64 UEFI, 9 = EBC). EBC (9) is
// served ipxe.efi like x64: x64 firmware that reports 9 exists, and smee and iPXE treat it the same way.
const ARCH_TABLE: readonly [number, string, FirmwareArch | undefined, boolean][] = [
  [0, 'x86 BIOS', 'bios', false],
  [1, 'NEC/PC98', undefined, false],
  [2, 'Itanium', undefined, false],
  [3, 'DEC Alpha', undefined, false],
  [4, 'Arc x86', undefined, false],
  [5, 'Intel Lean Client', undefined, false],
  [6, 'x86 UEFI', undefined, false],
  [7, 'x64 UEFI', 'x86_64', false],
  [8, 'EFI Xscale', undefined, false],
  [9, 'EBC', 'x86_64', false],
  [10, 'ARM 32 UEFI', undefined, false],
  [11, 'ARM 64 UEFI', 'arm64', false],
  [12, 'PowerPC Open Firmware', undefined, false],
  [13, 'PowerPC ePAPR', undefined, false],
  [14, 'POWER OPAL v3', undefined, false],
  [15, 'x86 UEFI HTTP', undefined, true],
  [16, 'x64 UEFI HTTP', 'x86_64', true],
  [17, 'EBC HTTP', 'x86_64', true],
  [18, 'ARM 32 UEFI HTTP', undefined, true],
  [19, 'ARM 64 UEFI HTTP', 'arm64', true],
  [20, 'x86 BIOS HTTP', undefined, true],
  [21, 'ARM 32 U-Boot', undefined, false],
  [22, 'ARM 64 U-Boot', undefined, false],
  [23, 'ARM 32 U-Boot HTTP', undefined, true],
  [24, 'ARM 64 U-Boot HTTP', undefined, true],
  [25, 'RISC-V 32 UEFI', undefined, false],
  [26, 'RISC-V 32 UEFI HTTP', undefined, true],
  [27, 'RISC-V 64 UEFI', undefined, false],
  [28, 'RISC-V 64 UEFI HTTP', undefined, true],
  [29, 'RISC-V 128 UEFI', undefined, false],
  [30, 'RISC-V 128 UEFI HTTP', undefined, true],
  [31, 's390 Basic', undefined, false],
  [32, 's390 Extended', undefined, false],
  [33, 'MIPS 32 UEFI', undefined, false],
  [34, 'MIPS 64 UEFI', undefined, false],
  [35, 'Sunway 32 UEFI', undefined, false],
  [36, 'Sunway 64 UEFI', undefined, false],
  [37, 'LoongArch 32 UEFI', undefined, false],
  [38, 'LoongArch 32 UEFI HTTP', undefined, true],
  [39, 'LoongArch 64 UEFI', undefined, false],
  [40, 'LoongArch 64 UEFI HTTP', undefined, true],
  [41, 'ARM rpiboot', undefined, false],
];

export const ARCHES: ReadonlyMap<number, ArchInfo> = new Map(
  ARCH_TABLE.map(([code, name, family, http]) => [code, family ? { code, name, family, http } : { code, name, http }]),
);

export interface Client {
  messageType: number;
  /** Lowercase colon form. */
  mac: string;
  /** Canonical lowercase UUID as iPXE prints `${uuid}`; undefined when absent or all-0/all-F (not an identity). */
  uuid?: string;
  /** Option 97 as received (type byte + 16), echoed in replies. */
  uuidOption?: Buffer;
  /** Every code the client listed in option 93. */
  archCodes: number[];
  /** The first listed code heph can boot, else the first listed. */
  arch: ArchInfo;
  firmware: FirmwareKind;
  vendorClass: string;
  /** Option 57, if the client sent a sane one. */
  maxSize?: number;
  /** The client's own address, when it has one (the boot-server REQUEST on 4011 carries it). */
  ciaddr?: string;
  /** PXE boot item (43.71) of a boot-server REQUEST, echoed in the ACK. */
  bootItem?: Buffer;
}

export type IgnoreReason =
  | 'not-request'
  | 'bad-hardware-address'
  | 'no-message-type'
  | 'message-type'
  | 'not-pxe'
  | 'no-arch'
  | 'unknown-arch'
  | 'bad-uuid';

export type Classified = { ok: true; client: Client } | { ok: false; reason: IgnoreReason; detail?: string };

// Identities are written as ASCII into one scratch buffer and read out as one flat string: a template literal of
// 16 byte pairs builds a rope of ~30 intermediate strings, most of a DHCP packet's garbage in the data plane.
const HEX_DIGIT = Buffer.from('0123456789abcdef', 'latin1');
const COLON = 0x3a;
const DASH = 0x2d;
const UUID_TEXT = Buffer.alloc(36, DASH);
const MAC_TEXT = Buffer.alloc(17, COLON);
/** Wire byte order of the UUID's bytes in text order (the first three fields are little-endian on the wire). */
const UUID_ORDER = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
/** Where each byte's two digits go in xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx. */
const UUID_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/**
 * SMBIOS stores the first three GUID fields little-endian and firmware sends them as stored (netboot-lab.md:
 * VM uuid 7e57b001-0000-4000-… arrives as 01b0577e 0000 0040 …). iPXE's `${uuid}` and Talos's `${uuid}` show
 * them swapped back, so swap 4-2-2 bytes here.
 */
export function uuidFromWire(raw16: Buffer): string | undefined {
  return raw16.length === 16 ? uuidAt(raw16, 0) : undefined;
}

/** uuidFromWire of the 16 bytes at `at`, read in place. */
function uuidAt(b: Buffer, at: number): string | undefined {
  let and = 0xff;
  let or = 0;
  for (let i = at; i < at + 16; i++) {
    and &= b[i]!;
    or |= b[i]!;
  }
  if (or === 0 || and === 0xff) return undefined;
  const t = UUID_TEXT;
  for (let i = 0; i < 16; i++) {
    const v = b[at + UUID_ORDER[i]!]!;
    t[UUID_AT[i]!] = HEX_DIGIT[v >> 4]!;
    t[UUID_AT[i]! + 1] = HEX_DIGIT[v & 15]!;
  }
  return t.toString('latin1');
}

/** The six bytes at `at` in lowercase colon form. */
export function macString(b: Buffer, at = 0): string {
  const t = MAC_TEXT;
  for (let i = 0; i < 6; i++) {
    const v = b[at + i]!;
    t[i * 3] = HEX_DIGIT[v >> 4]!;
    t[i * 3 + 1] = HEX_DIGIT[v & 15]!;
  }
  return t.toString('latin1');
}

const PXE_CLIENT = Buffer.from('PXEClient');
const HTTP_CLIENT = Buffer.from('HTTPClient');
const IPXE = Buffer.from('iPXE');

// A storm is mostly one kind of firmware, all sending the same vendor class: the last one's text is kept.
let lastVc = Buffer.alloc(0);
let lastVcText = '';
function vendorText(o: OptionLookup): string {
  if (o.length(Opt.VENDOR_CLASS) !== lastVc.length || !o.startsWith(Opt.VENDOR_CLASS, lastVc)) {
    lastVc = Buffer.from(o.get(Opt.VENDOR_CLASS)!);
    lastVcText = lastVc.toString('latin1');
  }
  return lastVcText;
}

function isIpxeUserClass(v: Buffer): boolean {
  // iPXE sends the raw 4 bytes; an RFC 3004 client would length-prefix each class. Accept both spellings.
  if (v.length === IPXE.length && bytesAt(v, 0, IPXE)) return true;
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 4 && bytesAt(v, i + 1, IPXE)) return true;
    i += 1 + len;
  }
  return false;
}

export function classify(p: RequestFields): Classified {
  if (p.op !== 1) return { ok: false, reason: 'not-request' };
  // Ethernet only: PXE is Ethernet in practice, and a MAC is the identity the inventory keys NICs on.
  if (p.htype !== 1 || p.hlen !== 6) return { ok: false, reason: 'bad-hardware-address', detail: `htype ${p.htype} hlen ${p.hlen}` };
  const c = p.chaddr;
  const and = c[0]! & c[1]! & c[2]! & c[3]! & c[4]! & c[5]!;
  const or = c[0]! | c[1]! | c[2]! | c[3]! | c[4]! | c[5]!;
  if (or === 0 || and === 0xff || (c[0]! & 1) === 1) {
    return { ok: false, reason: 'bad-hardware-address', detail: 'zero, broadcast or multicast MAC' };
  }
  const o = p.options;
  // Two 53s are joined by RFC 3396 into a 2-byte value: that, or an empty one, is not a message type.
  if (o.length(Opt.MESSAGE_TYPE) !== 1) return { ok: false, reason: 'no-message-type' };
  const messageType = o.byte(Opt.MESSAGE_TYPE, 0);
  if (messageType !== MessageType.DISCOVER && messageType !== MessageType.REQUEST) return { ok: false, reason: 'message-type', detail: String(messageType) };

  let firmware: FirmwareKind;
  if (o.startsWith(Opt.VENDOR_CLASS, HTTP_CLIENT)) firmware = 'http';
  else if (o.startsWith(Opt.VENDOR_CLASS, PXE_CLIENT)) firmware = (o.has(Opt.USER_CLASS) && isIpxeUserClass(o.get(Opt.USER_CLASS)!)) || o.has(Opt.IPXE_ENCAP) ? 'ipxe' : 'pxe';
  else return { ok: false, reason: 'not-pxe' };

  const archBytes = o.length(Opt.CLIENT_ARCH);
  if (archBytes <= 0 || archBytes % 2 !== 0) return { ok: false, reason: 'no-arch' };
  const archCodes: number[] = [];
  // The first listed code heph can boot, else the first it knows.
  let bootable: ArchInfo | undefined;
  let first: ArchInfo | undefined;
  for (let i = 0; i < archBytes; i += 2) {
    const code = (o.byte(Opt.CLIENT_ARCH, i) << 8) | o.byte(Opt.CLIENT_ARCH, i + 1);
    archCodes.push(code);
    const info = ARCHES.get(code);
    if (!info) continue;
    first ??= info;
    if (info.family !== undefined) bootable ??= info;
  }
  const arch = bootable ?? first;
  if (!arch) return { ok: false, reason: 'unknown-arch', detail: archCodes.join(',') };

  const client: Client = { messageType, mac: macString(c), archCodes, arch, firmware, vendorClass: vendorText(o) };
  if (p.ciaddr !== '0.0.0.0') client.ciaddr = p.ciaddr;
  const u = o.get(Opt.CLIENT_UUID);
  if (u) {
    // RFC 4578 §2.3: type 0 followed by 16 bytes. Anything else is not a UUID to build an answer around.
    if (u.length !== 17 || u[0] !== 0) return { ok: false, reason: 'bad-uuid', detail: `length ${u.length}` };
    client.uuidOption = u;
    const uuid = uuidAt(u, 1);
    if (uuid) client.uuid = uuid;
  }
  if (o.length(Opt.MAX_SIZE) === 2) {
    const ms = (o.byte(Opt.MAX_SIZE, 0) << 8) | o.byte(Opt.MAX_SIZE, 1);
    if (ms >= 576) client.maxSize = ms;
  }
  // A client's own option 43 never decides whether we answer: junk in it just means no boot item.
  const vendor = o.get(Opt.VENDOR);
  const item = vendor ? decodeSubOptions(vendor)?.get(PXE_BOOT_ITEM) : undefined;
  if (item && item.length === 4) client.bootItem = item;
  return { ok: true, client };
}
