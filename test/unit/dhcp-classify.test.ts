import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ARCHES, classify, macString, uuidFromWire } from '../../src/dhcp/classify.ts';
import { decode } from '../../src/dhcp/codec.ts';
import { biosPxe, ipxeBios, ipxeEfi, opt, ovmfBootServerRequest, ovmfHttp, ovmfPxe, packet, UUID, UUID_WIRE, type Header } from './dhcp-fixtures.ts';

function classifyBytes(options: number[], h: Header = {}) {
  const d = decode(packet(options, h));
  assert.ok(d.ok, 'fixture decodes');
  return classify(d.packet);
}

const PXE60 = opt(60, [...Buffer.from('PXEClient:Arch:00007:UNDI:003000')]);
const base = (...more: number[][]) => [...opt(53, [1]), ...PXE60, ...more.flat(), 255];

describe('dhcp classify: firmware table', () => {
  const rows: [string, number[], { firmware: string; arch: number; family?: string; uuid?: string; messageType?: number }][] = [
    ['OVMF PXE', ovmfPxe(), { firmware: 'pxe', arch: 7, family: 'x86_64', uuid: UUID }],
    ['OVMF HTTP Boot', ovmfHttp(), { firmware: 'http', arch: 16, family: 'x86_64', uuid: UUID }],
    ['iPXE EFI', ipxeEfi(), { firmware: 'ipxe', arch: 7, family: 'x86_64', uuid: UUID }],
    ['iPXE BIOS', ipxeBios(), { firmware: 'ipxe', arch: 0, family: 'bios', uuid: UUID }],
    ['BIOS PXE ROM', biosPxe(), { firmware: 'pxe', arch: 0, family: 'bios', uuid: UUID }],
    ['EDK2 boot-server REQUEST', ovmfBootServerRequest(), { firmware: 'pxe', arch: 7, family: 'x86_64', uuid: UUID, messageType: 3 }],
    ['iPXE by option 175 alone', base(opt(93, [0, 7]), opt(175, [0xeb, 3, 1, 0, 0])), { firmware: 'ipxe', arch: 7, family: 'x86_64' }],
    ['iPXE by RFC 3004 user class', base(opt(93, [0, 7]), opt(77, [4, ...Buffer.from('iPXE')])), { firmware: 'ipxe', arch: 7, family: 'x86_64' }],
    ['user class "iPXE2" is not iPXE', base(opt(93, [0, 7]), opt(77, [...Buffer.from('iPXE2')])), { firmware: 'pxe', arch: 7, family: 'x86_64' }],
    ['arm64 UEFI', base(opt(93, [0, 11])), { firmware: 'pxe', arch: 11, family: 'arm64' }],
    ['arm64 HTTP', [...opt(53, [1]), ...opt(60, [...Buffer.from('HTTPClient:Arch:00019')]), ...opt(93, [0, 19]), 255], { firmware: 'http', arch: 19, family: 'arm64' }],
    ['EBC (9) served as x64', base(opt(93, [0, 9])), { firmware: 'pxe', arch: 9, family: 'x86_64' }],
    ['several codes: first bootable wins', base(opt(93, [0, 6, 0, 11, 0, 7])), { firmware: 'pxe', arch: 11, family: 'arm64' }],
    ['several codes, none bootable: first known', base(opt(93, [0, 2, 0, 25])), { firmware: 'pxe', arch: 2 }],
    ['RISC-V 64 (27) known, not bootable', base(opt(93, [0, 27])), { firmware: 'pxe', arch: 27 }],
    ['LoongArch 64 HTTP (40)', base(opt(93, [0, 40])), { firmware: 'pxe', arch: 40 }],
    ['rpiboot (41)', base(opt(93, [0, 41])), { firmware: 'pxe', arch: 41 }],
  ];
  for (const [name, options, want] of rows) {
    it(name, () => {
      const r = classifyBytes(options);
      if (!r.ok) assert.fail(`ignored: ${r.reason}`);
      assert.equal(r.client.firmware, want.firmware);
      assert.equal(r.client.arch.code, want.arch);
      assert.equal(r.client.arch.family, want.family);
      assert.equal(r.client.uuid, want.uuid);
      assert.equal(r.client.messageType, want.messageType ?? 1);
      assert.equal(r.client.mac, '52:54:00:12:34:56');
    });
  }

  it('knows all 42 IANA codes 0..41 and names 7 x64 UEFI (erratum 4624)', () => {
    for (let c = 0; c <= 41; c++) assert.ok(ARCHES.get(c), `code ${c}`);
    assert.equal(ARCHES.get(7)!.name, 'x64 UEFI');
    assert.equal(ARCHES.get(9)!.name, 'EBC');
    assert.equal(ARCHES.size, 42);
  });

  it('records ciaddr and the 43.71 boot item of a 4011 REQUEST', () => {
    const r = classifyBytes(ovmfBootServerRequest(), { ciaddr: [10, 0, 0, 50] });
    assert.ok(r.ok);
    assert.equal(r.client.ciaddr, '10.0.0.50');
    assert.deepEqual([...r.client.bootItem!], [0, 0, 0, 0]);
    assert.equal(r.client.maxSize, 1472);
  });
});

describe('dhcp classify: UUID (option 97)', () => {
  it('swaps the SMBIOS mixed-endian fields into the form iPXE prints', () => {
    assert.equal(uuidFromWire(Buffer.from(UUID_WIRE)), UUID);
    assert.equal(uuidFromWire(Buffer.from('00112233445566778899aabbccddeeff', 'hex')), '33221100-5544-7766-8899-aabbccddeeff');
  });
  it('spells every byte value right, in UUIDs and MACs, one call after another (shared scratch buffers)', () => {
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 6, maxLength: 6 }), (u, m) => {
        const w = hex(u);
        const swapped = `${w.slice(6, 8)}${w.slice(4, 6)}${w.slice(2, 4)}${w.slice(0, 2)}-${w.slice(10, 12)}${w.slice(8, 10)}-${w.slice(14, 16)}${w.slice(12, 14)}-${w.slice(16, 20)}-${w.slice(20)}`;
        const identity = !u.every((b) => b === 0) && !u.every((b) => b === 0xff);
        const uuid = uuidFromWire(Buffer.from(u));
        const mac = macString(Buffer.from(m));
        assert.equal(uuid, identity ? swapped : undefined);
        assert.equal(mac, hex(m).replace(/(..)(?!$)/g, '$1:'));
        // A later call must not change a string handed out before.
        uuidFromWire(Buffer.alloc(16, 0xab));
        macString(Buffer.alloc(6, 0xcd));
        assert.equal(uuid, identity ? swapped : undefined);
        assert.equal(mac, hex(m).replace(/(..)(?!$)/g, '$1:'));
      }),
      { numRuns: 2000 },
    );
    for (const b of [0, 0x0f, 0xf0, 0xff]) assert.equal(macString(Buffer.alloc(6, b)), Array(6).fill(b.toString(16).padStart(2, '0')).join(':'));
  });
  it('refuses all-zero and all-FF as identity but still answers and echoes 97', () => {
    for (const fill of [0, 0xff]) {
      const r = classifyBytes(base(opt(93, [0, 7]), opt(97, [0, ...Array(16).fill(fill)])));
      assert.ok(r.ok);
      assert.equal(r.client.uuid, undefined);
      assert.equal(r.client.uuidOption!.length, 17);
    }
  });
  it('absent 97 is fine (buggy ROMs omit it)', () => {
    const r = classifyBytes(base(opt(93, [0, 7])));
    assert.ok(r.ok);
    assert.equal(r.client.uuidOption, undefined);
  });
});

describe('dhcp classify: what is not answered (security.md (b) 1, 4, 5, 6, 7)', () => {
  const rows: [string, number[], Header, string][] = [
    ['no option 60', [...opt(53, [1]), ...opt(93, [0, 7]), 255], {}, 'not-pxe'],
    ['MSFT 5.0', [...opt(53, [1]), ...opt(60, [...Buffer.from('MSFT 5.0')]), ...opt(93, [0, 7]), 255], {}, 'not-pxe'],
    ['udhcp', [...opt(53, [1]), ...opt(60, [...Buffer.from('udhcp 1.35.0')]), 255], {}, 'not-pxe'],
    ['reply (op 2)', ovmfPxe(), { op: 2 }, 'not-request'],
    ['hlen 0', ovmfPxe(), { hlen: 0 }, 'bad-hardware-address'],
    ['hlen 17', ovmfPxe(), { hlen: 17 }, 'bad-hardware-address'],
    ['htype 6', ovmfPxe(), { htype: 6 }, 'bad-hardware-address'],
    ['chaddr all zeros', ovmfPxe(), { chaddr: [0, 0, 0, 0, 0, 0] }, 'bad-hardware-address'],
    ['multicast chaddr', ovmfPxe(), { chaddr: [1, 0, 0x5e, 0, 0, 1] }, 'bad-hardware-address'],
    ['no option 53', [...PXE60, ...opt(93, [0, 7]), 255], {}, 'no-message-type'],
    ['zero-length 53', [53, 0, ...PXE60, ...opt(93, [0, 7]), 255], {}, 'no-message-type'],
    ['two 53s', [...opt(53, [1]), ...opt(53, [1]), ...PXE60, ...opt(93, [0, 7]), 255], {}, 'no-message-type'],
    ['RELEASE', [...opt(53, [7]), ...PXE60, ...opt(93, [0, 7]), 255], {}, 'message-type'],
    ['INFORM', [...opt(53, [8]), ...PXE60, ...opt(93, [0, 7]), 255], {}, 'message-type'],
    ['DECLINE', [...opt(53, [4]), ...PXE60, ...opt(93, [0, 7]), 255], {}, 'message-type'],
    ['option 93 missing', base(), {}, 'no-arch'],
    ['option 93 odd length', base(opt(93, [0, 7, 0])), {}, 'no-arch'],
    ['option 93 = 0xFFFF', base(opt(93, [0xff, 0xff])), {}, 'unknown-arch'],
    ['option 97 of length 5', base(opt(93, [0, 7]), opt(97, [0, 1, 2, 3, 4])), {}, 'bad-uuid'],
    ['option 97 type 1', base(opt(93, [0, 7]), opt(97, [1, ...UUID_WIRE])), {}, 'bad-uuid'],
  ];
  for (const [name, options, h, reason] of rows) {
    it(`${name} → ${reason}`, () => {
      const r = classifyBytes(options, h);
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.reason, reason);
    });
  }
});
